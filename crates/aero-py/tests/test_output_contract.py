"""The package speaks the CLI's JSON vocabulary (docs/CLI.md): ``validate``
reports name the input ``input`` with its ``format`` and sizes ``size``;
``convert`` returns ``size``; a mistyped tensor name is answered with the
nearest names, as the CLI and the C ABI answer it. Inputs: the golden files
and a safetensors file written here by the ``safetensors`` package."""

import os
import shutil

import numpy as np
import pytest
from safetensors.numpy import save_file as st_save

import aerotensor as at


def test_validate_reports_use_the_shared_vocabulary(golden):
    r = at.validate(golden / "test-vector.aero", "quick")
    assert r["input"] == str(golden / "test-vector.aero")
    assert r["format"] == "AERO" and "file" not in r
    s = at.validate(golden / "aeroset-local", "quick")
    assert s["format"] == "AEROSET" and "kind" not in s and "set" not in s
    assert s["version"] == [0, 1]
    sizes = {f["path"]: f["size"] for f in s["files"]}
    assert sizes["part-001.aero"] == os.path.getsize(golden / "aeroset-local" / "part-001.aero")
    assert all("size_bytes" not in f for f in s["files"])


def test_convert_returns_size(tmp_path):
    src = tmp_path / "m.safetensors"
    st_save({"w": np.arange(6, dtype=np.float32)}, str(src))
    out = at.convert(src, tmp_path / "m.aero")
    assert out["size"] == os.path.getsize(tmp_path / "m.aero")
    assert "file_size" not in out


def test_unknown_tensor_names_the_nearest(golden, tmp_path):
    with at.AeroReader(golden / "test-vector.aero") as r:
        with pytest.raises(at.TensorNotFoundError) as e:
            r.get_tensor("linear.wieght")
        assert "did you mean 'linear.weight'" in str(e.value)
        assert e.value.tensor == "linear.wieght"
        with pytest.raises(at.TensorNotFoundError) as e:
            r.get_tensor("zzzzzz")
        assert "did you mean" not in str(e.value)


def test_missing_part_of_a_set_is_an_os_error(golden, tmp_path):
    set_dir = tmp_path / "set"
    shutil.copytree(golden / "aeroset-local", set_dir)
    (set_dir / "part-001.aero").unlink()
    with at.AeroReader(set_dir) as r:
        assert r.get_tensor("embed.weight").shape == (8, 4)
        with pytest.raises(FileNotFoundError) as e:
            r.get_tensor("big.weight")
        assert "part-001.aero" in str(e.value)
