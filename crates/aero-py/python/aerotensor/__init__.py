"""aerotensor — AERO model-weight containers from Python, verified.

AERO stores model weights in one ``.aero`` file (or an AEROSET: a manifest,
an index file and parts). This package reads them into numpy arrays —
zero-copy over the file's memory map when the tensor is aligned, as files
written by aerotensor always are — and checks every byte it hands out
against the strongest hash the file records for it (the tensor's
``hash_b3``, the PHSH page hashes covering it, or its shard's hash).
Damaged bytes raise ``IntegrityError``; they are never returned.

Reading::

    import aerotensor

    with aerotensor.AeroReader("model.aero") as r:    # path or http(s):// URL
        print(r.keys())
        w = r.get_tensor("lm_head.weight")             # numpy.ndarray, read-only
        rows = r.get_slice("embed.weight")[10:20]     # reads (and verifies) only those rows
        for t in r.list_tensors():                     # dicts: name, dtype, shape, ...
            raw = r.read_tensor_bytes(t["name"])       # bytes (a copy)

    tensors = aerotensor.load_file("model.aero")       # dict[str, numpy.ndarray]

    with aerotensor.safe_open("model.aero", "np") as f:  # safetensors' API
        f.keys(); f.get_tensor(k); f.get_slice(k)[0:2]; f.metadata()

    with aerotensor.AeroSetReader("model-dir/") as s:  # AEROSET: dir, manifest or URL
        emb = s.get_tensor("embed.weight")

Writing, converting, checking::

    aerotensor.save_file({"w": numpy.ones((2, 3), "float32")}, "out.aero",
                         metadata={"model_name": "demo"})
    aerotensor.convert("model.safetensors", "model.aero")   # or a .gguf
    report = aerotensor.validate("model.aero", "full")      # dict, as `validate --json`
    assert report["valid"]

PyTorch: ``aerotensor.torch`` is safetensors.torch's API (``load_file``,
``save_file``, ``load``, ``save``, ``load_model``, ``save_model``); torch is
imported only by ``import aerotensor.torch`` (``pip install
aerotensor[torch]``), never by ``import aerotensor``.

Dtypes: every safetensors dtype with a numpy type keeps it; bfloat16 and
the float8 types (F8_E4M3, F8_E5M2, …) come back as ``ml_dtypes`` types and
are saved as what they are. Packed (quantized) tensors come back as
``uint8`` bytes, unless read with ``get_tensor(name, dequantize="f32")``
(also ``"f16"``, ``"bf16"``), which dequantizes ggml types (Q4_0 … Q6_K,
i-quants, …) bit-exactly as gguf-py.

Errors: ``AeroError`` (malformed, truncated, refused), its subclass
``IntegrityError`` (failed verification), ``TensorNotFoundError`` (also a
``KeyError``); each carries ``path``, ``tensor``, ``chunk``, ``field``,
``offset``, ``check`` and ``kind``. Missing files raise
``FileNotFoundError``.

Remote reads fetch only the byte ranges they need, through a verified disk
cache (``$AEROTENSOR_CACHE_DIR``, default ``~/.cache/aerotensor``; pass
``cache=False`` or ``cache_dir=...``). The GIL is released while files are
read, hashed, validated, written and converted.
"""

from __future__ import annotations

import json as _json
import os as _os
import sys as _sys
from dataclasses import dataclass as _dataclass
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from . import _aerotensor
from ._errors import AeroError, IntegrityError, TensorNotFoundError

if TYPE_CHECKING:
    import numpy as _np
else:
    class _Numpy:
        """numpy, imported on first use: ``import aerotensor`` — and so the
        ``aerotensor`` command, which never makes an array — does not pay
        for importing numpy (about 0.2 s) until an array is needed."""

        def __getattr__(self, name: str) -> Any:
            global _np
            import numpy

            _np = numpy
            return getattr(numpy, name)

    _np = _Numpy()

__version__ = _aerotensor.__version__

