"""Exceptions raised by aerotensor.

Every exception raised for an AERO file or set carries what the Rust
library names in its error (``None`` when it does not apply):

``kind``    a stable short name: ``corrupt``, ``hash-mismatch``,
            ``unverifiable``, ``hash-not-recorded``, ``truncated``,
            ``format``, ``not-aero``, ``metadata``, ``tensor``,
            ``no-such-tensor``, ``manifest-field``, …
``path``    the file, URL or AEROSET manifest
``tensor``  the tensor being read
``chunk``   the chunk (``WTSH 'weights.shard0'``) or shard concerned
``field``   the header/TOC field or manifest field (``parts[1].sha256``)
``offset``  the absolute file offset of the range that failed a check
``check``   what the bytes were checked against (``hash_b3``,
            ``PHSH page 3``, ``the weights.shard0 BLAKE3``)

Operating-system errors (a missing file, a refused connection) are the
usual ``OSError`` subclasses, with the path in the message.
"""

from typing import Optional


class AeroError(Exception):
    """An AERO file or AEROSET could not be read as asked: malformed,
    truncated, inconsistent, or a read that was refused."""

    kind: Optional[str] = None
    path: Optional[str] = None
    tensor: Optional[str] = None
    chunk: Optional[str] = None
    field: Optional[str] = None
    offset: Optional[int] = None
    check: Optional[str] = None

    def __str__(self) -> str:  # not KeyError's quoting in subclasses
        return Exception.__str__(self)


class IntegrityError(AeroError):
    """Bytes failed verification (a BLAKE3 mismatch: tensor ``hash_b3``,
    PHSH page, shard or chunk hash), or nothing in the file records a hash
    for them. The damaged bytes are never returned."""


class TensorNotFoundError(AeroError, KeyError):
    """No tensor of that name (also a ``KeyError``)."""
