// load.cpp — the loader adapter in C++: an RAII wrapper around the C ABI.
//
//   load_cpp MODEL OUT
//
// Same steps and the same OUT format as examples/c/load.c. aero::File owns
// an aero_handle_t (closed by its destructor, movable, not copyable);
// aero::Report owns a string from aero_validate; errors are aero::Error
// exceptions carrying the library's code and message.
#include "aerotensor.h"

#include <cinttypes>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace aero {

class Error : public std::runtime_error {
 public:
  Error(const std::string& what, aero_error_code_t code)
      : std::runtime_error(what + ": " + aero_error_string() + " (" + aero_error_code_name(code) + ")"),
        code_(code) {}
  aero_error_code_t code() const noexcept { return code_; }

 private:
  aero_error_code_t code_;
};

[[noreturn]] inline void throw_last(const std::string& what) { throw Error(what, aero_last_error_code()); }

// A string the library allocated, freed with aero_string_free.
class Report {
 public:
  Report() = default;
  ~Report() { aero_string_free(s_); }
  Report(const Report&) = delete;
  Report& operator=(const Report&) = delete;
  char** out() { return &s_; }
  std::string str() const { return s_ ? s_ : ""; }

 private:
  char* s_ = nullptr;
};

struct TensorInfo {
  aero_dtype_t dtype;
  std::vector<int64_t> shape;
  uint64_t data_len;
};

// Verified, zero-copy bytes; valid while the File lives.
struct Bytes {
  const uint8_t* data;
  uint64_t size;
};

class File {
 public:
  explicit File(const std::string& path, uint32_t flags = 0) {
    aero_open_options o;
    aero_open_options_init(&o);
    o.flags = flags;
    h_ = aero_open(path.c_str(), &o);
    if (!h_) throw_last(path);
  }
  ~File() { aero_close(h_); }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  File(File&& other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
  File& operator=(File&& other) noexcept {
    if (this != &other) {
      aero_close(h_);
      h_ = std::exchange(other.h_, nullptr);
    }
    return *this;
  }

  uint32_t size() const {
    uint32_t n = aero_tensor_count(h_);
    if (n == 0 && aero_last_error_code() != AERO_OK) throw_last("tensor count");
    return n;
  }

  std::string name(uint32_t i) const {
    std::vector<char> buf(64);
    for (;;) {
      int rc = aero_tensor_name(h_, i, buf.data(), buf.size());
      if (rc == 0) return buf.data();
      if (rc != AERO_E_BUFFER_TOO_SMALL) throw_last("tensor " + std::to_string(i));
      buf.resize(buf.size() * 2);
    }
  }

  TensorInfo info(const std::string& name) const {
    TensorInfo t{};
    int64_t shape[8];
    uint32_t rank = 0;
    if (aero_tensor_info(h_, name.c_str(), &t.dtype, shape, &rank, &t.data_len) != 0) throw_last(name);
    t.shape.assign(shape, shape + rank);
    return t;
  }

  Bytes bytes(const std::string& name) const {
    Bytes b{nullptr, 0};
    if (aero_tensor_ptr(h_, name.c_str(), &b.data, &b.size) != 0) throw_last(name);
    return b;
  }

  aero_verdict_t validate(aero_validate_mode_t mode, Report* report) const {
    aero_verdict_t v = aero_validate(h_, mode, report ? report->out() : nullptr);
    if (v == AERO_VERDICT_ERROR) throw_last("validate");
    return v;
  }

 private:
  aero_handle_t h_ = nullptr;
};

}  // namespace aero

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL OUT\n", argv[0]);
    return 2;
  }
  std::FILE* out = std::fopen(argv[2], "w");
  if (!out) return 1;
  try {
    aero::File f(argv[1], AERO_OPEN_NO_CACHE);  // 1. discovery
    aero::File moved = std::move(f);            // ownership moves; f closes nothing
    {
      aero::Report r;
      std::printf("quick validation: %d (%zu bytes of report)\n", moved.validate(AERO_VALIDATE_QUICK, &r),
                  r.str().size());
    }
    uint32_t n = moved.size();  // 2. tensors
    std::fprintf(out, "count\t%" PRIu32 "\n", n);
    std::printf("full validation: %d\n", moved.validate(AERO_VALIDATE_FULL, nullptr));  // 3. integrity
    for (uint32_t i = 0; i < n; i++) {  // 4. weights
      std::string name = moved.name(i);
      aero::TensorInfo t = moved.info(name);
      try {
        aero::Bytes b = moved.bytes(name);
        std::fprintf(out, "tensor\t%s\t%d\t%s\t%zu\t", name.c_str(), static_cast<int>(t.dtype),
                     aero_dtype_name(static_cast<uint32_t>(t.dtype)), t.shape.size());
        for (size_t d = 0; d < t.shape.size(); d++) std::fprintf(out, "%s%" PRId64, d ? "," : "", t.shape[d]);
        std::fprintf(out, "\t%" PRIu64 "\t", b.size);
        for (uint64_t k = 0; k < b.size; k++) std::fprintf(out, "%02x", b.data[k]);
        std::fputc('\n', out);
      } catch (const aero::Error& e) {
        std::fprintf(out, "error\t%s\t%d\t%s\n", name.c_str(), static_cast<int>(e.code()), e.what());
      }
    }
  } catch (const aero::Error& e) {
    std::fprintf(stderr, "load_cpp: %s\n", e.what());
    std::fclose(out);
    return 1;
  }
  return std::fclose(out) == 0 ? 0 : 1;
}