__all__ = [
    "SafeOpen",
    "AeroError",
    "IntegrityError",
    "TensorNotFoundError",
    "ChunkRef",
    "AeroReader",
    "AeroSetReader",
    "TensorSlice",
    "safe_open",
    "open",
    "load_file",
    "save_file",
    "validate",
    "convert",
    "is_set",
    "DTYPE_NAMES",
    "NUMPY_DTYPES",
]

PathLike = Union[str, "_os.PathLike[str]"]

#: AERO dtype code → name (spec §5).
DTYPE_NAMES: Dict[int, str] = {
    0: "f16", 1: "f32", 2: "bf16", 3: "f64", 4: "i8", 5: "u8", 6: "i16",
    7: "u16", 8: "i32", 9: "u32", 10: "i64", 11: "u64", 12: "bool",
    0x8000: "packed",
}

_DEQUANT = ("f32", "f16", "bf16")


def _ml_dtypes() -> Any:
    # Imported on first use: its extension takes most of a second to load,
    # and only bfloat16 / float8 tensors need it.
    import ml_dtypes

    return ml_dtypes


def __getattr__(name: str) -> Any:
    if name == "NUMPY_DTYPES":
        # AERO dtype code -> the numpy dtype get_tensor returns (bf16 as
        # ml_dtypes.bfloat16; packed and unknown codes as uint8 bytes).
        # Built once, on first use, then a plain module attribute.
        table = globals()["NUMPY_DTYPES"] = {
            code: _np.dtype(getattr(_ml_dtypes(), view) if view else typestr)
            for code, typestr, view in _aerotensor._numpy_dtypes()
        }
        return table
    if name == "torch":  # aerotensor.torch without importing torch up front
        import importlib

        return importlib.import_module(".torch", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _array(buf: "_aerotensor._Buffer") -> _np.ndarray:
    """The numpy array over a buffer, viewed as its real element type when
    the buffer describes a stand-in (bfloat16, float8: ``ml_dtypes``)."""
    a = _np.asarray(buf)
    view = buf.view
    return a.view(getattr(_ml_dtypes(), view)) if view else a


def _fspath(path: PathLike) -> str:
    p = _os.fspath(path)
    if isinstance(p, bytes):
        p = _os.fsdecode(p)
    return p


def _open(path: PathLike, kind: str, allow_remote: bool, cache: bool,
          cache_dir: Optional[PathLike]) -> "_aerotensor._Handle":
    return _aerotensor._Handle.open(
        _fspath(path), kind, allow_remote, cache,
        None if cache_dir is None else _fspath(cache_dir))


@_dataclass(frozen=True)
class ChunkRef:
    """One TOC entry (no payload loaded). ``fourcc`` is ``bytes`` (``b"TIDX"``)
    as the reference package returns it; ``hash`` is the 32-byte BLAKE3 of
    the uncompressed payload (all zero: not recorded). ``uncompressed_length``
    and ``blake3_256`` are the reference's names for ``ulen`` and ``hash``."""

    fourcc: bytes
    name: str
    offset: int
    length: int
    ulen: int
    flags: int
    hash: bytes
    index: int

    @property
    def uncompressed_length(self) -> int:
        return self.ulen

    @property
    def blake3_256(self) -> bytes:
        return self.hash


def _fourcc(f: Union[bytes, str]) -> bytes:
    return f.encode("ascii") if isinstance(f, str) else bytes(f)


class TensorSlice:
    """Lazy rows of a tensor: ``r.get_slice(name)[a:b]`` reads and verifies
    only the rows ``a..b`` (through the PHSH page hashes covering them;
    without page hashes the tensor's own hash is checked, which reads it
    whole). Any further indexing (``[a:b, 2:5]``, steps, an int) is applied
    by numpy to those rows. ``get_shape()`` / ``get_dtype()`` as in
    safetensors (``"F32"``, ``"BF16"``, ``"F8_E4M3"``; a ggml type's name,
    ``"Q4_K"``, for packed GGUF blocks, which cannot be sliced)."""

    def __init__(self, handle: "_aerotensor._Handle", name: str) -> None:
        self._h = handle
        self.name = name
        code, shape, self.nbytes, self._ggml, self._dtype, self._elem = handle.info(name)
        self.dtype_code: int = code
        self.shape: Tuple[int, ...] = tuple(shape)

    def get_shape(self) -> List[int]:
        return list(self.shape)

    def get_dtype(self) -> str:
        return self._dtype

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a scalar tensor")
        return self.shape[0]

    def __getitem__(self, key: Any) -> _np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        first = key[0] if key else Ellipsis
        if self._elem is None or not self.shape \
                or not isinstance(first, (int, _np.integer, slice)) or isinstance(first, bool):
            # Packed blocks are refused (by the native reader, with how to
            # read them); anything but rows along the first axis reads the
            # whole tensor.
            if self._elem is None:
                self._h.rows(self.name, 0, 0)
            return _array(self._h.tensor(self.name))[key]
        n, rest = self.shape[0], key[1:]
        if isinstance(first, slice):
            start, stop, step = first.indices(n)
            idx = range(start, stop, step)
            if len(idx) == 0:
                lo = hi = 0
            else:
                lo, hi = min(idx[0], idx[-1]), max(idx[0], idx[-1]) + 1
            rows = _array(self._h.rows(self.name, lo, hi))
            if len(idx) == 0:
                local = slice(0, 0)
            else:
                end = stop - lo
                local = slice(start - lo, end if end >= 0 else None, step)
            out = rows[local]
            return out[(slice(None),) + rest] if rest else out
        i = int(first)
        if i < -n or i >= n:
            raise IndexError(f"index {i} is out of bounds for axis 0 with size {n}")
        i %= n
        row = _array(self._h.rows(self.name, i, i + 1))[0]
        return row[rest] if rest else row

    def __repr__(self) -> str:
        return f"TensorSlice({self.name!r}, {self.get_dtype()}, shape={self.shape})"


def _get_tensor(h: "_aerotensor._Handle", name: str, dequantize: Optional[str]) -> _np.ndarray:
    if dequantize is None:
        return _array(h.tensor(name))
    if dequantize not in _DEQUANT:
        raise ValueError(f"dequantize must be one of {_DEQUANT}, not {dequantize!r}")
    _code, _shape, _n, ggml, dtype, elem = h.info(name)
    if ggml is not None:
        return _array(h.dequantize(name, dequantize))
    if elem is None or elem.startswith("complex"):
        raise AeroError(f"tensor {name!r} is {dtype}: there is nothing to dequantize it to "
                        f"{dequantize}")
    target = {"f32": _np.float32, "f16": _np.float16}.get(dequantize) or _ml_dtypes().bfloat16
    return _array(h.tensor(name)).astype(target)


class _TensorReader:
    """What file and set readers share: tensors as numpy arrays."""

    _h: "_aerotensor._Handle"

    # -- lifecycle -----------------------------------------------------------

    @property
    def path(self) -> str:
        """The path or URL opened."""
        return self._h.path

    @property
    def closed(self) -> bool:
        return self._h.closed

    def close(self) -> None:
        """Releases the file (or set). Arrays and memoryviews already handed
        out stay valid: each keeps its mapping alive until it is freed."""
        self._h.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r}{', closed' if self.closed else ''})"

    # -- tensors -------------------------------------------------------------

    def list_tensors(self) -> List[Dict[str, Any]]:
        """Every tensor's index entry as a dict — ``name``, ``dtype`` (code),
        ``shape``, ``shard_id``, ``data_off``, ``data_len``, ``flags`` and every
        other stored key (``hash_b3``, ``quant_id``, ``quant_params``, …) —
        in stored order, decoded from the verified TIDX."""
        return self._h.tensors()

    def keys(self) -> List[str]:
        """Tensor names in stored order."""
        return self._h.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self._h.info(name)
        except TensorNotFoundError:
            return False
        return True

    def read_tensor_bytes(self, name: str) -> bytes:
        """A tensor's bytes (a copy), verified."""
        return self._h.tensor_bytes(name)

    def read_tensor_view(self, name: str) -> memoryview:
        """A tensor's bytes as a read-only ``memoryview`` (format ``B``),
        verified; zero-copy over the file's mapping when local. It stays
        valid after ``close()``."""
        return memoryview(_np.asarray(self._h.tensor(name, True)))

    def get_tensor(self, name: str, dequantize: Optional[str] = None) -> _np.ndarray:
        """A tensor as a read-only numpy array of its dtype and shape,
        verified. Zero-copy over the mapping when local and aligned (else a
        copy). bfloat16 and float8 come as ``ml_dtypes`` types, packed
        tensors as ``uint8`` bytes — unless ``dequantize`` is ``"f32"``,
        ``"f16"`` or ``"bf16"``: ggml-packed tensors are then dequantized
        (bit-exact with gguf-py) into a new array, other tensors converted."""
        return _get_tensor(self._h, name, dequantize)

    def get_slice(self, name: str) -> TensorSlice:
        """A lazy ``TensorSlice``: index it (``[a:b]``) to read only those rows."""
        return TensorSlice(self._h, name)

    def verify_all(self) -> None:
        """Hashes every weight shard once (all cores). Afterwards verified
        reads of a local file hash nothing more: what ``load_file`` does
        before reading every tensor."""
        self._h.verify_all()

    def metadata(self) -> Optional[Dict[str, Any]]:
        """The MJSN metadata object of a file (``model_name``,
        ``architecture``, ``source_format``, …); a set's manifest."""
        return _json.loads(self._h.metadata_json())

    @property
    def model_name(self) -> Optional[str]:
        return self._h.model()[0]

    @property
    def architecture(self) -> Optional[str]:
        return self._h.model()[1]

    def report(self, mode: str = "full") -> Dict[str, Any]:
        """The structured validation report (``quick``, ``full`` or
        ``control``), as the CLI's ``validate --json``."""
        return _json.loads(self._h.validate(mode))


