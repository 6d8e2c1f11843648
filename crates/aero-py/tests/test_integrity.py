"""Damaged files raise IntegrityError (never bad bytes); errors carry the
file, tensor and field; hostile files raise, they never crash Python."""

import os
import random
import shutil

import numpy as np
import pytest

import aerotensor as at


def _flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x55]))


def _tensor_offset(path, name):
    with at.AeroReader(path) as r:
        t = next(t for t in r.list_tensors() if t["name"] == name)
        shard = r.find_shard_chunk(t["shard_id"])
        return shard.offset + t["data_off"], t


@pytest.fixture()
def big(tmp_path):
    """A file written by save_file (hash_b3 + 1 MiB page hashes) with a
    4 MiB tensor (4 pages) and a small one."""
    path = tmp_path / "big.aero"
    rows = np.arange(1024 * 1024, dtype="<f4").reshape(1024, 1024)
    at.save_file({"w": rows, "b": np.ones(16, dtype="<f4")}, path)
    return path, rows


@pytest.mark.parametrize("golden_file", ["mixed-single-shard.aero", "ihsh-phsh.aero",
                                         "mixed-multishard.aero"])
def test_flipped_weight_byte_golden(golden_copy, golden_file):
    path = golden_copy / golden_file
    off, _ = _tensor_offset(path, "big.weight")
    _flip(path, off + 1000)
    with at.AeroReader(path) as r:
        with pytest.raises(at.IntegrityError) as e:
            r.get_tensor("big.weight")
        assert e.value.path == str(path)
        assert e.value.tensor == "big.weight"
        with pytest.raises(at.IntegrityError):
            r.read_tensor_bytes("big.weight")
        with pytest.raises(at.IntegrityError):
            r.read_tensor_view("big.weight")
        with pytest.raises(at.IntegrityError):
            r.get_slice("big.weight")[0:64]
        assert r.validate_all()
    with pytest.raises(at.IntegrityError):
        at.load_file(path)
    assert at.validate(path)["verdict"] == "invalid"


def test_flipped_byte_written_file(big):
    path, rows = big
    off, t = _tensor_offset(path, "w")
    _flip(path, off + 3 * (1 << 20) + 17)  # page 3 of the tensor (data_off is page-aligned)
    with at.AeroReader(path) as r:
        with pytest.raises(at.IntegrityError) as e:
            r.get_tensor("w")
        err = e.value
        assert isinstance(err, at.AeroError)
        assert (err.path, err.tensor, err.check, err.kind) == (str(path), "w", "hash_b3", "corrupt")
        assert err.chunk == "weights.shard0" and err.offset == off
        assert "w" in str(err) and str(path) in str(err)
        # Rows on intact pages verify through their own page hashes...
        np.testing.assert_array_equal(r.get_slice("w")[0:256], rows[0:256])
        # ... rows on the damaged page do not.
        with pytest.raises(at.IntegrityError) as e:
            r.get_slice("w")[768:770]
        assert e.value.check.startswith("PHSH page")
        np.testing.assert_array_equal(r.get_tensor("b"), np.ones(16, dtype="<f4"))
    rep = at.validate(path)
    assert rep["verdict"] == "invalid" and rep["errors"]


def test_chunk_reads_are_verified(golden_copy):
    path = golden_copy / "mixed-single-shard.aero"
    with at.AeroReader(path) as r:
        mjsn, tidx = r.get_chunk(b"MJSN"), r.get_chunk(b"TIDX")
    _flip(path, mjsn.offset + 5)
    _flip(path, tidx.offset + 5)  # compressed: the damage breaks the zstd frame
    with at.AeroReader(path) as r:
        with pytest.raises(at.IntegrityError) as e:
            r.read_chunk_bytes(r.get_chunk("MJSN"))
        assert e.value.chunk == "MJSN 'meta.json'" and e.value.path == str(path)
        with pytest.raises(at.AeroError):
            r.list_tensors()
        with pytest.raises(at.AeroError):
            r.read_chunk_bytes(r.get_chunk("TIDX"))
        # Unverified bytes only when asked for by name.
        assert len(r.read_chunk_bytes(r.get_chunk("MJSN"), verify_hash=False)) == mjsn.ulen


def test_unrecorded_chunk_hash_is_refused(golden):
    with at.AeroReader(golden / "mjsn-zero-hash.aero") as r:
        with pytest.raises(at.IntegrityError) as e:
            r.read_chunk_bytes(r.get_chunk(b"MJSN"))
        assert e.value.kind == "hash-not-recorded"
        assert r.read_chunk_bytes(r.get_chunk(b"MJSN"), verify_hash=False).startswith(b"{")


def test_errors_name_what_failed(golden, tmp_path):
    with pytest.raises(FileNotFoundError):
        at.AeroReader(tmp_path / "missing.aero")
    not_aero = tmp_path / "x.aero"
    not_aero.write_bytes(b"PK\x03\x04" + bytes(200))
    with pytest.raises(at.AeroError) as e:
        at.AeroReader(not_aero)
    assert e.value.path == str(not_aero) and e.value.kind == "not-aero"
    with at.AeroReader(golden / "test-vector.aero") as r:
        with pytest.raises(at.TensorNotFoundError) as e:
            r.get_tensor("nope")
        assert isinstance(e.value, KeyError) and e.value.tensor == "nope"
    trunc = tmp_path / "t.aero"
    trunc.write_bytes((golden / "test-vector.aero").read_bytes()[:100])
    with pytest.raises(at.AeroError) as e:
        at.AeroReader(trunc)
    assert e.value.path == str(trunc) and e.value.field


def _read_everything(path):
    with at.AeroReader(path) as r:
        r.list_chunks()
        for c in r.list_chunks():
            try:
                r.read_chunk_bytes(c)
            except at.AeroError:
                pass
        for t in r.list_tensors():
            try:
                r.get_tensor(t["name"])
                s = r.get_slice(t["name"])
                if s.shape:
                    s[0:1]
            except (at.AeroError, TypeError):
                pass
        r.validate_all()
        r.validate_control()
        r.read_msgpack(b"TIDX")


def test_hostile_files_raise_never_crash(golden, tmp_path):
    """Random damage to every golden file: each open and read either works
    or raises AeroError/OSError — the process survives (a crash would kill
    pytest)."""
    rng = random.Random(14)
    outcomes = {"ok": 0, "error": 0}
    for src in sorted(golden.glob("*.aero")):
        orig = src.read_bytes()
        for i in range(40):
            b = bytearray(orig)
            how = i % 4
            if how == 0:
                b = b[: rng.randrange(len(b))]
            else:
                for _ in range(1 + how * 3):
                    p = rng.randrange(len(b))
                    b[p] = rng.choice([0, 0xFF, rng.randrange(256)])
                if how == 3:  # aim at the header and TOC
                    for _ in range(4):
                        b[rng.randrange(min(len(b), 400))] = rng.randrange(256)
            p = tmp_path / f"h-{src.stem}-{i}.aero"
            p.write_bytes(bytes(b))
            try:
                _read_everything(p)
                outcomes["ok"] += 1
            except (at.AeroError, OSError):
                outcomes["error"] += 1
            os.remove(p)
    assert outcomes["error"] > 50 and sum(outcomes.values()) == 40 * len(list(golden.glob("*.aero")))


def test_hostile_set_manifest(golden_copy):
    m = golden_copy / "aeroset-local" / "model.aeroset.json"
    m.write_text(m.read_text().replace('"part-001.aero"', '"../../../etc/passwd"'))
    with pytest.raises(at.AeroError) as e:
        at.AeroSetReader(m).get_tensor("big.weight")
    assert e.value.field
