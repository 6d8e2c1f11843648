"""safetensors.torch's API over AERO files and AEROSETs: changing the import
is the whole port.

::

    import aerotensor.torch as st          # was: import safetensors.torch as st

    tensors = st.load_file("model.aero")                  # {name: torch.Tensor}, verified
    model.load_state_dict(st.load_file("model.aero"))
    st.save_file({"w": torch.zeros(2, 3, dtype=torch.bfloat16)}, "out.aero",
                 metadata={"format": "pt"})
    st.save_model(model, "model.aero"); st.load_model(model, "model.aero")
    data = st.save(tensors); tensors = st.load(data)
    with st.safe_open("model.aero", framework="pt", device="cpu") as f:
        f.keys(); f.get_tensor(k); f.get_slice(k)[0:4]; f.metadata()

Paths may be ``.aero`` files, AEROSET manifests or directories, and
``http(s)://`` (or ``s3://`` …) URLs of either.

Every byte handed out is verified first against the strongest hash the file
records (``IntegrityError`` otherwise; ``load_file`` hashes each shard once
on every core, in the very mapping its tensors are then views of, so those
pages are faulted in once). Tensors of a local file are not copied: they lie
in a private, copy-on-write mapping of the file (as safetensors maps its
files), so they are writable without touching the file.
Tensors that cannot be mapped — remote or in-memory files, and tensors of
the reference layout whose offset is not a multiple of their element size —
are verified copies.

dtypes: every safetensors dtype torch has — float16/32/64, bfloat16, the
float8 types (F8_E4M3 → ``torch.float8_e4m3fn``, F8_E5M2 →
``torch.float8_e5m2``, …), every integer type, bool, complex64 — in both
directions. Packed GGUF blocks (Q4_K, …) have no torch dtype: reading one is
an error unless ``dequantize="f32" | "f16" | "bf16"`` is given, which expands
them (bit-exact with gguf-py); other tensors keep their dtype.

torch is an optional dependency (``pip install aerotensor[torch]``): only
this module imports it; ``import aerotensor`` does not.
"""

from __future__ import annotations

import os as _os
import tempfile as _tempfile
from collections import defaultdict as _defaultdict
from typing import Any, Dict, List, Optional, Set, Tuple, Union

import numpy as _np

try:
    import torch
except ImportError as _e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "aerotensor.torch needs PyTorch, an optional dependency: "
        "pip install 'aerotensor[torch]' (or pip install torch)") from _e

from . import SafeOpen as _SafeOpen
from . import TensorSlice as _TensorSlice
from . import _aerotensor, _fspath, _write
from ._errors import AeroError

__all__ = [
    "load_file",
    "save_file",
    "load",
    "save",
    "load_model",
    "save_model",
    "safe_open",
]

PathLike = Union[str, "_os.PathLike[str]"]


def _torch_dtype(elem: Optional[str], dtype: str, name: str, dequantize: Optional[str]) -> Any:
    d = getattr(torch, elem, None) if elem else None
    if isinstance(d, torch.dtype):
        return d
    if elem is None:
        raise AeroError(
            f"tensor {name!r} is {dtype} (packed blocks): torch has no such dtype; pass "
            f"dequantize='f32' (or 'f16', 'bf16') to expand it")
    raise AeroError(f"tensor {name!r} is {dtype}: torch {torch.__version__} has no dtype {elem}")


def _from_numpy(a: _np.ndarray, dtype: Any) -> torch.Tensor:
    """A torch tensor over a writable, contiguous numpy array's memory (any
    element type, ml_dtypes' included: torch sees its bytes)."""
    raw = _np.ascontiguousarray(a).reshape(-1).view(_np.uint8)
    if not raw.flags.writeable:
        raw = raw.copy()
    return torch.from_numpy(raw).view(dtype).reshape(a.shape)


