"""aerotensor.torch: safetensors.torch's API over AERO — dtypes, trust,
zero-copy, tied weights, sets, URLs, bytes, and the import it never makes."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
st_torch = pytest.importorskip("safetensors.torch")  # the API this one mirrors

import aerotensor  # noqa: E402
import aerotensor.torch as att  # noqa: E402


def _tensors():
    g = torch.Generator().manual_seed(21)
    f = torch.randn(6, 8, generator=g)
    return {
        "f32": f,
        "f16": f.half(),
        "f64": f.double(),
        "bf16": f.bfloat16(),
        "f8_e4m3fn": f.to(torch.float8_e4m3fn),
        "f8_e5m2": f.to(torch.float8_e5m2),
        "i8": torch.randint(-128, 127, (5,), dtype=torch.int8, generator=g),
        "i16": torch.randint(-30000, 30000, (5,), dtype=torch.int16, generator=g),
        "i32": torch.randint(-(1 << 30), 1 << 30, (5,), dtype=torch.int32, generator=g),
        "i64": torch.tensor([1 << 40, -3], dtype=torch.int64),
        "u8": torch.arange(250, 256, dtype=torch.uint8),
        "u16": torch.tensor([0, 65535], dtype=torch.int32).to(torch.uint16),
        "u32": torch.tensor([0, (1 << 32) - 1], dtype=torch.int64).to(torch.uint32),
        "u64": torch.tensor([0, 1 << 62], dtype=torch.int64).to(torch.uint64),
        "bool": torch.tensor([True, False, True]),
        "c64": torch.complex(f[0], f[1]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3, dtype=torch.bfloat16),
    }


def _bits(t):
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _same(a, b, name=""):
    assert a.dtype == b.dtype, (name, a.dtype, b.dtype)
    assert a.shape == b.shape, (name, a.shape, b.shape)
    assert _bits(a) == _bits(b), name


def _header(path):
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        return json.loads(fh.read(n))


def _abs_offset(path, name):
    with aerotensor.AeroReader(path) as r:
        t = next(t for t in r.list_tensors() if t["name"] == name)
        return r.find_shard_chunk(t["shard_id"]).offset + t["data_off"], t["data_len"]


def _flip(path, offset):
    with open(path, "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([b[0] ^ 0x01]))


# -- dtypes ---------------------------------------------------------------------


def test_bf16_and_f8_survive_save_file_load_file(tmp_path):
    tensors = _tensors()
    att.save_file(tensors, tmp_path / "t.aero", metadata={"format": "pt"})
    back = att.load_file(tmp_path / "t.aero")
    assert sorted(back) == sorted(tensors)
    for name, want in tensors.items():
        _same(back[name], want, name)
    assert back["bf16"].dtype == torch.bfloat16
    assert back["f8_e4m3fn"].dtype == torch.float8_e4m3fn
    assert back["f8_e5m2"].dtype == torch.float8_e5m2
    assert torch.equal(back["bf16"].float(), tensors["bf16"].float())
    assert torch.equal(back["f8_e4m3fn"].float(), tensors["f8_e4m3fn"].float())
    # In memory too.
    for name, t in att.load(att.save(tensors, {"format": "pt"})).items():
        _same(t, tensors[name], name)


def test_export_gives_the_file_safetensors_writes(tmp_path):
    # Same tensors through both libraries: AERO → export-safetensors is the
    # safetensors package's own file, byte for byte, and its loader agrees.
    tensors = {k: v for k, v in _tensors().items() if k not in ("empty",)}
    st_torch.save_file(tensors, str(tmp_path / "ref.safetensors"), metadata={"format": "pt"})
    att.save_file(tensors, tmp_path / "t.aero", metadata={"format": "pt"})
    aerotensor.convert(tmp_path / "t.aero", tmp_path / "t.safetensors")
    assert (tmp_path / "t.safetensors").read_bytes() == (tmp_path / "ref.safetensors").read_bytes()
    # And a safetensors file converted to AERO loads as safetensors loads it.
    aerotensor.convert(tmp_path / "ref.safetensors", tmp_path / "ref.aero")
    ours, theirs = att.load_file(tmp_path / "ref.aero"), st_torch.load_file(str(tmp_path / "ref.safetensors"))
    assert sorted(ours) == sorted(theirs)
    for name in theirs:
        _same(ours[name], theirs[name], name)
    with att.safe_open(tmp_path / "ref.aero", framework="pt") as f:
        assert f.metadata() == {"format": "pt"}
        assert f.keys() == sorted(theirs)
        hdr = _header(tmp_path / "ref.safetensors")
        for name in theirs:
            assert f.get_slice(name).get_dtype() == hdr[name]["dtype"]


def test_safe_open_get_slice_and_numpy(tmp_path):
    tensors = _tensors()
    att.save_file(tensors, tmp_path / "t.aero")
    with aerotensor.safe_open(tmp_path / "t.aero", framework="pt") as f:
        s = f.get_slice("bf16")
        assert s.get_shape() == [6, 8] and s.get_dtype() == "BF16"
        _same(s[1:4], tensors["bf16"][1:4], "rows")
        _same(s[2, 3:5], tensors["bf16"][2, 3:5], "row part")
        _same(f.get_slice("f8_e5m2")[0:2], tensors["f8_e5m2"][0:2], "f8 rows")
        _same(f.get_tensor("i64"), tensors["i64"])
    with aerotensor.safe_open(tmp_path / "t.aero", framework="np") as f:
        a = f.get_tensor("bf16")
        assert str(a.dtype) == "bfloat16"
        assert a.tobytes() == _bits(tensors["bf16"])


def test_values_that_are_not_tensors_are_refused(tmp_path):
    with pytest.raises(TypeError, match="'w'.*list"):
        att.save_file({"w": [1, 2, 3]}, tmp_path / "a.aero")
    with pytest.raises(ValueError, match="not contiguous"):
        att.save_file({"w": torch.zeros(4, 4).t()}, tmp_path / "a.aero")
    with pytest.raises(ValueError, match="has no AERO dtype"):
        att.save_file({"w": torch.zeros(2, dtype=torch.complex128)}, tmp_path / "a.aero")
    assert not (tmp_path / "a.aero").exists()


# -- trust ------------------------------------------------------------------------


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(16, 8)
        self.proj = torch.nn.Linear(8, 8)
        self.head = torch.nn.Linear(8, 16, bias=False)
        self.head.weight = self.emb.weight  # tied, as language models tie them

    def forward(self, ids):
        return self.head(torch.tanh(self.proj(self.emb(ids))))


def test_flipped_byte_raises_integrity_error_everywhere(tmp_path):
    torch.manual_seed(0)
    model = Tiny()
    path = tmp_path / "m.aero"
    att.save_model(model, path)
    att.load_model(Tiny(), path)  # intact: loads
    off, n = _abs_offset(path, "proj.weight")
    _flip(path, off + n // 2)
    with pytest.raises(aerotensor.IntegrityError):
        att.load_file(path)
    with att.safe_open(path, framework="pt") as f:
        with pytest.raises(aerotensor.IntegrityError) as e:
            f.get_tensor("proj.weight")
        assert e.value.tensor == "proj.weight"
        _same(f.get_tensor("proj.bias"), model.proj.bias)  # its neighbours are intact
    with pytest.raises(aerotensor.IntegrityError) as e:
        att.load_model(Tiny(), path)
    assert "proj.weight" in str(e.value)  # the shard check names the damaged tensor
    # Unverified bytes only when asked for by name: the flipped byte is there.
    bad = att.load_file(path, verify=False)["proj.weight"]
    assert not torch.equal(bad, model.proj.weight.detach())
    # A byte flipped where only the shard hash covers it (between tensors,
    # or in a tensor without hash_b3) still fails the whole load.
    path2 = tmp_path / "m2.aero"
    att.save_model(model, path2)
    with aerotensor.AeroReader(path2) as r:
        shard = r.find_shard_chunk(0)
        ends = sorted((t["data_off"] + t["data_len"], t["name"]) for t in r.list_tensors())
        starts = sorted(t["data_off"] for t in r.list_tensors())
    names = set(att.load_file(path2))
    # The aligned layout pads after a tensor whose size is not a multiple
    # of the alignment.
    gap = next((end for end, _ in ends if all(s != end for s in starts)
                and end < shard.length), None)
    assert gap is not None, ends
    _flip(path2, shard.offset + gap)
    with pytest.raises(aerotensor.IntegrityError):
        att.load_file(path2)
    assert set(att.load_file(path2, verify=False)) == names


def test_flipped_byte_in_a_reference_layout_file(tmp_path):
    # Shard hashes only, tensors packed back to back (copies, not maps).
    a = {"a": np.arange(3, dtype="u1"), "b": np.arange(8, dtype="<f4")}
    path = tmp_path / "ref.aero"
    aerotensor.save_file(a, path, layout="reference")
    _same(att.load_file(path)["b"], torch.arange(8, dtype=torch.float32))
    off, _ = _abs_offset(path, "b")
    _flip(path, off + 5)
    with pytest.raises(aerotensor.IntegrityError):
        att.load_file(path)
    with att.safe_open(path, framework="pt") as f, pytest.raises(aerotensor.IntegrityError):
        f.get_tensor("b")


# -- zero-copy where the layout allows, a copy where it does not -------------------


def test_aligned_layout_is_zero_copy(tmp_path):
    tensors = _tensors()
    path = tmp_path / "t.aero"
    att.save_file(tensors, path)
    back = att.load_file(path)
    # One mapping of the whole file (hashed in place); every tensor is its
    # bytes there: tensors lie as far apart in memory as in the file.
    base_off, _ = _abs_offset(path, "f32")
    base = back["f32"].data_ptr()
    for name, t in back.items():
        if t.numel() == 0:
            continue
        off, n = _abs_offset(path, name)
        assert t.data_ptr() - base == off - base_off, name
        assert t.numel() * t.element_size() == n, name
    # The same without verification.
    unverified = att.load_file(path, verify=False)
    for name, t in unverified.items():
        if t.numel():
            off, _ = _abs_offset(path, name)
            assert t.data_ptr() - unverified["f32"].data_ptr() == off - base_off, name
        _same(t, back[name])
    # The mapping is private: tensors are writable, the file does not change.
    before = path.read_bytes()
    back["f32"].mul_(2)
    back["bf16"][0, 0] = 7
    assert path.read_bytes() == before
    _same(att.load_file(path)["f32"], tensors["f32"])
    # get_tensor maps too.
    with att.safe_open(path) as f:
        t = f.get_tensor("i32")
        assert t.untyped_storage().nbytes() == os.path.getsize(path)


def test_copies_where_the_layout_does_not_allow_a_map(tmp_path):
    # The reference layout packs tensors: "b" (f32) starts 3 bytes in.
    a = {"a": np.arange(3, dtype="u1"), "b": np.arange(8, dtype="<f4")}
    path = tmp_path / "ref.aero"
    aerotensor.save_file(a, path, layout="reference")
    off, _ = _abs_offset(path, "b")
    assert off % 4 != 0
    back = att.load_file(path)
    assert back["b"].untyped_storage().nbytes() == 32  # its own copy
    _same(back["a"], torch.arange(3, dtype=torch.uint8))  # u8: mapped
    _same(back["b"], torch.arange(8, dtype=torch.float32))
    back["b"].add_(1)  # writable, like every torch tensor
    # load(bytes): copies of verified bytes.
    got = att.load(path.read_bytes())
    assert got["b"].untyped_storage().nbytes() == 32
    _same(got["a"], torch.arange(3, dtype=torch.uint8))


# -- models -----------------------------------------------------------------------


def test_save_model_load_model_tied_weights_as_safetensors(tmp_path):
    torch.manual_seed(1)
    model = Tiny()
    att.save_model(model, tmp_path / "m.aero")
    st_torch.save_model(model, str(tmp_path / "m.safetensors"))
    with att.safe_open(tmp_path / "m.aero") as ours, \
            __import__("safetensors").safe_open(str(tmp_path / "m.safetensors"), "pt") as theirs:
        assert ours.keys() == sorted(theirs.keys())  # the same name kept of the tied pair
        assert ours.metadata() == theirs.metadata()  # and the same note of the dropped one
    fresh = Tiny()
    missing, unexpected = att.load_model(fresh, tmp_path / "m.aero")
    assert (list(missing), list(unexpected)) == ([], [])
    assert fresh.head.weight is fresh.emb.weight
    ids = torch.tensor([[1, 5, 7, 2]])
    assert torch.equal(fresh(ids), model(ids))
    # safe_open over safetensors' own file gives the same state.
    for k, v in att.load_file(tmp_path / "m.aero").items():
        _same(v, st_torch.load_file(str(tmp_path / "m.safetensors"))[k], k)


def test_save_file_refuses_shared_tensors(tmp_path):
    w = torch.zeros(4, 4)
    with pytest.raises(RuntimeError, match="share memory.*save_model"):
        att.save_file({"a": w, "b": w}, tmp_path / "s.aero")
    # Disjoint views of one storage are not shared.
    base = torch.arange(8.0)
    att.save_file({"lo": base[:4], "hi": base[4:]}, tmp_path / "d.aero")
    assert att.load_file(tmp_path / "d.aero")["hi"].tolist() == [4.0, 5.0, 6.0, 7.0]


def test_load_model_strict(tmp_path):
    torch.manual_seed(2)
    att.save_file({"proj.weight": torch.zeros(8, 8), "extra": torch.zeros(1)}, tmp_path / "p.aero")
    with pytest.raises(RuntimeError, match=r'Missing key.*"emb.weight".*\n.*Unexpected key.*"extra"'):
        att.load_model(Tiny(), tmp_path / "p.aero")
    missing, unexpected = att.load_model(Tiny(), tmp_path / "p.aero", strict=False)
    assert "proj.bias" in missing and unexpected == ["extra"]


# -- packed GGUF blocks ------------------------------------------------------------


def test_packed_gguf_tensors_only_through_dequantize(tmp_path):
    gguf = pytest.importorskip("gguf")
    data = np.random.default_rng(3).standard_normal((4, 64)).astype(np.float32)
    w = gguf.GGUFWriter(str(tmp_path / "q.gguf"), "llama")
    q = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("blk.0.w", q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("norm", data[0])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    aerotensor.convert(tmp_path / "q.gguf", tmp_path / "q.aero")
    with pytest.raises(aerotensor.AeroError, match=r"'blk.0.w' is Q8_0.*dequantize="):
        att.load_file(tmp_path / "q.aero")
    want = gguf.quants.dequantize(q, gguf.GGMLQuantizationType.Q8_0)
    for dq, dt in (("f32", torch.float32), ("f16", torch.float16), ("bf16", torch.bfloat16)):
        got = att.load_file(tmp_path / "q.aero", dequantize=dq)
        assert got["blk.0.w"].dtype == dt and got["blk.0.w"].shape == (4, 64)
        assert got["norm"].dtype == torch.float32  # native tensors keep their dtype
        assert torch.equal(got["blk.0.w"], torch.from_numpy(want).to(dt))
    with att.safe_open(tmp_path / "q.aero", dequantize="f32") as f:
        assert torch.equal(f.get_tensor("blk.0.w"), torch.from_numpy(want))


# -- sets and URLs ----------------------------------------------------------------


def _sharded(tmp_path, tensors):
    """A Hugging Face sharded checkpoint written by safetensors (2 shards)."""
    d = tmp_path / "hf"
    d.mkdir()
    names = sorted(tensors)
    half = len(names) // 2
    weight_map = {}
    for i, part in enumerate((names[:half], names[half:])):
        fn = f"model-{i + 1:05d}-of-00002.safetensors"
        st_torch.save_file({k: tensors[k] for k in part}, str(d / fn), metadata={"format": "pt"})
        weight_map.update({k: fn for k in part})
    (d / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    return d


def test_aeroset_directory_and_manifest(tmp_path):
    tensors = {k: v for k, v in _tensors().items() if k != "empty"}
    aerotensor.convert(_sharded(tmp_path, tensors), tmp_path / "set", max_shard_bytes=256)
    parts = json.loads((tmp_path / "set" / "model.aeroset.json").read_text())["parts"]
    assert len(parts) > 1
    for p in (tmp_path / "set", tmp_path / "set" / "model.aeroset.json"):
        back = att.load_file(p)
        assert sorted(back) == sorted(tensors)
        for k in tensors:
            _same(back[k], tensors[k], k)
        # Tensors of each part lie in that part's mapping, without a copy:
        # as far apart in memory as in the part file.
        for q in parts:
            part = tmp_path / "set" / q["path"]
            with aerotensor.AeroReader(part) as r:
                here = [t["name"] for t in r.list_tensors() if t["data_len"]]
            assert here, q
            base_off, _ = _abs_offset(part, here[0])
            for name in here:
                off, _ = _abs_offset(part, name)
                assert back[name].data_ptr() - back[here[0]].data_ptr() == off - base_off, name
    with att.safe_open(tmp_path / "set", framework="pt") as f:
        assert f.metadata() == {"format": "pt"}
        _same(f.get_slice("f32")[2:4], tensors["f32"][2:4])


def test_url(tmp_path, nginx):
    tensors = _tensors()
    att.save_file(tensors, nginx["root"] / "torch.aero")
    url = f"{nginx['url']}/torch.aero"
    back = att.load_file(url, cache=False)
    for k in tensors:
        _same(back[k], tensors[k], k)
    with att.safe_open(url, framework="pt", cache=False) as f:
        _same(f.get_tensor("bf16"), tensors["bf16"])


# -- the import -------------------------------------------------------------------


def test_import_aerotensor_does_not_import_torch(tmp_path):
    aerotensor.save_file({"w": np.ones(2, "<f4")}, tmp_path / "w.aero")
    code = (
        "import sys, aerotensor\n"
        "assert 'torch' not in sys.modules, 'import aerotensor imported torch'\n"
        f"with aerotensor.safe_open({str(tmp_path / 'w.aero')!r}, 'np') as f: f.get_tensor('w')\n"
        f"aerotensor.load_file({str(tmp_path / 'w.aero')!r})\n"
        "assert 'torch' not in sys.modules, 'numpy reads imported torch'\n"
        "import aerotensor.torch\n"
        "assert 'torch' in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