class AeroReader(_TensorReader):
    """An opened ``.aero`` file — a local path or an ``http(s)://`` URL —
    with the reference package's reader API plus numpy access.

    ::

        with AeroReader("model.aero") as r:
            for t in r.list_tensors():
                buf = r.read_tensor_bytes(t["name"])   # verified bytes
            w = r.get_tensor("lm_head.weight")         # numpy, zero-copy

    Opening checks the header, TOC and string table; a file that is not
    AERO, truncated or malformed raises ``AeroError``, a missing one
    ``FileNotFoundError``. Given an AEROSET path, the tensor methods read
    the set (chunk methods refuse).
    """

    def __init__(self, path: PathLike, *, allow_remote: bool = False, cache: bool = True,
                 cache_dir: Optional[PathLike] = None) -> None:
        self._h = _open(path, "auto", allow_remote, cache, cache_dir)
        self._chunks: Optional[List[ChunkRef]] = None

    # -- header ----------------------------------------------------------------

    @property
    def uuid(self) -> bytes:
        """The file's 16-byte UUID."""
        return self._h.header()[0]

    @property
    def file_flags(self) -> int:
        return self._h.header()[1]

    @property
    def version(self) -> Tuple[int, int]:
        """(major, minor): (0, 1)."""
        return tuple(self._h.header()[2])  # type: ignore[return-value]

    # -- chunks ----------------------------------------------------------------

    def list_chunks(self) -> List[ChunkRef]:
        """Every TOC entry in order."""
        if self._chunks is None:
            self._chunks = [
                ChunkRef(fourcc=fc, name=n, offset=o, length=ln, ulen=u, flags=fl, hash=h, index=i)
                for (i, fc, n, fl, o, ln, u, h) in self._h.chunks()
            ]
        return list(self._chunks)

    def get_chunk(self, fourcc: Union[bytes, str]) -> Optional[ChunkRef]:
        """The first chunk of this type, or None."""
        f = _fourcc(fourcc)
        return next((c for c in self.list_chunks() if c.fourcc == f), None)

    def get_chunk_named(self, fourcc: Union[bytes, str], name: str) -> Optional[ChunkRef]:
        """The first chunk of this type and name, or None."""
        f = _fourcc(fourcc)
        return next((c for c in self.list_chunks() if c.fourcc == f and c.name == name), None)

    def find_shard_chunk(self, shard_id: int) -> Optional[ChunkRef]:
        """The WTSH chunk ``weights.shard{shard_id}``, or None."""
        return self.get_chunk_named(b"WTSH", f"weights.shard{shard_id}")

    def _index_of(self, chunk: ChunkRef) -> int:
        chunks = self.list_chunks()
        if 0 <= chunk.index < len(chunks) and chunks[chunk.index] == chunk:
            return chunk.index
        for c in chunks:  # a ChunkRef built by hand: match its fields
            if (c.fourcc, c.name, c.offset, c.length) == (chunk.fourcc, chunk.name, chunk.offset, chunk.length):
                return c.index
        raise AeroError(f"{self.path}: no such chunk in this file: {chunk!r}")

    def read_chunk_bytes(self, chunk: ChunkRef, verify_hash: bool = True) -> bytes:
        """The chunk's uncompressed payload, its BLAKE3 checked against the
        TOC (``IntegrityError`` on a mismatch, or when the TOC records no
        hash). ``verify_hash=False`` returns the bytes unchecked."""
        return self._h.chunk_bytes(self._index_of(chunk), verify_hash)

    def read_msgpack(self, fourcc: Union[bytes, str] = b"TIDX") -> Any:
        """The first chunk of this type, verified and decoded from
        MessagePack (``str`` as ``str``, ``bin`` as ``bytes``)."""
        c = self.get_chunk(fourcc)
        if c is None:
            raise AeroError(f"{self.path}: chunk {_fourcc(fourcc)!r} not found")
        return self._h.chunk_msgpack(c.index)

    # -- validation ------------------------------------------------------------

    def validate_all(self) -> List[str]:
        """Full validation (every chunk, shard, page and tensor hash, the
        control plane, the manifest): the problems found, one string each;
        empty when the file is valid (unverifiable but intact chunks, such
        as an unrecorded MJSN hash, are warnings, not problems)."""
        return list(self.report("full")["errors"])

    def validate_control(self) -> List[str]:
        """The IHSH control-plane check: problems (empty when it verifies or
        the file has none)."""
        return self._h.validate_control()