class _Loader:
    """Makes torch tensors of one opened file or set: maps each local file
    once (a private, copy-on-write mapping of the descriptor the native
    reader verified), and places every tensor in it."""

    def __init__(self, device: Any, dequantize: Optional[str], verify: bool) -> None:
        self.device = torch.device(device)
        self.dequantize = dequantize
        self.verify = verify
        self._storages: Dict[int, Any] = {}

    def _storage(self, h: "_aerotensor._Handle", part: int) -> Any:
        st = self._storages.get(part)
        if st is None:
            fd, size = h.part_fd(part)
            try:
                st = torch.UntypedStorage.from_file(f"/dev/fd/{fd}", shared=False, nbytes=size)
            finally:
                _os.close(fd)
            self._storages[part] = st
        return st

    def _on_device(self, t: torch.Tensor) -> torch.Tensor:
        return t if self.device.type == "cpu" else t.to(self.device)

    def tensor(self, h: "_aerotensor._Handle", name: str, dequantize: Optional[str]) -> torch.Tensor:
        _code, shape, nbytes, ggml, dtype, elem = h.info(name)
        if elem is None and ggml is not None and dequantize is not None:
            buf = h.dequantize(name, dequantize)
            out = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[dequantize]
            return self._on_device(_from_numpy(_np.asarray(buf), out))
        tdtype = _torch_dtype(elem, dtype, name, dequantize)
        kind, where, offset = h.locate(name, self.verify)
        if kind == "map" and _os.name == "posix":
            st = self._storage(h, where)
            t = torch.empty(0, dtype=torch.uint8).set_(st, offset, (nbytes,), (1,))
            t = t.view(tdtype).reshape(tuple(shape))
        else:
            buf = where if kind == "copy" else h.tensor(name, copy=True)
            t = _from_numpy(_np.asarray(buf), tdtype)
        return self._on_device(t)

    def from_buffer(self, buf: "_aerotensor._Buffer") -> torch.Tensor:
        """A tensor over a writable native buffer (``_Handle.mapped``: a
        private mapping of the file, checked there), without a copy."""
        a = _np.asarray(buf)
        dtype = getattr(torch, buf.view) if buf.view else getattr(torch, a.dtype.name)
        return self._on_device(_from_numpy(a, dtype))

    def slice(self, s: _TensorSlice) -> "_Slice":
        return _Slice(s, self)


class _Slice:
    """``get_slice(name)`` for torch: the rows read (and verified) as a
    tensor; ``get_shape()`` and ``get_dtype()`` as safetensors."""

    def __init__(self, s: _TensorSlice, loader: _Loader) -> None:
        self._s = s
        self._loader = loader

    def get_shape(self) -> List[int]:
        return self._s.get_shape()

    def get_dtype(self) -> str:
        return self._s.get_dtype()

    def __len__(self) -> int:
        return len(self._s)

    def __getitem__(self, key: Any) -> torch.Tensor:
        dt = _torch_dtype(self._s._elem, self._s._dtype, self._s.name, None)
        return self._loader._on_device(_from_numpy(_np.asarray(self._s[key]), dt))

    def __repr__(self) -> str:
        return f"PySafeSlice({self._s.name!r}, {self.get_dtype()}, shape={self._s.shape})"


class safe_open(_SafeOpen):
    """``safe_open(path, framework="pt", device="cpu")``: ``aerotensor.SafeOpen``
    with torch as the default framework (``keys()``, ``get_tensor``,
    ``get_slice``, ``metadata()``)."""

    def __init__(self, filename: PathLike, framework: str = "pt", device: Any = "cpu",
                 **kwargs: Any) -> None:
        super().__init__(filename, framework, device, **kwargs)


def load_file(filename: PathLike, device: Any = "cpu", *, dequantize: Optional[str] = None,
              verify: bool = True, **kwargs: Any) -> Dict[str, torch.Tensor]:
    """Every tensor of a file or set as ``{name: torch.Tensor}`` on
    ``device``, verified (a local file: each shard hashed once, on every
    core, then every tensor placed in a copy-on-write mapping without a
    copy). ``dequantize`` expands packed GGUF blocks; ``verify=False``
    skips verification (asked for by name: the bytes are not checked).
    ``allow_remote``, ``cache``, ``cache_dir`` as for ``aerotensor.open``."""
    with safe_open(filename, "pt", device, dequantize=dequantize, verify=verify, **kwargs) as f:
        h = f._h
        names = f.offset_keys()
        if not verify or _aerotensor.is_url(h.path):
            # Unverified: torch maps the file itself (from_file), which its
            # copies fault in fastest (measured: a memmap2 mapping handed
            # over through numpy cost about twice the CPU in
            # load_state_dict when nothing had touched its pages first).
            return {name: f.get_tensor(name) for name in names}
        # One native call maps each local file privately and hashes its
        # shards in that mapping on every core; the tensors are views of
        # those very pages, already faulted in by the hashing threads. What
        # it cannot place so is read tensor by tensor (verified its own way).
        bufs = h.mapped(names, verify)
        return {name: f._torch.from_buffer(buf) if buf is not None else f.get_tensor(name)
                for name, buf in zip(names, bufs)}


