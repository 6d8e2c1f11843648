"""Files the reference's ``convert-gguf`` wrote store shapes in GGUF order
and pad tensors to 32 bytes (spec §15, §16.5). Read through the package,
they must give what gguf-py gives for the GGUF they came from
(``reference-gguf/expected.json``, and gguf-py itself on ``source.gguf``):
row-major shapes, the exact bytes, gguf-py's f32 values — as this
project's own conversion of that GGUF does."""

import hashlib
import json

import gguf
import numpy as np
import pytest

import aerotensor as at


def sha256(data) -> str:
    return hashlib.sha256(bytes(data)).hexdigest()


@pytest.fixture(scope="module")
def ref(golden):
    return golden / "reference-gguf"


@pytest.fixture(scope="module")
def want(ref):
    return json.loads((ref / "expected.json").read_text())


@pytest.fixture(scope="module")
def ours(ref, tmp_path_factory):
    out = tmp_path_factory.mktemp("ours") / "ours.aero"
    at.convert(ref / "source.gguf", out)
    return out


@pytest.fixture(scope="module")
def gguf_values(ref):
    """gguf-py's own reading of source.gguf: name -> (raw bytes, f32 values
    in row-major shape)."""
    r = gguf.GGUFReader(str(ref / "source.gguf"))
    out = {}
    for t in r.tensors:
        shape = tuple(int(x) for x in reversed(t.shape))
        values = gguf.quants.dequantize(t.data, t.tensor_type)
        out[t.name] = (t.data.tobytes(), np.asarray(values, dtype=np.float32).reshape(shape))
    return out


@pytest.mark.parametrize("which", ["reference", "ours"])
def test_reads_as_the_gguf_it_came_from(which, ref, ours, want, gguf_values):
    path = ref / "reference-converted.aero" if which == "reference" else ours
    with at.AeroReader(path) as r:
        assert set(r.keys()) == set(want)
        for name, e in want.items():
            shape = tuple(e["row_major_shape"])
            raw, values = gguf_values[name]
            # The tensor's own bytes, no padding.
            b = r.read_tensor_bytes(name)
            assert len(b) == e["n_bytes"] and sha256(b) == e["bytes_sha256"] and b == raw, name
            assert sha256(r.read_tensor_view(name)) == e["bytes_sha256"], name
            # Dequantized (packed) or converted (f16/f32): gguf-py's values,
            # row-major.
            f32 = r.get_tensor(name, dequantize="f32")
            assert f32.shape == shape and f32.dtype == np.float32, name
            assert sha256(np.ascontiguousarray(f32).tobytes()) == e["f32_sha256"], name
            np.testing.assert_array_equal(f32, values)
            # The lazy slice knows the row-major shape too.
            assert r.get_slice(name).get_shape() == list(shape), name
            a = r.get_tensor(name)
            if e["ggml_type"] in ("F32", "F16"):
                assert a.shape == shape, name
                np.testing.assert_array_equal(r.get_slice(name)[1:3], a[1:3])
            else:
                assert a.dtype == np.uint8 and a.shape == (e["n_bytes"],), name


def test_load_file_and_safe_open_agree_on_the_reference_file(ref, want):
    path = ref / "reference-converted.aero"
    d = at.load_file(path, dequantize="f32")
    assert {k: v.shape for k, v in d.items()} == {k: tuple(e["row_major_shape"]) for k, e in want.items()}
    with at.safe_open(path, framework="numpy") as f:
        for name, e in want.items():
            assert f.get_slice(name).get_shape() == e["row_major_shape"]
            assert sha256(np.ascontiguousarray(d[name]).tobytes()) == e["f32_sha256"]
