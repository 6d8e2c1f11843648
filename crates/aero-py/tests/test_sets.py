"""AEROSETs and remote files: local, and served by a real nginx."""

import json

import blake3
import numpy as np
import pytest

import aerotensor as at


def _check_mixed(reader, expected):
    truth = expected["tensor_sets"]["mixed"]
    listed = {t["name"]: t for t in reader.list_tensors()}
    assert set(listed) == set(truth)
    for name, want in truth.items():
        assert (listed[name]["dtype"], list(listed[name]["shape"])) == (want["dtype"], want["shape"])
        assert blake3.blake3(reader.read_tensor_bytes(name)).hexdigest() == want["blake3"], name
        a = reader.get_tensor(name)
        assert list(a.shape) == want["shape"]
        assert blake3.blake3(a.tobytes()).hexdigest() == want["blake3"], name


def _model(golden):
    return json.loads((golden / "aeroset-local" / "model.aeroset.json").read_text())["model"]


def test_local_set(golden, expected):
    MODEL = _model(golden)
    for p in [golden / "aeroset-local", golden / "aeroset-local" / "model.aeroset.json"]:
        with at.AeroSetReader(p) as s:
            assert s.model_name == MODEL["name"] and s.architecture == MODEL["architecture"]
            assert s.validate() == []
            assert s.validate("full") == []
            _check_mixed(s, expected)
        assert s.closed
    assert at.is_set(golden / "aeroset-local")
    assert isinstance(at.open(golden / "aeroset-local"), at.AeroSetReader)
    d = at.load_file(golden / "aeroset-local")
    assert set(d) == set(expected["tensor_sets"]["mixed"])
    assert at.validate(golden / "aeroset-local")["verdict"] == "valid"


def test_local_set_damaged_part(golden_copy):
    part = golden_copy / "aeroset-local" / "part-001.aero"
    b = bytearray(part.read_bytes())
    b[-100] ^= 1
    part.write_bytes(bytes(b))
    with at.AeroSetReader(golden_copy / "aeroset-local") as s:
        assert s.validate()  # the part's SHA-256 no longer matches the manifest
        with pytest.raises(at.IntegrityError):
            s.get_tensor("big.weight")
        with pytest.raises(at.IntegrityError):
            s.read_tensor_bytes("big.weight")


def test_set_written_by_convert(golden, tmp_path, expected):
    """A sharded safetensors checkpoint converted into an AEROSET."""
    safetensors_numpy = pytest.importorskip("safetensors.numpy")  # installed by CI
    src = tmp_path / "ckpt"
    src.mkdir()
    a = {"a.w": np.arange(12, dtype="<f4").reshape(3, 4)}
    b = {"b.w": np.arange(6, dtype="<i8")}
    safetensors_numpy.save_file(a, str(src / "model-00001-of-00002.safetensors"))
    safetensors_numpy.save_file(b, str(src / "model-00002-of-00002.safetensors"))
    (src / "model.safetensors.index.json").write_text(json.dumps({
        "metadata": {}, "weight_map": {"a.w": "model-00001-of-00002.safetensors",
                                       "b.w": "model-00002-of-00002.safetensors"}}))
    out = at.convert(src / "model.safetensors.index.json", tmp_path / "set")
    assert out["input_kind"] == "sharded-safetensors" and out["tensors"] == 2
    d = at.load_file(tmp_path / "set")
    np.testing.assert_array_equal(d["a.w"], a["a.w"])
    np.testing.assert_array_equal(d["b.w"], b["b.w"])


def test_served_by_nginx(nginx, expected, tmp_path, golden):
    MODEL = _model(golden)
    url = nginx["url"]
    # A single file by URL: every read path, verified.
    with at.AeroReader(f"{url}/ihsh-phsh.aero", cache=False) as r:
        _check_mixed(r, expected)
        assert r.validate_control() == []
        np.testing.assert_array_equal(r.get_slice("big.weight")[3:5], r.get_tensor("big.weight")[3:5])
    # The AEROSET by manifest URL and by directory URL.
    for u in [f"{url}/aeroset-local/model.aeroset.json", f"{url}/aeroset-local/"]:
        with at.AeroSetReader(u, cache_dir=tmp_path / "cache") as s:
            assert s.model_name == MODEL["name"] and s.architecture == MODEL["architecture"]
            assert s.validate() == []
            _check_mixed(s, expected)
    assert at.validate(f"{url}/aeroset-local/model.aeroset.json")["verdict"] == "valid"
    assert at.validate(f"{url}/mixed-multishard.aero", "full")["verdict"] == "valid"
    d = at.load_file(f"{url}/mixed-multishard.aero", cache=False)
    assert set(d) == set(expected["tensor_sets"]["mixed"])
    if "log" in nginx:  # our own server: the reads really went through it, by range
        log = nginx["log"].read_text().splitlines()
        assert any("/aeroset-local/part-001.aero" in line and "|206|" in line for line in log), log[-5:]


def test_served_damage_is_refused(nginx, tmp_path):
    path = nginx["root"] / "mixed-single-shard.aero"
    dst = nginx["root"] / "damaged-single-shard.aero"
    b = bytearray(path.read_bytes())
    with at.AeroReader(path) as r:
        t = next(t for t in r.list_tensors() if t["name"] == "big.weight")
        off = r.find_shard_chunk(0).offset + t["data_off"]
    b[off + 100] ^= 0xFF
    dst.write_bytes(bytes(b))
    dst.chmod(0o644)
    with at.AeroReader(f"{nginx['url']}/{dst.name}", cache=False) as r:
        with pytest.raises(at.IntegrityError):
            r.get_tensor("big.weight")
        with pytest.raises(at.IntegrityError):
            r.read_tensor_bytes("big.weight")
    with pytest.raises(FileNotFoundError):  # HTTP 404: missing, not damaged
        at.AeroReader(f"{nginx['url']}/no-such-file.aero", cache=False)
