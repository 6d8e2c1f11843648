"""The reference package's AeroReader API: same names, same results (the
golden expectations are what the reference reader sees)."""

import blake3
import pytest

import aerotensor as at
from aerotensor import AeroError, AeroReader, AeroSetReader, IntegrityError


def test_names_exist():
    assert issubclass(IntegrityError, AeroError) and issubclass(AeroError, Exception)
    for m in ["close", "list_chunks", "get_chunk", "get_chunk_named", "find_shard_chunk",
              "read_chunk_bytes", "read_msgpack", "list_tensors", "read_tensor_bytes",
              "read_tensor_view", "validate_all", "validate_control", "__enter__", "__exit__"]:
        assert callable(getattr(AeroReader, m)), m
    for p in ["uuid", "file_flags", "version"]:
        assert isinstance(getattr(AeroReader, p), property), p
    for m in ["list_tensors", "read_tensor_bytes", "validate", "close"]:
        assert callable(getattr(AeroSetReader, m)), m
    for p in ["model_name", "architecture"]:
        assert isinstance(getattr(AeroSetReader, p), property), p


def test_reader_results(golden, expected):
    path = golden / "ihsh-phsh.aero"
    info = expected["files"]["ihsh-phsh.aero"]
    r = AeroReader(str(path))
    assert r.uuid == bytes.fromhex(info["uuid_hex"]) and len(r.uuid) == 16
    assert r.file_flags == 0
    assert r.version == (0, 1)
    chunks = r.list_chunks()
    assert [(c.fourcc, c.name, c.offset, c.length, c.ulen, c.flags) for c in chunks] == \
        [(c["fourcc"].encode(), c["name"], c["offset"], c["length"], c["ulen"], c["flags"])
         for c in info["chunks"]]
    for c in chunks:
        assert isinstance(c.hash, bytes) and len(c.hash) == 32
        data = r.read_chunk_bytes(c)
        assert len(data) == c.ulen
        assert blake3.blake3(data).digest() == c.hash  # the payload the TOC hash covers
    assert r.get_chunk(b"TIDX").name == "tensors"
    assert r.get_chunk("WTSH").name == "weights.shard0"
    assert r.get_chunk(b"ZZZZ") is None
    assert r.get_chunk_named(b"WTSH", "weights.shard1").length == 16384
    assert r.get_chunk_named(b"WTSH", "weights.shard9") is None
    assert r.find_shard_chunk(2).name == "weights.shard2"
    assert r.find_shard_chunk(3) is None
    tidx = r.read_msgpack()
    assert isinstance(tidx, dict) and [t["name"] for t in tidx["tensors"]] == \
        [t["name"] for t in r.list_tensors()]
    assert r.read_msgpack(b"MMSG")["model"] is not None or r.read_msgpack(b"MMSG")
    tensors = r.list_tensors()
    truth = expected["tensor_sets"]["mixed"]
    for t in tensors:
        for k in ("name", "dtype", "shape", "shard_id", "data_off", "data_len"):
            assert k in t, k
        assert r.read_tensor_bytes(t["name"]) == bytes(r.read_tensor_view(t["name"]))
        assert blake3.blake3(r.read_tensor_bytes(t["name"])).hexdigest() == truth[t["name"]]["blake3"]
        assert isinstance(r.read_tensor_view(t["name"]), memoryview)
    assert r.validate_all() == []
    assert r.validate_control() == []
    r.close()


def test_extra_tidx_keys_are_kept(golden, tmp_path):
    with AeroReader(golden / "tensor-hash-defect.aero") as r:
        assert all("hash_b3" in t for t in r.list_tensors())


def test_quant_keys_from_gguf(tmp_path):
    gguf = pytest.importorskip("gguf")  # installed by CI
    import numpy as np
    w = gguf.GGUFWriter(str(tmp_path / "m.gguf"), "llama")
    data = np.arange(256, dtype=np.float32).reshape(8, 32)
    w.add_tensor("blk.0.w", gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0),
                 raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("f", np.ones(4, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    at.convert(tmp_path / "m.gguf", tmp_path / "m.aero")
    with AeroReader(tmp_path / "m.aero") as r:
        t = next(t for t in r.list_tensors() if t["name"] == "blk.0.w")
        assert t["dtype"] == 0x8000 and "quant_params" in t
        raw = r.get_tensor("blk.0.w")
        assert raw.dtype == np.uint8 and raw.nbytes == t["data_len"]
        deq = r.get_tensor("blk.0.w", dequantize="f32")
        ref = gguf.quants.dequantize(np.frombuffer(raw.tobytes(), np.uint8).reshape(8, 34),
                                     gguf.GGMLQuantizationType.Q8_0)
        np.testing.assert_array_equal(deq.reshape(ref.shape), ref)


def test_set_reader_api(golden, expected):
    s = AeroSetReader(str(golden / "aeroset-local" / "model.aeroset.json"))
    assert isinstance(s.model_name, str) and isinstance(s.architecture, str)
    names = [t["name"] for t in s.list_tensors()]
    assert set(names) == set(expected["tensor_sets"]["mixed"])
    for n in names:
        assert blake3.blake3(s.read_tensor_bytes(n)).hexdigest() == \
            expected["tensor_sets"]["mixed"][n]["blake3"]
    assert s.validate() == []
    s.close()
    with pytest.raises(ValueError):
        s.read_tensor_bytes(names[0])
