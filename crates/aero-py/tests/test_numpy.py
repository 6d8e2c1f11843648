"""numpy views: dtype, shape, values, read-only, zero-copy."""

import numpy as np
import pytest

import aerotensor as at

ARRAYS = {
    "f32": np.arange(24, dtype="<f4").reshape(2, 3, 4) / 7,
    "f16": np.linspace(-2, 2, 10, dtype="<f2"),
    "f64": np.array(3.25, dtype="<f8"),
    "i8": np.arange(-8, 8, dtype="i1"),
    "i16": np.arange(12, dtype="<i2").reshape(3, 4),
    "i32": np.arange(6, dtype="<i4") * -100000,
    "i64": np.array([1 << 40, -5], dtype="<i8"),
    "u8": np.arange(250, 256, dtype="u1"),
    "u16": np.array([65535, 1], dtype="<u2"),
    "u32": np.array([1 << 31], dtype="<u4"),
    "u64": np.array([1 << 63], dtype="<u8"),
    "bool": np.array([True, False, True]),
    "empty": np.zeros((0, 4), dtype="<f4"),
}


@pytest.fixture()
def saved(tmp_path):
    path = tmp_path / "views.aero"
    at.save_file(ARRAYS, path)
    return path


def test_dtype_shape_values(saved):
    with at.AeroReader(saved) as r:
        assert sorted(r.keys()) == sorted(ARRAYS)
        for name, want in ARRAYS.items():
            a = r.get_tensor(name)
            assert a.dtype == want.dtype, name
            assert a.shape == want.shape, name
            np.testing.assert_array_equal(a, want)


def test_read_only(saved):
    with at.AeroReader(saved) as r:
        a = r.get_tensor("f32")
        assert not a.flags.writeable
        with pytest.raises(ValueError):
            a[0, 0, 0] = 1.0
        with pytest.raises(ValueError):
            a.flags.writeable = True
        mv = r.read_tensor_view("f32")
        assert mv.readonly and mv.format == "B" and mv.nbytes == a.nbytes
        with pytest.raises(TypeError):
            mv[0] = 1


def test_zero_copy(saved):
    with at.AeroReader(saved) as r:
        a = r.get_tensor("f32")
        b = r.get_tensor("f32")
        assert a is not b
        # Two reads are two views of the same mapped bytes: nothing copied.
        assert np.shares_memory(a, b)
        assert np.shares_memory(a, np.frombuffer(r.read_tensor_view("f32"), dtype="<f4"))
        assert a.flags.c_contiguous and a.ctypes.data % 64 == 0  # the aligned layout
        assert not np.shares_memory(a, r.get_tensor("i16"))
        # A copy the caller asks for is its own (and writable).
        c = np.array(a)
        assert not np.shares_memory(a, c) and c.flags.writeable


def test_arrays_outlive_the_reader(saved):
    r = at.AeroReader(saved)
    a = r.get_tensor("f32")
    mv = r.read_tensor_view("i64")
    r.close()
    assert r.closed
    with pytest.raises(ValueError):
        r.get_tensor("f32")
    np.testing.assert_array_equal(a, ARRAYS["f32"])  # the mapping is kept alive
    assert np.frombuffer(mv, dtype="<i8").tolist() == ARRAYS["i64"].tolist()


def test_load_file_views(saved):
    d = at.load_file(saved)
    assert sorted(d) == sorted(ARRAYS)
    for name, want in ARRAYS.items():
        np.testing.assert_array_equal(d[name], want)
        assert not d[name].flags.writeable


def test_bfloat16_is_ml_dtypes_bfloat16(golden):
    ml_dtypes = pytest.importorskip("ml_dtypes")  # a dependency of the package
    with at.AeroReader(golden / "mixed-single-shard.aero") as r:
        q = r.get_tensor("attn.q.weight")  # bf16
        assert q.dtype == ml_dtypes.bfloat16 and q.shape == (4, 4)
        bits = np.frombuffer(r.read_tensor_bytes("attn.q.weight"), "<u2").reshape(4, 4)
        np.testing.assert_array_equal(q.view(np.uint16), bits)
        f = r.get_tensor("attn.q.weight", dequantize="f32")
        np.testing.assert_array_equal(f.view(np.uint32), bits.astype(np.uint32) << 16)
        assert r.get_tensor("attn.q.weight", dequantize="bf16").dtype == ml_dtypes.bfloat16


def test_unaligned_reference_layout_is_copied_but_correct(golden):
    # The reference writer packs tensors (data_off not a multiple of the
    # element size): such a tensor comes back as an aligned copy.
    with at.AeroReader(golden / "mixed-single-shard.aero") as r:
        for name in r.keys():
            a = r.get_tensor(name)
            assert a.ctypes.data % max(a.dtype.itemsize, 1) == 0, name
            assert a.tobytes() == r.read_tensor_bytes(name), name