def load(data: bytes, *, dequantize: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """The tensors of an AERO file held in memory (``save``'s output),
    verified, as CPU tensors of their own."""
    h = _aerotensor._Handle.from_bytes(bytes(data), "<bytes>")
    try:
        h.verify_all()
        f = _SafeOpen._of_handle(h, "pt", "cpu", dequantize)
        return {name: f.get_tensor(name) for name in f.offset_keys()}
    finally:
        h.close()


# -- saving -------------------------------------------------------------------


def _span(t: torch.Tensor) -> Tuple[int, int]:
    """[first byte, end) of a tensor's elements in memory."""
    start = t.data_ptr()
    if t.numel() == 0:
        return start, start
    last = sum((n - 1) * s for n, s in zip(t.shape, t.stride()))
    return start, start + (last + 1) * t.element_size()


def _shared(tensors: Dict[str, torch.Tensor]) -> List[Set[str]]:
    """Names grouped by overlapping memory (tensors of one storage whose
    bytes do not overlap are not shared)."""
    by_storage: Dict[Any, List[str]] = _defaultdict(list)
    for name, t in tensors.items():
        if t.device.type == "meta":
            continue
        try:
            st = t.untyped_storage()
            ptr, size = st.data_ptr(), st.nbytes()
        except (NotImplementedError, RuntimeError):
            continue
        if ptr and size:
            by_storage[(t.device, ptr, size)].append(name)
    groups: List[Set[str]] = []
    for names in by_storage.values():
        spans = sorted((*_span(tensors[n]), n) for n in names)
        end = None
        for start, stop, n in spans:
            if end is not None and start < end:
                groups[-1].add(n)
                end = max(end, stop)
            else:
                groups.append({n})
                end = stop
    return groups


def _complete(t: torch.Tensor) -> bool:
    st = t.untyped_storage()
    return t.data_ptr() == st.data_ptr() and t.numel() * t.element_size() == st.nbytes()


def _duplicates(tensors: Dict[str, torch.Tensor], preferred: Any = ()) -> Dict[str, List[str]]:
    """For each group of tensors sharing memory: the name to keep (one
    covering its whole storage; among those a ``preferred`` one, else the
    first by name) → the names to drop."""
    preferred = set(preferred)
    drop: Dict[str, List[str]] = {}
    for group in _shared(tensors):
        if len(group) < 2:
            continue
        complete = sorted(n for n in group if _complete(tensors[n]))
        if not complete:
            raise RuntimeError(
                f"tensors {sorted(group)} share memory and none of them covers all of it: "
                "saving one would store more than the model holds, and the others could not "
                "be recovered from it")
        keep = next((n for n in complete if n in preferred), complete[0])
        drop[keep] = sorted(n for n in group if n != keep)
    return drop


class _NotATensor(TypeError, ValueError):
    """A value that is not a tensor: a ``TypeError``, and a ``ValueError``
    as safetensors raises it."""


def _items(tensors: Dict[str, torch.Tensor]) -> List[Tuple[str, str, List[int], Any, int]]:
    """Checks ``tensors`` as safetensors does and prepares them for the
    writer: (name, dtype name, shape, bytes source, length), sorted."""
    if not isinstance(tensors, dict):
        raise ValueError(f"expected a dict of str -> torch.Tensor, got {type(tensors).__name__}")
    for name, t in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str, not {type(name).__name__}")
        if not isinstance(t, torch.Tensor):
            raise _NotATensor(f"tensor {name!r}: expected a torch.Tensor, got "
                              f"{type(t).__module__}.{type(t).__qualname__}")
        if t.layout != torch.strided:
            raise ValueError(f"tensor {name!r} is sparse ({t.layout}); make it dense with "
                             ".to_dense() to save it")
    shared = [sorted(g) for g in _shared(tensors) if len(g) > 1]
    if shared:
        raise RuntimeError(
            f"some tensors share memory: {shared}. Saving them would store those bytes twice "
            "and load them back as separate tensors; save_model(model, path) keeps one of "
            "each group (as safetensors does)")
    items = []
    for name in sorted(tensors):
        t = tensors[name]
        if not t.is_contiguous():
            raise ValueError(f"tensor {name!r} is not contiguous; call .contiguous() on it "
                             "first (or save_model(..., force_contiguous=True))")
        t = t.detach().to("cpu")
        raw = t.reshape(-1).view(torch.uint8).numpy()
        items.append((name, str(t.dtype).rsplit(".", 1)[-1], list(t.shape), raw,
                      t.numel() * t.element_size()))
    return items


def save_file(tensors: Dict[str, torch.Tensor], filename: PathLike,
              metadata: Optional[Dict[str, str]] = None) -> None:
    """Writes ``{name: torch.Tensor}`` to an AERO file (the aligned layout,
    a ``hash_b3`` per tensor, 1 MiB page hashes; atomically). Every dtype is
    stored as what it is (bfloat16 as bf16, float8 as F8_*, …).
    ``metadata`` (``Dict[str, str]``) is kept as safetensors'
    ``__metadata__``. Tensors that share memory are refused
    (``RuntimeError``; ``save_model`` handles tied weights), as are
    non-contiguous and sparse ones (``ValueError``)."""
    _write(_items(tensors), filename, metadata)


def save(tensors: Dict[str, torch.Tensor], metadata: Optional[Dict[str, str]] = None) -> bytes:
    """``save_file`` into memory: the AERO file's bytes."""
    items = _items(tensors)
    with _tempfile.TemporaryDirectory(prefix="aerotensor-") as d:
        path = _os.path.join(d, "tensors.aero")
        _write(items, path, metadata, durable=False)
        with open(path, "rb") as f:
            return f.read()


def save_model(model: torch.nn.Module, filename: PathLike,
               metadata: Optional[Dict[str, str]] = None, force_contiguous: bool = True) -> None:
    """Saves ``model.state_dict()``; of tensors sharing memory (tied
    weights) one is kept — one covering all of it, the first by name — and
    ``metadata`` records each dropped name → the kept one (as safetensors
    does; ``load_model`` restores the ties through the model)."""
    state = model.state_dict()
    for keep, dropped in _duplicates(state).items():
        for name in dropped:
            metadata = dict(metadata or {})
            metadata.setdefault(name, keep)
            del state[name]
    if force_contiguous:
        state = {k: v.contiguous() for k, v in state.items()}
    _write(_items(state), filename, metadata)


def load_model(model: torch.nn.Module, filename: PathLike, strict: bool = True,
               device: Any = "cpu", **kwargs: Any) -> Tuple[List[str], List[str]]:
    """Loads a file saved by ``save_model`` (or any file of the model's
    tensors) into ``model``, verified. Names the model ties to a tensor it
    loaded are not missing. Returns ``(missing, unexpected)``; with
    ``strict`` either being non-empty is a ``RuntimeError``."""
    state = load_file(filename, device, **kwargs)
    tied = _duplicates(model.state_dict(), preferred=state.keys())
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing_set = set(missing)
    unexpected = list(unexpected)
    for dropped in tied.values():
        for name in dropped:
            if name in missing_set:
                missing_set.remove(name)
            else:
                unexpected.append(name)
    missing = sorted(missing_set)
    if strict and (missing or unexpected):
        msg = f"Error(s) in loading state_dict for {type(model).__name__}:"
        if missing:
            msg += "\n    Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing)
        if unexpected:
            msg += "\n    Unexpected key(s) in state_dict: " + \
                ", ".join(f'"{k}"' for k in sorted(unexpected))
        raise RuntimeError(msg)
    return missing, unexpected
