"""``aerotensor.convert`` of a Hugging Face model folder (no torch needed):
one AERO file carrying the folder's other files as verified ``FILE``
chunks; a sharded folder into an AEROSET with the files beside its
manifest. The folder is written by tests/fixtures/gen_hf_folder.py with the
safetensors package. (The transformers round trip is torch_tests/test_torch_hf_folder.py.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import aerotensor as at

ROOT = Path(__file__).resolve().parents[3]


def folder(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "tiny-bert"
    subprocess.run([sys.executable, str(ROOT / "tests" / "fixtures" / "gen_hf_folder.py"), str(out), *args],
                   check=True)
    return out


def test_a_folder_becomes_one_file_with_its_files(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    src = folder(tmp_path, "--extras")
    out = at.convert(src, tmp_path / "m.aero")
    assert out["input_kind"] == "hf-folder"
    loaded = at.load_file(tmp_path / "m.aero")
    want = st.load_file(str(src / "model.safetensors"))
    assert sorted(loaded) == sorted(want)
    for k, v in want.items():
        np.testing.assert_array_equal(loaded[k], v)
    with at.AeroReader(str(tmp_path / "m.aero")) as r:
        files = {c.name: c for c in r.list_chunks() if c.fourcc == b"FILE"}
        assert "config.json" in files and "1_Pooling/config.json" in files
        assert "pytorch_model.bin" not in files and not any(n.startswith(".git/") for n in files)
        for name, c in files.items():
            assert r.read_chunk_bytes(c) == (src / name).read_bytes(), name
        meta = json.loads(r.read_chunk_bytes(r.get_chunk(b"MJSN")))
        assert meta["model_name"] == "tiny-org/tiny-bert" and meta["architecture"] == "BertModel"
    assert at.validate(tmp_path / "m.aero", "full")["valid"]
    # A flipped byte in an attached file: IntegrityError, and validation fails.
    path = tmp_path / "m.aero"
    data = bytearray(path.read_bytes())
    data[files["config.json"].offset + 3] ^= 0x01
    path.write_bytes(data)
    with at.AeroReader(str(path)) as r:
        c = r.get_chunk_named(b"FILE", "config.json")
        with pytest.raises(at.IntegrityError):
            r.read_chunk_bytes(c)
    assert not at.validate(path, "quick")["valid"]


def test_a_sharded_folder_becomes_a_set_with_its_files(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    src = folder(tmp_path, "--shards", "3")
    out = at.convert(src, tmp_path / "set")
    assert out["input_kind"] == "hf-folder"
    manifest = json.loads((tmp_path / "set" / "model.aeroset.json").read_text())
    assert manifest["model"]["name"] == "tiny-org/tiny-bert"
    for f in manifest["files"]:
        assert (tmp_path / "set" / f["path"]).read_bytes() == (src / f["path"]).read_bytes()
    loaded = at.load_file(tmp_path / "set")
    for shard in sorted(src.glob("model-*.safetensors")):
        for k, v in st.load_file(str(shard)).items():
            np.testing.assert_array_equal(loaded[k], v)
    # Named .aero: one file.
    at.convert(src, tmp_path / "one.aero")
    assert sorted(at.load_file(tmp_path / "one.aero")) == sorted(loaded)
