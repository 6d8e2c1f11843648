#!/usr/bin/env python3
"""Independent AERO v0.1 reader/validator written only from the spec (shared/spec/AERO.md), used by
the Rust tests to cross-check files the Rust writer produces. Needs only msgpack, zstandard, blake3.

  aero_ref.py validate FILE [--json]     exit 0 if valid, 1 if not
  aero_ref.py dump-tensor FILE NAME OUT  raw tensor bytes (hash_b3 verified)
  aero_ref.py check-aligned FILE         data_off % 64 == 0, WTSH offset % 4096 == 0
"""
import collections, functools, json, math, mmap, os, struct, sys
import blake3, msgpack, zstandard

TOC_HDR, ENTRY, ZERO32 = 16, 80, bytes(32)
MAX_ENTRIES, MAX_STRTAB, MAX_META_ULEN = 1_000_000, 512 << 20, 2 << 30
MAX_TENSORS, MAX_NAME, MAX_RANK = 100_000_000, 4096, 64
DTYPE_SIZE = {0: 2, 1: 4, 2: 2, 3: 8, 4: 1, 5: 1, 6: 2, 7: 2, 8: 4, 9: 4, 10: 8, 11: 8, 12: 1}
PACKED = 0x8000
ROLE_FOURCC = {"json": "MJSN", "manifest": "MMSG", "tensors": "TIDX", "weights": "WTSH",
               "control_integrity": "IHSH", "page_hashes": "PHSH"}


def need(cond, msg):
    if not cond:
        raise ValueError(msg)


def is_uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def unpack_msgpack(data, what, zero_pad_ok=False):
    """Exactly one MessagePack object; trailing bytes only if zero padding is allowed."""
    u = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=max(len(data), 1))
    u.feed(data)
    try:
        obj = u.unpack()
    except Exception as e:
        raise ValueError(f"{what}: invalid MessagePack ({e})") from None
    rest = data[u.tell():]
    need(not rest or (zero_pad_ok and rest.count(0) == len(rest)),
         f"{what}: {len(rest)} unexpected trailing bytes after MessagePack object")
    return obj


class Entry:
    def __init__(self, index, raw, strtab):
        (fourcc, self.flags, self.offset, self.length, self.ulen,
         self.name_off, self.name_len, _, self.hash) = struct.unpack("<4sIQQQIIQ32s", raw)
        self.index = index
        need(fourcc.isascii(), f"chunk {index}: fourcc {fourcc!r} is not ASCII")
        self.fourcc = fourcc.decode("ascii")
        need(self.name_off + self.name_len <= len(strtab), f"chunk {index}: name_off+name_len "
             f"{self.name_off}+{self.name_len} exceeds string_table_length {len(strtab)}")
        try:
            self.name = strtab[self.name_off:self.name_off + self.name_len].decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"chunk {index}: name is not valid UTF-8") from None
        self.label = f"chunk {index} {self.fourcc} {self.name!r}"


