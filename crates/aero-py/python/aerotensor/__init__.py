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

    with aerotensor.AeroSetReader("model-dir/") as s:  # AEROSET: dir, manifest or URL
        emb = s.get_tensor("embed.weight")

Writing, converting, checking::

    aerotensor.save_file({"w": numpy.ones((2, 3), "float32")}, "out.aero",
                         metadata={"model_name": "demo"})
    aerotensor.convert("model.safetensors", "model.aero")   # or a .gguf
    report = aerotensor.validate("model.aero", "full")      # dict, as `validate --json`
    assert report["valid"]

Dtypes: bfloat16 tensors come back as their raw ``uint16`` bits and packed
(quantized) tensors as ``uint8`` bytes, unless read with
``get_tensor(name, dequantize="f32")`` (also ``"f16"``, ``"bf16"``), which
dequantizes ggml types (Q4_0 … Q6_K, i-quants, …) bit-exactly as gguf-py.

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
from dataclasses import dataclass as _dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

import numpy as _np

from . import _aerotensor
from ._errors import AeroError, IntegrityError, TensorNotFoundError

__version__ = _aerotensor.__version__

__all__ = [
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

#: AERO dtype code → the numpy dtype ``get_tensor`` returns (bf16 as its
#: uint16 bits; packed and unknown codes as uint8 bytes).
NUMPY_DTYPES: Dict[int, _np.dtype] = {
    0: _np.dtype("<f2"), 1: _np.dtype("<f4"), 2: _np.dtype("<u2"),
    3: _np.dtype("<f8"), 4: _np.dtype("i1"), 5: _np.dtype("u1"),
    6: _np.dtype("<i2"), 7: _np.dtype("<u2"), 8: _np.dtype("<i4"),
    9: _np.dtype("<u4"), 10: _np.dtype("<i8"), 11: _np.dtype("<u8"),
    12: _np.dtype("bool"), 0x8000: _np.dtype("u1"),
}

_CODE_OF_KIND = {
    ("f", 2): 0, ("f", 4): 1, ("f", 8): 3, ("i", 1): 4, ("u", 1): 5,
    ("i", 2): 6, ("u", 2): 7, ("i", 4): 8, ("u", 4): 9, ("i", 8): 10,
    ("u", 8): 11, ("b", 1): 12,
}

_DEQUANT = ("f32", "f16", "bf16")


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
    safetensors."""

    def __init__(self, handle: "_aerotensor._Handle", name: str) -> None:
        self._h = handle
        self.name = name
        code, shape, self.nbytes, self._ggml = handle.info(name)
        self.dtype_code: int = code
        self.shape: Tuple[int, ...] = tuple(shape)

    def get_shape(self) -> List[int]:
        return list(self.shape)

    def get_dtype(self) -> str:
        return DTYPE_NAMES.get(self.dtype_code, f"unknown({self.dtype_code})")

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a scalar tensor")
        return self.shape[0]

    def __getitem__(self, key: Any) -> _np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        sized = self.dtype_code in NUMPY_DTYPES and self.dtype_code != 0x8000
        first = key[0] if key else Ellipsis
        if not self.shape or not sized or not isinstance(first, (int, _np.integer, slice)) \
                or isinstance(first, bool):
            # Anything but rows along the first axis: the whole tensor.
            return _np.asarray(self._h.tensor(self.name))[key]
        n, rest = self.shape[0], key[1:]
        if isinstance(first, slice):
            start, stop, step = first.indices(n)
            idx = range(start, stop, step)
            if len(idx) == 0:
                lo = hi = 0
            else:
                lo, hi = min(idx[0], idx[-1]), max(idx[0], idx[-1]) + 1
            rows = _np.asarray(self._h.rows(self.name, lo, hi))
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
        row = _np.asarray(self._h.rows(self.name, i, i + 1))[0]
        return row[rest] if rest else row

    def __repr__(self) -> str:
        return f"TensorSlice({self.name!r}, {self.get_dtype()}, shape={self.shape})"


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
        return memoryview(_np.asarray(self._h.tensor(name, raw=True)))

    def get_tensor(self, name: str, dequantize: Optional[str] = None) -> _np.ndarray:
        """A tensor as a read-only numpy array of its dtype and shape,
        verified. Zero-copy over the mapping when local and aligned (else a
        copy). bfloat16 comes as ``uint16`` bits, packed tensors as ``uint8``
        bytes — unless ``dequantize`` is ``"f32"``, ``"f16"`` or ``"bf16"``
        (``uint16`` bits): ggml-packed tensors are then dequantized
        (bit-exact with gguf-py) and float tensors converted."""
        if dequantize is None:
            return _np.asarray(self._h.tensor(name))
        if dequantize not in _DEQUANT:
            raise ValueError(f"dequantize must be one of {_DEQUANT}, not {dequantize!r}")
        code, _shape, _n, ggml = self._h.info(name)
        if ggml is not None:
            return _np.asarray(self._h.dequantize(name, dequantize))
        if code == 0x8000 or code not in NUMPY_DTYPES:
            raise AeroError(f"tensor {name!r} is packed without a ggml type: nothing to dequantize")
        arr = _np.asarray(self._h.tensor(name))
        if code == 2:  # bfloat16 bits
            if dequantize == "bf16":
                return arr
            arr = (arr.astype(_np.uint32) << 16).view(_np.float32)
        if dequantize == "bf16":
            f32 = _np.ascontiguousarray(arr, dtype=_np.float32).view(_np.uint32)
            # round to nearest even, NaN kept NaN
            rounded = ((f32 + 0x7FFF + ((f32 >> 16) & 1)) >> 16).astype(_np.uint16)
            nan = _np.isnan(f32.view(_np.float32))
            return _np.where(nan, ((f32 >> 16) | 0x40).astype(_np.uint16), rounded)
        return arr.astype(_np.float32 if dequantize == "f32" else _np.float16)

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


def safe_open(filename: PathLike, framework: str = "numpy", device: str = "cpu",
              **kwargs: Any) -> Union[AeroReader, AeroSetReader]:
    """safetensors-style opening: ``with safe_open(p, "np") as f:
    f.keys(); f.get_tensor(k); f.get_slice(k)[a:b]; f.metadata()``.
    Only numpy on the CPU is offered."""
    if framework not in ("numpy", "np") or device != "cpu":
        raise ValueError("aerotensor gives numpy arrays on the CPU (framework='numpy', device='cpu')")
    return open(filename, **kwargs)


def load_file(filename: PathLike, *, dequantize: Optional[str] = None, **kwargs: Any) -> Dict[str, _np.ndarray]:
    """Every tensor of a file or set as ``{name: numpy.ndarray}``, verified.

    A local file is verified in one parallel pass over its shards first
    (``verify_all``), then every tensor is a zero-copy, read-only view of
    the mapping. A remote file or set is read in one call: its tensors are
    streamed with several range requests in flight (``AEROTENSOR_REMOTE_JOBS``,
    default 16), the parts of a set concurrently, each tensor verified as its
    last byte arrives. The arrays stay valid after the function returns
    (they keep the mapping alive). ``dequantize`` as in ``get_tensor``."""
    with open(filename, **kwargs) as r:
        names = r.keys()
        if not _aerotensor.is_url(r.path):
            r.verify_all()
        elif dequantize is None:
            return dict(zip(names, (_np.asarray(b) for b in r._h.tensors_many(names))))
        return {name: r.get_tensor(name, dequantize) for name in names}


def _code_of(a: _np.ndarray, name: str) -> int:
    dt = a.dtype
    if dt.name == "bfloat16":  # ml_dtypes / jax bfloat16
        return 2
    code = _CODE_OF_KIND.get((dt.kind, dt.itemsize))
    if code is None:
        raise ValueError(f"tensor {name!r}: numpy dtype {dt} has no AERO dtype")
    return code


def save_file(tensors: Mapping[str, Any], filename: PathLike,
              metadata: Optional[Mapping[str, Any]] = None, *,
              layout: str = "aligned", uuid: Optional[bytes] = None,
              max_shard_bytes: Optional[int] = None) -> None:
    """Writes ``{name: array}`` to an AERO file with this project's writer:
    tensors sorted by name, the aligned layout (every tensor 64-byte aligned,
    so it reads back zero-copy), a ``hash_b3`` per tensor and 1 MiB page
    hashes; atomically (a temporary file renamed into place).

    ``metadata``: ``model_name`` and ``architecture`` name the model
    (defaults ``converted`` / ``unknown``); other keys go into the MJSN
    metadata as JSON values. ``layout="reference"`` writes what the
    reference writer writes (packed, no tensor or page hashes)."""
    items = []
    for name in sorted(tensors):
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str, not {type(name).__name__}")
        a = _np.asarray(tensors[name])
        code = _code_of(a, name)
        if code == 2 and a.dtype.name == "bfloat16":
            a = a.view(_np.uint16)
        if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and _np.little_endian is False):
            a = a.astype(a.dtype.newbyteorder("<"))
        # ascontiguousarray makes 0-d arrays 1-d: keep the shape.
        a = _np.ascontiguousarray(a).reshape(a.shape)
        items.append((name, code, [int(d) for d in a.shape], a, int(a.nbytes)))
    meta = dict(metadata or {})
    model_name = meta.pop("model_name", None)
    architecture = meta.pop("architecture", None)
    _aerotensor.save(
        _fspath(filename), items,
        model_name=None if model_name is None else str(model_name),
        architecture=None if architecture is None else str(architecture),
        extra_meta_json=_json.dumps(meta) if meta else None,
        uuid=uuid, layout=layout, max_shard_bytes=max_shard_bytes,
    )


def validate(path: PathLike, mode: str = "full", *, allow_remote: bool = False, cache: bool = True,
             cache_dir: Optional[PathLike] = None) -> Dict[str, Any]:
    """Validates a file or AEROSET (path or URL) and returns the report as
    a dict — the schema of the CLI's ``validate --json``: ``verdict``
    (``valid``, ``valid-with-warnings``, ``invalid``, ``error``), ``valid``,
    ``chunks``, ``tensors``, ``control``, ``pages``, ``errors``,
    ``warnings`` (a set's report has ``files``). ``mode``: ``quick``
    (metadata), ``full`` (every hash), ``control`` (IHSH only). A file that
    cannot be opened gives a report with an ``error`` field, not an
    exception."""
    return _json.loads(_aerotensor.validate(
        _fspath(path), mode, allow_remote, cache, None if cache_dir is None else _fspath(cache_dir)))


def convert(src: PathLike, dst: PathLike, *, layout: str = "aligned", uuid: Optional[bytes] = None,
            max_shard_bytes: Optional[int] = None) -> Dict[str, Any]:
    """Converts by content: a safetensors or GGUF file into AERO, a sharded
    safetensors checkpoint (its ``*.index.json`` or directory) into an
    AEROSET directory, an AERO file into safetensors or GGUF (by ``dst``'s
    extension) or into a repacked AERO file. Every byte copied out of an
    AERO input is verified. Returns ``{input_kind, output, file_size,
    tensors, shards}``."""
    return _aerotensor.convert(_fspath(src), _fspath(dst), layout, uuid, max_shard_bytes)


def is_set(path: PathLike) -> bool:
    """Whether ``path`` names an AEROSET (a manifest, a directory holding
    ``model.aeroset.json``, or a URL ending in ``.json`` or ``/``)."""
    return _aerotensor.is_set(_fspath(path))
