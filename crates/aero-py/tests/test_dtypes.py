"""Every safetensors dtype survives every path through the package: a
dtype-zoo safetensors file written by the safetensors package, converted,
loaded, saved again and exported back (issue 20, item 5)."""

import json
import struct

import numpy as np
import pytest

import aerotensor as at

ml_dtypes = pytest.importorskip("ml_dtypes")  # a dependency of the package
st_numpy = pytest.importorskip("safetensors.numpy")  # installed by CI

META = {"format": "np", "note": "every dtype"}


def _zoo_arrays():
    rng = np.random.default_rng(20)
    f = rng.standard_normal((4, 6)).astype(np.float32)
    ints = rng.integers(-100, 100, (3, 5))
    return {
        "f64": f.astype("<f8"),
        "f32": f,
        "f16": f.astype("<f2"),
        "bf16": f.astype(ml_dtypes.bfloat16),
        "i64": ints.astype("<i8") * (1 << 40),
        "i32": ints.astype("<i4") * 100000,
        "i16": ints.astype("<i2"),
        "i8": ints.astype("i1"),
        "u64": np.array([0, 1, (1 << 64) - 1], dtype="<u8"),
        "u32": np.array([0, 1, (1 << 32) - 1], dtype="<u4"),
        "u16": np.array([0, 1, 65535], dtype="<u2"),
        "u8": np.arange(250, 256, dtype="u1"),
        "bool": rng.random(7) > 0.5,
        "f8_e4m3": f.astype(ml_dtypes.float8_e4m3fn),
        "f8_e5m2": f.astype(ml_dtypes.float8_e5m2),
        "f8_e8m0": np.abs(f).astype(ml_dtypes.float8_e8m0fnu),
        "f8_e4m3fnuz": f.astype(ml_dtypes.float8_e4m3fnuz),
        "f8_e5m2fnuz": f.astype(ml_dtypes.float8_e5m2fnuz),
        "c64": (f + 1j * f[::-1]).astype(np.complex64),
        "scalar": np.array(2.5, dtype="<f4"),
        "empty": np.zeros((0, 3), dtype=ml_dtypes.bfloat16),
    }


def _header(path):
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        return json.loads(fh.read(n))


@pytest.fixture()
def zoo(tmp_path):
    """A safetensors file holding every dtype the safetensors package writes
    from numpy (F4 and the F6 types it cannot write from numpy)."""
    arrays = _zoo_arrays()
    path = tmp_path / "zoo.safetensors"
    st_numpy.save_file(arrays, str(path), metadata=META)
    header = _header(path)
    dtypes = {h["dtype"] for k, h in header.items() if k != "__metadata__"}
    assert dtypes >= {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32",
                      "U16", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F8_E4M3FNUZ",
                      "F8_E5M2FNUZ", "C64"}, dtypes
    return path, arrays, header


def _same(a, b, name):
    assert a.dtype == b.dtype, (name, a.dtype, b.dtype)
    assert a.shape == b.shape, (name, a.shape, b.shape)
    assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), name


def test_zoo_round_trips_with_every_dtype(zoo, tmp_path):
    src, arrays, header = zoo
    at.convert(src, tmp_path / "zoo.aero")
    loaded = at.load_file(tmp_path / "zoo.aero")
    assert sorted(loaded) == sorted(arrays)
    for name, want in arrays.items():
        _same(loaded[name], want, name)

    # save_file(load_file(p), q): nothing changes type on the way.
    with at.safe_open(tmp_path / "zoo.aero", "np") as f:
        meta = f.metadata()
    assert meta == META
    at.save_file(loaded, tmp_path / "again.aero", metadata=meta)
    again = at.load_file(tmp_path / "again.aero")
    for name, want in arrays.items():
        _same(again[name], want, name)
    assert at.validate(tmp_path / "again.aero")["verdict"] == "valid"

    # ... and export-safetensors gives back the very file safetensors wrote.
    at.convert(tmp_path / "again.aero", tmp_path / "back.safetensors")
    assert _header(tmp_path / "back.safetensors") == header
    assert (tmp_path / "back.safetensors").read_bytes() == src.read_bytes()


def test_safe_open_speaks_safetensors(zoo, tmp_path):
    src, arrays, header = zoo
    at.convert(src, tmp_path / "zoo.aero")
    with at.safe_open(tmp_path / "zoo.aero", framework="numpy") as f:
        assert f.keys() == sorted(arrays)
        assert f.metadata() == META and all(isinstance(v, str) for v in f.metadata().values())
        for name in arrays:
            s = f.get_slice(name)
            assert s.get_dtype() == header[name]["dtype"], name
            assert s.get_shape() == header[name]["shape"], name
            _same(f.get_tensor(name), arrays[name], name)
        # Rows of a float8 tensor are sliced like any other.
        _same(f.get_slice("f8_e4m3")[1:3], arrays["f8_e4m3"][1:3], "f8 rows")
        _same(f.get_slice("bf16")[2], arrays["bf16"][2], "bf16 row")
    # A file made without __metadata__ has none, as in safetensors.
    at.save_file({"a": np.zeros(2, "<f4")}, tmp_path / "plain.aero")
    with at.safe_open(tmp_path / "plain.aero", "np") as f:
        assert f.metadata() is None


def test_metadata_strings_are_the_safetensors_metadata(tmp_path):
    at.save_file({"w": np.ones(3, "<f4")}, tmp_path / "m.aero",
                 metadata={"format": "pt", "model_name": "tiny", "step": 7})
    with at.safe_open(tmp_path / "m.aero", "np") as f:
        assert f.metadata() == {"format": "pt", "model_name": "tiny"}
    with at.AeroReader(tmp_path / "m.aero") as r:
        assert r.model_name == "tiny" and r.metadata()["step"] == 7
    at.convert(tmp_path / "m.aero", tmp_path / "m.safetensors")
    assert _header(tmp_path / "m.safetensors")["__metadata__"] == {"format": "pt",
                                                                   "model_name": "tiny"}


def test_get_slice_of_packed_blocks_is_refused(tmp_path):
    gguf = pytest.importorskip("gguf")  # installed by CI
    w = gguf.GGUFWriter(str(tmp_path / "q.gguf"), "llama")
    data = np.random.default_rng(3).standard_normal((4, 64)).astype(np.float32)
    w.add_tensor("blk.0.w", gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0),
                 raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    at.convert(tmp_path / "q.gguf", tmp_path / "q.aero")
    with at.safe_open(tmp_path / "q.aero", "np") as f:
        s = f.get_slice("blk.0.w")
        assert s.get_dtype() == "Q8_0" and s.get_shape() == [4, 64]
        for key in (slice(0, 2), 1, Ellipsis):
            with pytest.raises(at.AeroError, match=r"Q8_0.*get_slice cannot cut it.*dequantize") as e:
                s[key]
            assert e.value.tensor == "blk.0.w"
        # Whole, the blocks come as bytes or dequantized, as asked.
        assert f.get_tensor("blk.0.w").dtype == np.uint8
        assert f.get_tensor("blk.0.w", dequantize="f32").shape == (4, 64)


def test_version_is_above_the_reference():
    from importlib.metadata import version

    assert at.__version__ == version("aerotensor")
    assert tuple(int(x) for x in at.__version__.split(".")[:2]) > (0, 2)
