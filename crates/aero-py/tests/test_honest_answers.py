"""Issue 20 through the package: ``convert()`` writes what the output's
name asks for (the rule ``aerotensor convert`` follows); ``load_file`` of a
file with one flipped byte names that tensor; an unparsable MJSN is an
error in ``validate`` and ``metadata()``. Inputs are written here by the
``safetensors`` package or are modified copies of the golden files."""

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import load_file as st_load, save_file as st_save

import aerotensor as at

QUERY = "encoder.layer.0.attention.self.query.weight"
NAMES = [
    "embeddings.LayerNorm.bias",
    "embeddings.LayerNorm.weight",
    "embeddings.word_embeddings.weight",
    "encoder.layer.0.attention.self.key.weight",
    QUERY,
    "encoder.layer.0.attention.self.value.weight",
    "pooler.dense.weight",
]


def _bert(tmp_path):
    """A BERT-like safetensors file: the damaged tensor is neither first
    nor last, by name or by offset."""
    rng = np.random.default_rng(20)
    tensors = {n: rng.standard_normal((64,) if "LayerNorm" in n else (64, 64)).astype("<f4")
               for n in NAMES}
    p = tmp_path / "model.safetensors"
    st_save(tensors, str(p), metadata={"model_name": "mini"})
    return p, tensors


def _flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


def _tensor_offset(path, name):
    with at.AeroReader(path) as r:
        t = next(t for t in r.list_tensors() if t["name"] == name)
        return r.find_shard_chunk(t["shard_id"]).offset + t["data_off"]


def test_convert_chooses_by_the_output_name(tmp_path):
    st, tensors = _bert(tmp_path)
    aero = tmp_path / "model.aero"
    assert at.convert(st, aero)["input_kind"] == "safetensors"

    # .safetensors and .gguf export an AERO input (any case).
    back = tmp_path / "back.SAFETENSORS"
    at.convert(aero, back)
    got = st_load(str(back))
    assert sorted(got) == sorted(tensors)
    for n, a in tensors.items():
        np.testing.assert_array_equal(got[n], a)
    gg = tmp_path / "back.gguf"
    at.convert(aero, gg)
    import gguf
    r = gguf.GGUFReader(str(gg))
    assert sorted(t.name for t in r.tensors) == sorted(tensors)

    # A directory, existing or ending in '/': DIR/<stem>.aero.
    d = tmp_path / "dist"
    d.mkdir()
    out = at.convert(st, d)
    assert out["output"] == str(d / "model.aero")
    assert at.validate(d / "model.aero")["valid"]
    out = at.convert(aero, str(tmp_path / "fresh") + "/")
    assert out["output"] == str(tmp_path / "fresh" / "model.aero")
    with at.AeroReader(tmp_path / "fresh" / "model.aero") as r:
        np.testing.assert_array_equal(r.get_tensor(QUERY), tensors[QUERY])

    # Refused, as the CLI refuses them (exit 2 there): nothing written.
    for src, dst, says in [
        (st, "x.gguf", "export-gguf"),
        (st, "y.safetensors", "already safetensors"),
    ]:
        with pytest.raises(ValueError, match=says):
            at.convert(src, tmp_path / dst)
        assert not (tmp_path / dst).exists()
    with pytest.raises(ValueError, match="layout"):
        at.convert(aero, tmp_path / "z.safetensors", layout="reference")
    assert not (tmp_path / "z.safetensors").exists()


def test_load_file_names_the_damaged_tensor(tmp_path):
    st, _ = _bert(tmp_path)
    good = tmp_path / "good.aero"
    at.convert(st, good)
    start = _tensor_offset(good, QUERY)
    bad = tmp_path / "bad.aero"
    bad.write_bytes(good.read_bytes())
    _flip(bad, start + 100)
    with pytest.raises(at.IntegrityError) as e:
        at.load_file(bad)
    assert e.value.tensor == QUERY
    assert e.value.path == str(bad)
    assert e.value.offset == start
    assert e.value.check == "hash_b3"
    # convert (a repack of an AERO input) names it too.
    with pytest.raises(at.IntegrityError) as e:
        at.convert(bad, tmp_path / "out.aero")
    assert e.value.tensor == QUERY
    assert not (tmp_path / "out.aero").exists()


def _mjsn_as_array(golden, tmp_path):
    """mjsn-zero-hash.aero with its MJSN object rewritten as a JSON array
    of the same length (the TOC records no hash for it)."""
    b = bytearray((golden / "mjsn-zero-hash.aero").read_bytes())
    entry = 112  # TOC entry 0
    assert b[entry:entry + 4] == b"MJSN"
    off, length = struct.unpack_from("<QQ", b, entry + 8)
    payload = bytes(b[off:off + length]).replace(b"{", b"[").replace(b"}", b"]").replace(b":", b",")
    assert isinstance(json.loads(payload), list)
    b[off:off + length] = payload
    p = tmp_path / "mjsn-array.aero"
    p.write_bytes(bytes(b))
    return p


def test_an_unparsable_mjsn_is_an_error(golden, tmp_path):
    p = _mjsn_as_array(golden, tmp_path)
    for mode in ("quick", "full"):
        rep = at.validate(p, mode)
        assert rep["verdict"] == "invalid", rep
        assert any("MJSN" in e and "not a JSON object" in e for e in rep["errors"]), rep
        assert rep["chunks"][0]["status"] == "error"
    with at.AeroReader(p) as r:
        with pytest.raises(at.AeroError) as e:
            r.metadata()
        assert e.value.chunk == "MJSN"
        assert r.validate_all()
