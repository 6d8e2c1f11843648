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


def _local_arrays(path):
    return {k: v.tobytes() for k, v in at.load_file(path).items()}


def test_whole_load_by_url_is_the_local_load(nginx, golden):
    # load_file(URL) reads each remote file as one span (one parallel
    # ranged read into one region) and hands out views of it: the same
    # arrays, byte for byte, as the local load, for a file and for a set.
    for local, remote in [
        (golden / "mixed-multishard.aero", f"{nginx['url']}/mixed-multishard.aero"),
        (golden / "aeroset-local", f"{nginx['url']}/aeroset-local/model.aeroset.json"),
    ]:
        want = _local_arrays(local)
        got = at.load_file(remote, cache=False)
        assert {k: v.tobytes() for k, v in got.items()} == want
        for k, v in got.items():
            assert not v.flags.writeable, k
    if "log" in nginx:
        log = nginx["log"].read_text().splitlines()
        assert any("/aeroset-local/part-000.aero" in line and "|206|" in line for line in log)


def _flip_in_tensor(path, tensor, dst):
    """Writes ``path`` to ``dst`` with one bit of ``tensor``'s bytes flipped;
    returns whether the tensor records its own ``hash_b3``."""
    b = bytearray(path.read_bytes())
    with at.AeroReader(path) as r:
        t = next(t for t in r.list_tensors() if t["name"] == tensor)
        off = r.find_shard_chunk(t["shard_id"]).offset + t["data_off"]
    b[off + t["data_len"] // 2] ^= 0x01
    dst.write_bytes(bytes(b))
    dst.chmod(0o644)
    return "hash_b3" in t


def test_whole_load_by_url_refuses_a_corrupted_byte(nginx, tmp_path):
    # A flipped byte served in a file whose tensors record hash_b3 (as
    # save_file writes them): the whole load checks each tensor in the
    # region it read, refetches the bad one once, and raises IntegrityError
    # naming it; nothing is handed out.
    rng = np.random.default_rng(7)
    tensors = {f"layer{i}.weight": rng.standard_normal((64, 256), dtype=np.float32)
               for i in range(6)}
    good = nginx["root"] / "whole-load-good.aero"
    at.save_file(tensors, good)
    good.chmod(0o644)
    got = at.load_file(f"{nginx['url']}/{good.name}", cache=False)
    assert {k: v.tobytes() for k, v in got.items()} == {k: v.tobytes() for k, v in tensors.items()}
    bad = nginx["root"] / "whole-load-damaged.aero"
    assert _flip_in_tensor(good, "layer3.weight", bad), "save_file records hash_b3"
    with pytest.raises(at.IntegrityError, match="layer3.weight"):
        at.load_file(f"{nginx['url']}/{bad.name}", cache=False)
    # The damaged bytes are not kept in the cache as verified: a second
    # load through the same cache fails the same way.
    for _ in range(2):
        with pytest.raises(at.IntegrityError, match="layer3.weight"):
            at.load_file(f"{nginx['url']}/{bad.name}", cache_dir=tmp_path / "cache")
    # A set converted from safetensors shards (written by the safetensors
    # package), its tensors recording hash_b3: loaded whole by URL it is the
    # local load; one byte flipped in one part raises IntegrityError naming
    # the tensor, and no array of any part is handed out.
    import json
    import shutil
    from safetensors.numpy import save_file as st_save
    src = tmp_path / "hf"
    src.mkdir()
    names = sorted(tensors)
    weight_map = {}
    for i, part in enumerate([names[:3], names[3:]]):
        fn = f"model-{i + 1:05d}-of-00002.safetensors"
        st_save({k: tensors[k] for k in part}, str(src / fn))
        weight_map.update({k: fn for k in part})
    (src / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    setdir = nginx["root"] / "whole-load-set"
    import subprocess
    import sys
    subprocess.run([sys.executable, "-m", "aerotensor", "convert-safetensors-sharded", str(src), str(setdir),
                    "--max-shard-bytes", "200000", "--max-part-shards", "1"],
                   check=True, capture_output=True)
    for p in [setdir, *setdir.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    parts = json.loads((setdir / "model.aeroset.json").read_text())["parts"]
    assert len(parts) >= 2
    url = f"{nginx['url']}/{setdir.name}/model.aeroset.json"
    got = at.load_file(url, cache=False)
    assert {k: v.tobytes() for k, v in got.items()} == {k: v.tobytes() for k, v in tensors.items()}
    part = setdir / parts[1]["path"]
    with at.AeroReader(part) as r:
        victim = r.keys()[0]
    damaged = nginx["root"] / "whole-load-set-damaged"
    shutil.copytree(setdir, damaged)
    for p in [damaged, *damaged.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    assert _flip_in_tensor(part, victim, damaged / parts[1]["path"]), "convert records hash_b3"
    with pytest.raises(at.IntegrityError, match=victim):
        at.load_file(f"{nginx['url']}/{damaged.name}/model.aeroset.json", cache=False)
