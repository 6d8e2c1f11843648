"""``aerotensor.convert(..., like=OLD_SET)``: a new revision of a sharded
checkpoint written on the plan of the set it replaces, so only the part
holding a changed tensor changes (compared byte for byte)."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

import aerotensor


def _checkpoint(d, tensors):
    """A transformers-style sharded checkpoint: two files and the index."""
    d.mkdir(parents=True, exist_ok=True)
    names = sorted(tensors)
    half = len(names) // 2
    weight_map = {}
    for i, chunk in enumerate((names[:half], names[half:])):
        f = f"model-{i + 1:05d}-of-00002.safetensors"
        save_file({n: tensors[n] for n in chunk}, str(d / f), metadata={"format": "pt"})
        weight_map.update({n: f for n in chunk})
    index = d / "model.safetensors.index.json"
    total = sum(t.nbytes for t in tensors.values())
    index.write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    return index


def _parts(set_dir):
    m = json.loads((set_dir / "model.aeroset.json").read_text())
    return [p["path"] for p in m["parts"]]


def test_one_changed_tensor_changes_one_part(tmp_path):
    rng = np.random.default_rng(7)
    tensors = {f"layer.{i:02d}.weight": rng.standard_normal(1024).astype(np.float32)
               for i in range(16)}
    index = _checkpoint(tmp_path / "ckpt", tensors)
    v1 = tmp_path / "v1"
    r = aerotensor.convert(index, v1, max_shard_bytes=4096)
    assert r["shards"] == 16 and "identical_parts" not in r
    old = {p: (v1 / p).read_bytes() for p in _parts(v1)}
    assert len(old) == 4

    tensors["layer.09.weight"] = rng.standard_normal(1024).astype(np.float32)
    _checkpoint(tmp_path / "ckpt", tensors)
    # In place: the plan is read from v1, then v1 is replaced.
    r = aerotensor.convert(index, v1, max_shard_bytes=4096, like=v1)
    changed = [p for p in _parts(v1) if (v1 / p).read_bytes() != old[p]]
    assert changed == ["part-002.aero"]
    assert sorted(r["identical_parts"]) == ["part-000.aero", "part-001.aero", "part-003.aero"]

    assert aerotensor.validate(v1)["valid"]
    with aerotensor.AeroSetReader(v1) as s:
        for name, t in tensors.items():
            assert np.array_equal(s.get_tensor(name), t), name


def test_like_needs_a_set_output(tmp_path, golden):
    save_file({"w": np.zeros(4, np.float32)}, str(tmp_path / "m.safetensors"))
    with pytest.raises(ValueError, match="like= applies when the output is an AEROSET"):
        aerotensor.convert(tmp_path / "m.safetensors", tmp_path / "m.aero",
                           like=golden / "aeroset-local")
    assert not (tmp_path / "m.aero").exists()