class AeroSetReader(_TensorReader):
    """An opened AEROSET: ``model.aeroset.json``, the directory holding it,
    or an ``http(s)://`` URL of either (a directory URL ends in ``/``).
    Tensors are located through the global index and read, verified, from
    their part (by name, so sets whose parts number shards locally work).

    A local manifest may name remote parts only with ``allow_remote=True``.
    """

    def __init__(self, path_or_url: PathLike, *, allow_remote: bool = False, cache: bool = True,
                 cache_dir: Optional[PathLike] = None) -> None:
        self._h = _open(path_or_url, "set", allow_remote, cache, cache_dir)

    @property
    def model_name(self) -> str:  # type: ignore[override]
        return self._h.model()[0] or ""

    @property
    def architecture(self) -> str:  # type: ignore[override]
        return self._h.model()[1] or ""

    def validate(self, mode: str = "quick") -> List[str]:
        """Problems found (empty when the set is valid): part and index
        SHA-256 and sizes, shard coverage, every tensor resolving in its part;
        ``mode="full"`` also verifies every part's hashes."""
        return list(self.report(mode)["errors"])


def open(path: PathLike, *, allow_remote: bool = False, cache: bool = True,
         cache_dir: Optional[PathLike] = None) -> Union[AeroReader, AeroSetReader]:
    """An ``AeroSetReader`` for an AEROSET (manifest, directory, or a URL
    ending in ``.json`` or ``/``), else an ``AeroReader``."""
    if is_set(path):
        return AeroSetReader(path, allow_remote=allow_remote, cache=cache, cache_dir=cache_dir)
    return AeroReader(path, allow_remote=allow_remote, cache=cache, cache_dir=cache_dir)


