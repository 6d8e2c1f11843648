"""Every golden file's tensors against expected.json: names, dtypes,
shapes, byte lengths and the BLAKE3 of the bytes each read path returns."""

import blake3
import numpy as np
import pytest

import aerotensor as at


def b3(data) -> str:
    return blake3.blake3(bytes(data)).hexdigest()


def _files(expected):
    return [(rel, info) for rel, info in expected["files"].items() if "tensors" in info]


def test_every_golden_file_is_covered(expected):
    names = {rel for rel, _ in _files(expected)}
    assert {"test-vector.aero", "mixed-single-shard.aero", "mixed-multishard.aero",
            "ihsh-phsh.aero", "mjsn-zero-hash.aero", "tensor-hash-defect.aero",
            "convert-output.aero", "aeroset-local/model.aeroset.json"} <= names


def _open(golden, rel):
    if rel.endswith(".json"):
        return at.AeroSetReader(golden / rel)
    return at.AeroReader(golden / rel)


def test_golden_tensors(golden, expected):
    checked, want_checked = 0, 0
    for rel, info in _files(expected):
        truth = expected["tensor_sets"][info["tensors"]]
        damaged = set(info.get("damaged_tensors", []))
        want_checked += len(set(truth) - damaged)
        with _open(golden, rel) as r:
            listed = {t["name"]: t for t in r.list_tensors()}
            assert set(listed) == set(truth), rel
            assert r.keys() == [t["name"] for t in r.list_tensors()], rel
            for name, want in truth.items():
                t = listed[name]
                assert (t["dtype"], list(t["shape"]), t["data_len"]) == \
                    (want["dtype"], want["shape"], want["data_len"]), (rel, name)
                if name in damaged:
                    with pytest.raises(at.IntegrityError):
                        r.read_tensor_bytes(name)
                    with pytest.raises(at.IntegrityError):
                        r.get_tensor(name)
                    continue
                assert b3(r.read_tensor_bytes(name)) == want["blake3"], (rel, name)
                assert b3(r.read_tensor_view(name)) == want["blake3"], (rel, name)
                a = r.get_tensor(name)
                assert a.dtype == at.NUMPY_DTYPES[want["dtype"]], (rel, name)
                assert list(a.shape) == want["shape"], (rel, name)
                assert b3(a.tobytes()) == want["blake3"], (rel, name)
                checked += 1
    assert checked == want_checked == 59


def test_golden_load_file(golden, expected):
    for rel, info in _files(expected):
        if info.get("damaged_tensors"):
            with pytest.raises(at.IntegrityError):
                at.load_file(golden / rel)
            continue
        truth = expected["tensor_sets"][info["tensors"]]
        got = at.load_file(golden / rel)
        assert set(got) == set(truth), rel
        for name, want in truth.items():
            assert b3(np.ascontiguousarray(got[name]).tobytes()) == want["blake3"], (rel, name)


def test_golden_validate_verdicts(golden, expected):
    for rel, info in expected["files"].items():
        if "expect" not in info:
            continue
        rep = at.validate(golden / rel, "full")
        if info["expect"] == "valid":
            assert rep["verdict"] == "valid", (rel, rep["errors"], rep["warnings"])
        elif rel == "mjsn-zero-hash.aero":
            assert rep["verdict"] == "valid-with-warnings", rep
        elif rel == "tensor-hash-defect.aero":
            assert rep["verdict"] == "invalid" and rep["errors"], rep
    with at.AeroReader(golden / "ihsh-phsh.aero") as r:
        assert r.validate_control() == []
        assert r.validate_all() == []
    with at.AeroReader(golden / "tensor-hash-defect.aero") as r:
        problems = r.validate_all()
        assert problems and any("weights.shard0" in p for p in problems)


def test_golden_chunk_tables(golden, expected):
    for rel, info in expected["files"].items():
        if "chunks" not in info:
            continue
        with at.AeroReader(golden / rel) as r:
            got = [{"flags": c.flags, "fourcc": c.fourcc.decode(), "length": c.length,
                    "name": c.name, "offset": c.offset, "ulen": c.ulen} for c in r.list_chunks()]
            assert got == info["chunks"], rel


def test_uuid(golden, expected):
    for rel, info in expected["files"].items():
        if "uuid_hex" in info:
            with at.AeroReader(golden / rel) as r:
                assert r.uuid.hex() == info["uuid_hex"], rel