class AeroFile:
    """Header, TOC and string table, parsed with every spec §10 check (ValueError otherwise)."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.size = size = os.fstat(f.fileno()).st_size
            need(size >= 96, f"file too small for a header: {size} bytes")
            self.buf = b = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        (magic, vmaj, vmin, hsize, self.toc_offset, self.toc_length, self.st_offset, self.st_length,
         flags, self.uuid) = struct.unpack_from("<4sHHIQQQQQ16s", b, 0)
        need(magic == b"AERO", f"bad magic {magic!r}, expected b'AERO'")
        need((vmaj, vmin) == (0, 1), f"unsupported version {vmaj}.{vmin}, expected 0.1")
        need(hsize == 96, f"header_size {hsize}, expected 96")
        need(flags == 0, f"file_flags {flags:#x} is non-zero")
        need(self.toc_length >= TOC_HDR and self.toc_offset + self.toc_length <= size,
             f"TOC [{self.toc_offset}, +{self.toc_length}) outside file of {size} bytes")
        self.entry_count = n = struct.unpack_from("<I", b, self.toc_offset)[0]
        need(n <= MAX_ENTRIES, f"entry_count {n} exceeds cap {MAX_ENTRIES}")
        need(self.toc_length >= TOC_HDR + ENTRY * n, f"toc_length {self.toc_length} < 16 + 80*{n}")
        need(self.st_length <= MAX_STRTAB, f"string_table_length {self.st_length} exceeds cap")
        need(self.st_offset + self.st_length <= size,
             f"string table [{self.st_offset}, +{self.st_length}) outside file of {size} bytes")
        strtab = b[self.st_offset:self.st_offset + self.st_length]
        self.entries = []
        for i in range(n):
            off = self.toc_offset + TOC_HDR + ENTRY * i
            e = Entry(i, b[off:off + ENTRY], strtab)
            need(e.offset + e.length <= size, f"{e.label}: [{e.offset}, +{e.length}) outside file of {size} bytes")
            need(e.fourcc == "WTSH" or e.ulen <= MAX_META_ULEN, f"{e.label}: ulen {e.ulen} exceeds 2 GiB cap")
            need(not (e.fourcc in ("WTSH", "IHSH", "PHSH") and e.flags & 1), f"{e.label}: must not be compressed")
            need(e.flags & 1 or e.length == e.ulen, f"{e.label}: raw, but length {e.length} != ulen {e.ulen}")
            self.entries.append(e)

    def find(self, fourcc, name=None):
        return next((e for e in self.entries if e.fourcc == fourcc and name in (None, e.name)), None)

    def chunk_bytes(self, i):
        """(payload, status); status is verified | mismatch | hash-not-recorded."""
        e = self.entries[i]
        data = self.buf[e.offset:e.offset + e.length]
        if e.flags & 1:
            fcs = zstandard.frame_content_size(data)
            need(fcs in (-1, e.ulen), f"{e.label}: zstd frame content size {fcs} != ulen {e.ulen}")
            try:
                out = zstandard.ZstdDecompressor().decompress(data, max_output_size=e.ulen)
                d = zstandard.ZstdDecompressor().decompressobj()  # output now known to be bounded
                d.decompress(data)
            except zstandard.ZstdError as ex:
                raise ValueError(f"{e.label}: zstd error: {ex}") from None
            need(len(out) == e.ulen, f"{e.label}: decompressed {len(out)} bytes, ulen says {e.ulen}")
            need(d.eof and not d.unused_data, f"{e.label}: not exactly one zstd frame")
            data = out
        if e.hash == ZERO32:
            return data, "hash-not-recorded"
        return data, ("verified" if blake3.blake3(data).digest() == e.hash else "mismatch")

    def read_chunk(self, i):
        data, status = self.chunk_bytes(i)
        need(status != "mismatch", f"{self.entries[i].label}: BLAKE3 mismatch")
        return data

    @functools.cache
    def tensors(self):
        """TIDX as {name: entry dict}; unknown keys are kept."""
        e = self.find("TIDX")
        need(e is not None, "no TIDX chunk")
        obj = unpack_msgpack(self.read_chunk(e.index), "TIDX")
        need(isinstance(obj, dict) and isinstance(obj.get("tensors"), list), "TIDX: no 'tensors' array")
        need(len(obj["tensors"]) <= MAX_TENSORS, "TIDX: tensor count exceeds cap")
        out = {}
        for k, t in enumerate(obj["tensors"]):
            check_tensor(k, t)
            need(t["name"] not in out, f"TIDX: duplicate tensor name {t['name']!r}")
            out[t["name"]] = t
        return out

    def tensor_bytes_status(self, name):
        """(bytes, hash_b3 status: verified | mismatch | absent)."""
        need(name in self.tensors(), f"no tensor named {name!r}")
        t = self.tensors()[name]
        e = self.find("WTSH", f"weights.shard{t['shard_id']}")
        need(e is not None, f"tensor {name!r}: no WTSH chunk 'weights.shard{t['shard_id']}'")
        need(t["data_off"] + t["data_len"] <= e.length, f"tensor {name!r}: data_off+data_len "
             f"{t['data_off']}+{t['data_len']} exceeds shard length {e.length}")
        start = e.offset + t["data_off"]
        data = self.buf[start:start + t["data_len"]]
        if not t.get("hash_b3"):
            return data, "absent"
        return data, ("verified" if blake3.blake3(data).hexdigest() == t["hash_b3"] else "mismatch")

    def tensor_bytes(self, name):
        """Tensor bytes; raises on hash_b3 mismatch (damaged bytes are never returned)."""
        data, status = self.tensor_bytes_status(name)
        need(status != "mismatch", f"tensor {name!r}: hash_b3 mismatch")
        return data

    def control_check(self):
        """IHSH (spec §8): not-present | verified | mismatch; raises if malformed."""
        e = self.find("IHSH")
        if e is None:
            return "not-present"
        data = self.read_chunk(e.index)
        need(len(data) == 256, f"IHSH payload is {len(data)} bytes, expected 256")
        obj = unpack_msgpack(data, "IHSH", zero_pad_ok=True)
        p = (self.st_offset + self.st_length + 15) & ~15
        need(isinstance(obj, dict) and obj.get("algo") == "blake3-256", f"IHSH: algo is not blake3-256: {obj!r}")
        need(obj.get("covered_ranges") == [[0, p]], f"IHSH: covered_ranges {obj.get('covered_ranges')}, P={p}")
        need(isinstance(obj.get("digest"), bytes) and len(obj["digest"]) == 32, "IHSH: digest is not bin 32")
        need(p <= self.size, f"IHSH: P={p} beyond file size {self.size}")
        region = bytearray(self.buf[0:p])
        for i in range(self.entry_count):
            h = self.toc_offset + TOC_HDR + ENTRY * i + 48
            if h < p:
                region[h:h + 32] = ZERO32
        return "verified" if blake3.blake3(bytes(region[:p])).digest() == obj["digest"] else "mismatch"

    def page_checks(self):
        """PHSH (spec §9): {shard_name: 'verified' | 'mismatch:<pages>'}; raises if malformed."""
        out = {}
        for e in (x for x in self.entries if x.fourcc == "PHSH"):
            obj = unpack_msgpack(self.read_chunk(e.index), e.label)
            need(isinstance(obj, dict) and isinstance(obj.get("shard_name"), str), f"{e.label}: no shard_name")
            ps, digests, sname = obj.get("page_size"), obj.get("digests"), obj["shard_name"]
            need(is_uint(ps) and ps > 0 and isinstance(digests, list), f"{e.label}: bad page_size/digests")
            need(e.name == sname + ".phsh", f"{e.label}: name does not match shard_name {sname!r}")
            w = self.find("WTSH", sname)
            need(w is not None, f"{e.label}: no WTSH {sname!r}")
            need(len(digests) == -(-w.length // ps), f"{e.label}: {len(digests)} digests for {w.length} bytes")
            page = lambda i: self.buf[w.offset + i * ps:w.offset + min((i + 1) * ps, w.length)]  # noqa: E731
            bad = [i for i, d in enumerate(digests) if blake3.blake3(page(i)).digest() != d]
            out[sname] = "verified" if not bad else "mismatch:" + ",".join(map(str, bad))
        return out

    def manifest_check(self):
        """MMSG cross-checks against TOC and TIDX: list of error strings; raises if unreadable."""
        e = self.find("MMSG")
        need(e is not None, "no MMSG chunk")
        m = unpack_msgpack(self.read_chunk(e.index), "MMSG")
        need(isinstance(m, dict), "MMSG: not a map")
        errs, listed = [], []
        if m.get("format") != {"name": "AERO", "version": [0, 1]}:
            errs.append(f"MMSG: format is {m.get('format')!r}")
        for c in m.get("chunks") or []:
            i = c.get("toc_index") if isinstance(c, dict) else None
            if not is_uint(i) or i >= self.entry_count:
                errs.append(f"MMSG chunks: bad toc_index {i!r}")
                continue
            te = self.entries[i]
            listed.append(i)
            # A chunk type the spec does not define is skipped (spec §4): its
            # entry need only name the TOC's fourcc; a role of the spec must
            # still be the spec's chunk type.
            role_fc = ROLE_FOURCC.get(c.get("role"))
            known = te.fourcc in ROLE_FOURCC.values()
            if c.get("fourcc") != te.fourcc or ((known or role_fc) and role_fc != te.fourcc):
                errs.append(f"MMSG chunks: {c!r} disagrees with TOC {te.fourcc}")
            if te.fourcc in ("WTSH", "PHSH") and te.name != f"weights.shard{c.get('shard_id')}" + \
                    (".phsh" if te.fourcc == "PHSH" else ""):
                errs.append(f"MMSG chunks: shard_id {c.get('shard_id')!r} but TOC name {te.name!r}")
        if sorted(listed) != list(range(self.entry_count)):
            errs.append(f"MMSG chunks list toc_index {sorted(listed)}, TOC has {self.entry_count} entries")
        counts = collections.Counter(t["shard_id"] for t in self.tensors().values())
        wtsh, seen = {x.index for x in self.entries if x.fourcc == "WTSH"}, set()
        for s in m.get("shards") or []:
            i, sid = (s.get("toc_index"), s.get("shard_id")) if isinstance(s, dict) else (None, None)
            if i not in wtsh or self.entries[i].name != f"weights.shard{sid}":
                errs.append(f"MMSG shards: {s!r} does not point at WTSH weights.shard{sid}")
                continue
            seen.add(i)
            if s.get("size_bytes") != self.entries[i].length:
                errs.append(f"MMSG shard {sid}: size_bytes {s.get('size_bytes')} != {self.entries[i].length}")
            if s.get("tensor_count") != counts[sid]:
                errs.append(f"MMSG shard {sid}: tensor_count {s.get('tensor_count')} != TIDX {counts[sid]}")
        if seen != wtsh:
            errs.append(f"MMSG shards cover WTSH entries {sorted(seen)}, TOC has {sorted(wtsh)}")
        return errs


def check_tensor(k, t):
    need(isinstance(t, dict), f"TIDX tensor {k}: not a map")
    for key in ("name", "dtype", "shape", "shard_id", "data_off", "data_len"):
        need(key in t, f"TIDX tensor {k}: missing {key!r}")
    name = t["name"]
    need(isinstance(name, str) and len(name.encode()) <= MAX_NAME, f"TIDX tensor {k}: bad name")
    for key in ("dtype", "shard_id", "data_off", "data_len"):
        need(is_uint(t[key]), f"tensor {name!r}: {key} must be a non-negative int, got {t[key]!r}")
    need(t["dtype"] <= 0xFFFF, f"tensor {name!r}: dtype {t['dtype']} outside u16")
    shape = t["shape"]
    need(isinstance(shape, list) and len(shape) <= MAX_RANK and all(map(is_uint, shape)),
         f"tensor {name!r}: bad shape {shape!r}")
    h = t.get("hash_b3", "")
    need(isinstance(h, str) and (not h or (len(h) == 64 and not h.strip("0123456789abcdef"))),
         f"tensor {name!r}: hash_b3 is not 64 lowercase hex chars")


def validate(path):
    """Full validation report (see module docstring); 'valid' is false on any error."""
    rep = {"file": path, "valid": False, "chunks": [], "control": "not-present", "pages": {},
           "tensors": {}, "errors": [], "warnings": []}
    err, warn = rep["errors"].append, rep["warnings"].append
    try:
        f = AeroFile(path)
    except (ValueError, OSError) as ex:
        err(str(ex))
        return rep
    dups = collections.Counter((e.fourcc, e.name) for e in f.entries)
    rep["errors"] += [f"duplicate chunk (fourcc, name) {k}" for k, v in dups.items() if v > 1]
    spans = sorted((e.offset, e.offset + e.length, e.label) for e in f.entries)
    warn_list = [f"{a[2]} overlaps {b[2]}" for a, b in zip(spans, spans[1:]) if b[0] < a[1]]
    for e in f.entries:
        try:
            data, status = f.chunk_bytes(e.index)
            if e.fourcc == "MJSN" and status != "mismatch":
                need(isinstance(json.loads(data), dict), "not an object")
        except ValueError as ex:  # JSON decode errors are ValueErrors too
            err(f"{e.label}: {ex}" if e.fourcc == "MJSN" else str(ex))
            status = "undecodable"
        if status == "mismatch":
            err(f"{e.label}: BLAKE3 mismatch")
        elif status == "hash-not-recorded":
            warn(f"{e.label}: hash not recorded (all-zero hash field); unverified")
        rep["chunks"].append({"index": e.index, "fourcc": e.fourcc, "name": e.name,
                              "status": "mismatch" if status == "undecodable" else status})
    rep["warnings"] += warn_list
    for key, fn in (("control", f.control_check), ("pages", f.page_checks)):
        try:
            rep[key] = fn()
        except ValueError as ex:
            err(str(ex))
    if rep["control"] == "mismatch":
        err("IHSH: control plane tampered or corrupt")
    rep["errors"] += [f"PHSH {s}: page {v}" for s, v in rep["pages"].items() if v != "verified"]
    try:
        rep["errors"] += f.manifest_check()
    except (ValueError, TypeError, AttributeError) as ex:  # malformed manifest structure
        err(f"MMSG: {ex}")
    try:
        has_weights = f.find("WTSH") is not None
        if not has_weights:
            warn("no WTSH chunks (index-only file): tensor bytes not checked")
        for name, t in f.tensors().items():
            r = rep["tensors"][name] = {"dtype": t["dtype"], "shape": t["shape"], "data_len": t["data_len"]}
            size, n = DTYPE_SIZE.get(t["dtype"]), math.prod(t["shape"])
            if size is not None and n * size != t["data_len"]:
                err(f"tensor {name!r}: data_len {t['data_len']} != {n} elements x {size} bytes")
            elif size is None and t["dtype"] != PACKED:
                warn(f"tensor {name!r}: unknown dtype code {t['dtype']}")
            if not has_weights:
                r["hash_b3"] = "not-checked" if t.get("hash_b3") else "absent"
                continue
            try:
                data, r["hash_b3"] = f.tensor_bytes_status(name)
                r["blake3"] = blake3.blake3(data).hexdigest()
                if r["hash_b3"] == "mismatch":
                    err(f"tensor {name!r}: hash_b3 mismatch")
            except ValueError as ex:
                err(str(ex))
    except ValueError as ex:
        err(str(ex))
    rep["valid"] = not rep["errors"]
    return rep


def check_aligned(path):
    f = AeroFile(path)
    bad = [f"{e.label}: chunk_offset {e.offset} % 4096 != 0"
           for e in f.entries if e.fourcc == "WTSH" and e.offset % 4096]
    return bad + [f"tensor {n!r}: data_off {t['data_off']} % 64 != 0"
                  for n, t in f.tensors().items() if t["data_off"] % 64]


def main(argv):
    if len(argv) >= 2 and argv[0] == "validate":
        rep = validate(argv[1])
        lines = [f"{argv[1]}: {'VALID' if rep['valid'] else 'INVALID'}"] + \
            [f"  error: {x}" for x in rep["errors"]] + [f"  warning: {x}" for x in rep["warnings"]]
        print(json.dumps(rep, indent=1) if "--json" in argv[2:] else "\n".join(lines))
        return 0 if rep["valid"] else 1
    if len(argv) == 4 and argv[0] == "dump-tensor":
        data = AeroFile(argv[1]).tensor_bytes(argv[2])  # raises before OUT is created
        with open(argv[3], "wb") as fh:
            fh.write(data)
        return 0
    if len(argv) == 2 and argv[0] == "check-aligned":
        bad = check_aligned(argv[1])
        print("\n".join(bad) if bad else "ok")
        return 1 if bad else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (ValueError, OSError, KeyError) as ex:
        print(f"error: {ex}", file=sys.stderr)
        sys.exit(1)