_FRAMEWORKS = {"np": "np", "numpy": "np", "pt": "pt", "torch": "pt", "pytorch": "pt"}


class SafeOpen:
    """safetensors' ``safe_open`` over an AERO file or AEROSET (a path, an
    AEROSET manifest or directory, or a URL of either)::

        with aerotensor.safe_open("model.aero", framework="np") as f:
            for k in f.keys():                 # sorted, as safetensors
                t = f.get_tensor(k)            # verified
            rows = f.get_slice(k)[0:10]        # only these rows read and verified
            f.metadata()                       # the __metadata__ that came in

    ``framework="np"`` gives numpy arrays, ``"pt"`` torch tensors (on
    ``device``; see ``aerotensor.torch``). ``get_slice(k).get_dtype()``
    says safetensors' names (``"F32"``, ``"BF16"``). ``dequantize``
    (``"f32"``, ``"f16"``, ``"bf16"``) expands packed GGUF blocks; torch
    refuses them without it. ``verify=False`` (torch only) hands out bytes
    without checking them: the one unverified read, asked for by name.
    """

    def __init__(self, filename: PathLike, framework: str = "np", device: Any = "cpu", *,
                 dequantize: Optional[str] = None, verify: bool = True,
                 allow_remote: bool = False, cache: bool = True,
                 cache_dir: Optional[PathLike] = None) -> None:
        self._init(framework, device, dequantize, verify)
        self._h = _open(filename, "auto", allow_remote, cache, cache_dir)

    def _init(self, framework: str, device: Any, dequantize: Optional[str], verify: bool) -> None:
        fw = _FRAMEWORKS.get(str(framework).lower())
        if fw is None:
            raise ValueError(f"framework must be 'np' (numpy) or 'pt' (torch), not {framework!r}")
        if dequantize is not None and dequantize not in _DEQUANT:
            raise ValueError(f"dequantize must be one of {_DEQUANT}, not {dequantize!r}")
        if fw == "np" and str(device) != "cpu":
            raise ValueError(f"numpy arrays live on the CPU; device={device!r} needs framework='pt'")
        if fw == "np" and not verify:
            raise ValueError("verify=False is offered for torch tensors only (framework='pt')")
        self._torch: Any = None
        if fw == "pt":
            from . import torch as _torch_api

            self._torch = _torch_api._Loader(device, dequantize, verify)
        self.framework = fw
        self.device = device
        self._dequantize = dequantize

    @classmethod
    def _of_handle(cls, handle: "_aerotensor._Handle", framework: str, device: Any = "cpu",
                   dequantize: Optional[str] = None, verify: bool = True) -> "SafeOpen":
        f = cls.__new__(cls)
        f._init(framework, device, dequantize, verify)
        f._h = handle
        return f

    def keys(self) -> List[str]:
        """Tensor names, sorted (as safetensors lists them)."""
        return sorted(self._h.names())

    def offset_keys(self) -> List[str]:
        """Tensor names in stored order."""
        return self._h.names()

    def metadata(self) -> Optional[Dict[str, str]]:
        """The safetensors ``__metadata__`` the file was made with (by a
        converter from safetensors, or ``save_file(..., metadata=)``), as
        safetensors returns it: ``Dict[str, str]``, or None when there was
        none."""
        pairs = self._h.st_metadata()
        return None if pairs is None else dict(pairs)

    def get_tensor(self, name: str, dequantize: Optional[str] = None) -> Any:
        """A tensor, verified: a read-only numpy array (``"np"``) or a torch
        tensor (``"pt"``)."""
        dq = dequantize if dequantize is not None else self._dequantize
        if self._torch is not None:
            return self._torch.tensor(self._h, name, dq)
        if dq is not None:
            _code, _s, _n, ggml, _d, _e = self._h.info(name)
            if ggml is None:  # only packed blocks are expanded by safe_open
                dq = None
        return _get_tensor(self._h, name, dq)

    def get_slice(self, name: str) -> Any:
        """A lazy slice: ``[a:b]`` reads and verifies only those rows;
        ``get_shape()``, ``get_dtype()`` (safetensors' names)."""
        s = TensorSlice(self._h, name)
        return s if self._torch is None else self._torch.slice(s)

    def close(self) -> None:
        """Releases the file; tensors already handed out stay valid."""
        self._h.close()

    def __enter__(self) -> "SafeOpen":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"safe_open({self._h.path!r}, framework={self.framework!r})"


