"""get_slice(name)[a:b] reads and verifies only the rows asked for."""

import numpy as np
import pytest

import aerotensor as at


@pytest.fixture()
def rows(tmp_path):
    path = tmp_path / "rows.aero"
    w = (np.arange(512 * 256, dtype="<f4") * 0.5).reshape(512, 256)
    at.save_file({"w": w, "h": np.arange(40, dtype="<f2").reshape(10, 4),
                  "s": np.array(7, dtype="<i4")}, path)
    return path, w


def test_slices_match_numpy(rows):
    path, w = rows
    with at.AeroReader(path) as r:
        s = r.get_slice("w")
        assert s.get_shape() == [512, 256] and s.get_dtype() == "F32" and len(s) == 512
        for key in [slice(0, 1), slice(10, 20), slice(500, None), slice(None, 3),
                    slice(-5, -1), slice(7, 3), slice(1, 100, 7), slice(None, None, -3),
                    slice(300, 100, -2)]:
            np.testing.assert_array_equal(s[key], w[key], err_msg=str(key))
        np.testing.assert_array_equal(s[3], w[3])
        np.testing.assert_array_equal(s[-1], w[-1])
        np.testing.assert_array_equal(s[10:20, 5:9], w[10:20, 5:9])
        np.testing.assert_array_equal(s[4, ::2], w[4, ::2])
        np.testing.assert_array_equal(s[...], w)
        with pytest.raises(IndexError):
            s[512]
        h = r.get_slice("h")
        np.testing.assert_array_equal(h[2:5], np.arange(40, dtype="<f2").reshape(10, 4)[2:5])
        assert r.get_slice("s")[()] == 7


def test_slice_reads_only_its_pages(rows, tmp_path):
    # 1 MiB page hashes would make a 512 KiB tensor one page: write 4 KiB pages
    # through convert's options instead... save_file uses the writer defaults,
    # so damage a row far from the one read and check that the read succeeds
    # only when the damage is outside the pages it covers.
    path, w = rows
    big = tmp_path / "big.aero"
    at.save_file({"w": np.tile(w, (8, 1))}, big)  # 4 MiB: four 1 MiB pages
    with at.AeroReader(big) as r:
        t = r.list_tensors()[0]
        off = r.find_shard_chunk(0).offset + t["data_off"]
    with open(big, "r+b") as f:
        f.seek(off + (3 << 20) + 4)
        f.write(b"\xff\xff\xff\xff")
    with at.AeroReader(big) as r:
        full = np.tile(w, (8, 1))
        np.testing.assert_array_equal(r.get_slice("w")[0:100], full[0:100])
        with pytest.raises(at.IntegrityError):
            r.get_slice("w")[3500:3501]
        with pytest.raises(at.IntegrityError):
            r.get_tensor("w")


def test_slice_of_golden_and_set(golden):
    for path in [golden / "ihsh-phsh.aero", golden / "mixed-single-shard.aero"]:
        with at.AeroReader(path) as r:
            full = r.get_tensor("big.weight")
            np.testing.assert_array_equal(r.get_slice("big.weight")[5:9], full[5:9])
    with at.AeroSetReader(golden / "aeroset-local") as s:
        full = s.get_tensor("big.weight")
        np.testing.assert_array_equal(s.get_slice("big.weight")[60:64], full[60:64])
