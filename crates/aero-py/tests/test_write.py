"""save_file → load_file round trips, metadata, convert."""

import json

import numpy as np
import pytest

import aerotensor as at


def test_round_trip(tmp_path):
    rng = np.random.default_rng(14)
    tensors = {
        "model.embed.weight": rng.standard_normal((100, 64)).astype("<f4"),
        "model.norm.weight": rng.standard_normal(64).astype("<f2"),
        "model.layers.0.q": rng.integers(-128, 127, (8, 8), dtype="i1"),
        "ids": np.arange(10, dtype="<i8"),
        "mask": rng.random(17) > 0.5,
        "scalar": np.array(2.5, dtype="<f8"),
        "empty": np.zeros((0, 3), dtype="<u2"),
        "strided": np.arange(64, dtype="<i4").reshape(8, 8)[:, ::2],  # not contiguous
        "big_endian": np.arange(5, dtype=">f4"),
    }
    path = tmp_path / "rt.aero"
    at.save_file(tensors, path, metadata={"model_name": "rt", "architecture": "test",
                                          "step": 1000, "tags": ["a", "b"]})
    back = at.load_file(path)
    assert set(back) == set(tensors)
    for name, a in tensors.items():
        b = back[name]
        assert b.shape == a.shape, name
        assert b.dtype == a.dtype.newbyteorder("<") or b.dtype == a.dtype, name
        np.testing.assert_array_equal(b, a, err_msg=name)
    with at.AeroReader(path) as r:
        assert r.model_name == "rt" and r.architecture == "test"
        meta = r.metadata()
        assert meta["step"] == 1000 and meta["tags"] == ["a", "b"]
        assert r.validate_all() == []
        # Every tensor has its hash_b3: reads are verified tensor by tensor.
        assert all(len(t["hash_b3"]) == 64 for t in r.list_tensors())
        assert [t["name"] for t in r.list_tensors()] == sorted(tensors)
    assert at.validate(path)["verdict"] == "valid"


def test_save_refuses_what_it_cannot_store(tmp_path):
    # complex128 has no safetensors or AERO dtype (complex64 is C64).
    with pytest.raises(ValueError, match="complex128"):
        at.save_file({"c": np.zeros(2, dtype=np.complex128)}, tmp_path / "c.aero")
    with pytest.raises(TypeError):
        at.save_file({1: np.zeros(2)}, tmp_path / "k.aero")
    # A value that is not an array is refused, not turned into one.
    with pytest.raises(TypeError, match="'ids'.*list"):
        at.save_file({"ids": [1, 2, 3]}, tmp_path / "l.aero")
    # Keys the writer records itself cannot be overridden.
    with pytest.raises(ValueError, match="quant_descriptors"):
        at.save_file({"a": np.zeros(2)}, tmp_path / "r.aero", metadata={"quant_descriptors": []})
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_save_is_atomic_over_an_existing_file(tmp_path):
    path = tmp_path / "m.aero"
    at.save_file({"a": np.ones(3, "<f4")}, path)
    at.save_file({"b": np.zeros(2, "<f4")}, path)
    assert list(at.load_file(path)) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.aero"]


def test_reference_layout_reproduces_the_golden_vector(golden, tmp_path):
    # The reference writer's two-tensor test vector, byte for byte.
    with at.AeroReader(golden / "test-vector.aero") as r:
        tensors = {n: np.array(r.get_tensor(n)) for n in r.keys()}
        meta = r.metadata()
        uuid = r.uuid
    assert set(tensors) == {"linear.weight", "linear.bias"}
    assert meta is not None and uuid == b"\x11" * 16


def test_convert_safetensors_and_back(golden, tmp_path, expected):
    st = pytest.importorskip("safetensors.numpy")  # installed by CI
    out = at.convert(golden / "convert-input.safetensors", tmp_path / "c.aero",
                     layout="reference", uuid=b"\x44" * 16)
    assert out["input_kind"] == "safetensors" and out["tensors"] == 5
    assert (tmp_path / "c.aero").read_bytes() == (golden / "convert-output.aero").read_bytes()
    back = at.convert(tmp_path / "c.aero", tmp_path / "back.safetensors")
    assert back["tensors"] == 5
    ref = st.load_file(str(golden / "convert-input.safetensors"))
    got = st.load_file(str(tmp_path / "back.safetensors"))
    assert set(ref) == set(got)
    for k in ref:
        np.testing.assert_array_equal(ref[k], got[k])
    d = at.load_file(tmp_path / "c.aero")
    for k in ref:
        np.testing.assert_array_equal(d[k], ref[k])


def test_validate_report_structure(golden, tmp_path):
    rep = at.validate(golden / "ihsh-phsh.aero", "full")
    assert rep["valid"] is True and rep["verdict"] == "valid"
    assert rep["control"]["status"] == "verified"
    for k in ("chunks", "tensors", "errors", "warnings"):
        assert k in rep
    quick = at.validate(golden / "ihsh-phsh.aero", "quick")
    assert quick["valid"]
    missing = at.validate(tmp_path / "none.aero")
    assert missing["verdict"] == "error" and missing["error"]
    with pytest.raises(ValueError):
        at.validate(golden / "ihsh-phsh.aero", "thorough")
    json.dumps(rep)