#: ``safe_open(path, framework="np", device="cpu")``: see ``SafeOpen``.
safe_open = SafeOpen


def load_file(filename: PathLike, *, dequantize: Optional[str] = None, **kwargs: Any) -> Dict[str, _np.ndarray]:
    """Every tensor of a file or set as ``{name: numpy.ndarray}``, verified.

    A local file is verified in one parallel pass over its shards first
    (``verify_all``), then every tensor is a zero-copy, read-only view of
    the mapping. A remote file or set is read in one call: each file's span
    with one ranged read cut into pieces fetched with several requests in
    flight (``AEROTENSOR_REMOTE_JOBS``, default 16) straight into one region,
    the parts of a set concurrently; every tensor is verified against its
    hash before any array is made, and the arrays are read-only views of
    that region. The arrays stay valid after the function returns
    (they keep the mapping alive). ``dequantize`` as in ``get_tensor``."""
    with open(filename, **kwargs) as r:
        names = r.keys()
        if not _aerotensor.is_url(r.path):
            r.verify_all()
        elif dequantize is None:
            return dict(zip(names, (_array(b) for b in r._h.tensors_many(names))))
        return {name: r.get_tensor(name, dequantize) for name in names}


def _split_metadata(metadata: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """Writer keywords for ``metadata``: string values are the safetensors
    ``__metadata__`` (kept whole, in order); ``model_name`` and
    ``architecture`` also name the model; other JSON values go into MJSN."""
    meta = dict(metadata or {})
    for k in meta:
        if not isinstance(k, str):
            raise TypeError(f"metadata keys must be str, not {type(k).__name__}")
    st = [(k, v) for k, v in meta.items() if isinstance(v, str)]
    extra = {k: v for k, v in meta.items()
             if not isinstance(v, str) and k not in ("model_name", "architecture")}
    name, arch = meta.get("model_name"), meta.get("architecture")
    return {
        "model_name": None if name is None else str(name),
        "architecture": None if arch is None else str(arch),
        "extra_meta_json": _json.dumps(extra) if extra else None,
        "st_metadata": st or None,
    }


def _write(items: List[Tuple[str, str, List[int], Any, int]], filename: PathLike,
           metadata: Optional[Mapping[str, Any]], **opts: Any) -> None:
    """The native writer over prepared tensors (sorted by name): (name,
    element type name, shape, contiguous little-endian bytes source, byte
    length)."""
    _aerotensor.save(_fspath(filename), items, **_split_metadata(metadata), **opts)


def save_file(tensors: Mapping[str, _np.ndarray], filename: PathLike,
              metadata: Optional[Mapping[str, Any]] = None, *,
              layout: str = "aligned", uuid: Optional[bytes] = None,
              max_shard_bytes: Optional[int] = None) -> None:
    """Writes ``{name: numpy array}`` to an AERO file with this project's
    writer: tensors sorted by name, the aligned layout (every tensor 64-byte
    aligned, so it reads back zero-copy), a ``hash_b3`` per tensor and 1 MiB
    page hashes; atomically (a temporary file renamed into place).

    Every dtype keeps its identity: ``ml_dtypes`` bfloat16 is stored as
    bf16, the float8 types (``float8_e4m3fn``, ``float8_e5m2``, …) and
    complex64 as the safetensors converter stores F8_E4M3, F8_E5M2, C64, so
    ``load_file`` and ``export-safetensors`` give them back. A value that is
    not a numpy array is a ``TypeError``; a dtype AERO cannot hold a
    ``ValueError``.

    ``metadata``: string values are kept as the safetensors ``__metadata__``
    (``safe_open(...).metadata()`` and ``export-safetensors`` give it back);
    ``model_name`` and ``architecture`` also name the model (defaults
    ``converted`` / ``unknown``); other JSON values go into the MJSN
    metadata. ``layout="reference"`` writes what the reference writer writes
    (packed, no tensor or page hashes)."""
    items = []
    for name in sorted(tensors, key=_sort_key):
        a = tensors[name]
        if not isinstance(a, (_np.ndarray, _np.generic)):
            hint = " (torch tensors: aerotensor.torch.save_file)" \
                if type(a).__module__.startswith("torch") else ""
            raise TypeError(f"tensor {name!r}: expected a numpy array, got "
                            f"{type(a).__module__}.{type(a).__qualname__}{hint}")
        a = _np.asarray(a)
        if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and not _LITTLE):
            a = a.astype(a.dtype.newbyteorder("<"))
        # ascontiguousarray makes 0-d arrays 1-d: keep the shape.
        a = _np.ascontiguousarray(a).reshape(a.shape)
        items.append((name, a.dtype.name, [int(d) for d in a.shape], a, int(a.nbytes)))
    _write(items, filename, metadata, uuid=uuid, layout=layout, max_shard_bytes=max_shard_bytes)


_LITTLE = _sys.byteorder == "little"


def _sort_key(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"tensor names must be str, not {type(name).__name__}")
    return name


def validate(path: PathLike, mode: str = "full", *, allow_remote: bool = False, cache: bool = True,
             cache_dir: Optional[PathLike] = None) -> Dict[str, Any]:
    """Validates a file or AEROSET (path or URL) and returns the report as
    a dict — the schema of the CLI's ``validate --json``
    (``docs/schema/validate.json``): ``input``, ``format`` (``AERO`` or
    ``AEROSET``), ``verdict``
    (``valid``, ``valid-with-warnings``, ``invalid``, ``error``), ``valid``,
    ``chunks``, ``tensors``, ``control``, ``pages``, ``errors``,
    ``warnings`` (a set's report has ``files``). ``mode``: ``quick``
    (metadata), ``full`` (every hash), ``control`` (IHSH only). A file that
    cannot be opened gives a report with an ``error`` field, not an
    exception."""
    return _json.loads(_aerotensor.validate(
        _fspath(path), mode, allow_remote, cache, None if cache_dir is None else _fspath(cache_dir)))


def convert(src: PathLike, dst: PathLike, *, layout: str = "aligned", uuid: Optional[bytes] = None,
            max_shard_bytes: Optional[int] = None,
            like: Optional[PathLike] = None) -> Dict[str, Any]:
    """Converts ``src`` (recognised by its content) into what ``dst``'s name
    asks for, as ``aerotensor convert`` does: ``.safetensors`` or ``.gguf``
    exports an AERO file; any other name writes AERO (a safetensors or GGUF
    file converted, an AERO file repacked); a directory (existing, or a
    path ending in ``/``) receives ``<src stem>.aero``; a sharded
    safetensors checkpoint's ``*.index.json`` becomes an AEROSET directory.
    A Hugging Face model folder (``model.safetensors`` or shards, with
    ``config.json``, tokenizer…) becomes one AERO file carrying its other
    files (a sharded folder an AEROSET unless ``dst`` ends in ``.aero``). A
    safetensors or GGUF ``src`` with a ``.safetensors`` or ``.gguf`` ``dst``
    is a ``ValueError`` naming the two steps through AERO, and so are writer
    options (``layout``, ``uuid``, ``max_shard_bytes``) given for an export.
    Every byte copied out of an AERO input is verified. Returns
    ``{input_kind, output, size, tensors, shards}`` (``output``: the
    path written; ``size`` its bytes, a set's summed — the CLI's JSON
    vocabulary, docs/CLI.md).

    ``like`` (a set's directory, manifest or URL; often ``dst`` itself)
    writes an AEROSET output as a new revision of that set: its part file
    names, tensor-to-part assignment and UUIDs are kept, so every part whose
    tensors did not change comes out byte-identical, and an existing set at
    ``dst`` is replaced. The result then also has ``identical_parts``, the
    part files identical to the old set's. Use the same ``layout`` and
    ``max_shard_bytes`` as for the old set; ``uuid`` cannot be given with
    it. Outputs that are not sets raise ``ValueError``."""
    return _aerotensor.convert(_fspath(src), _fspath(dst), layout, uuid, max_shard_bytes,
                               like=None if like is None else _fspath(like))


def is_set(path: PathLike) -> bool:
    """Whether ``path`` names an AEROSET (a manifest, a directory holding
    ``model.aeroset.json``, or a URL ending in ``.json`` or ``/``)."""
    return _aerotensor.is_set(_fspath(path))
