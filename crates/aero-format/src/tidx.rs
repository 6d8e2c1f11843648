//! A borrowing iterator over an uncompressed TIDX payload (spec §5).
//!
//! ```
//! use aero_format::{tidx::TensorIter, DType};
//! // {"tensors": [{"name": "w", "dtype": 1, "shape": [2], "shard_id": 0,
//! //               "data_off": 0, "data_len": 8, "flags": 0}]}
//! let tidx: &[u8] = &[
//!     0x81, 0xa7, b't', b'e', b'n', b's', b'o', b'r', b's', 0x91, 0x87,
//!     0xa4, b'n', b'a', b'm', b'e', 0xa1, b'w',
//!     0xa5, b'd', b't', b'y', b'p', b'e', 0x01,
//!     0xa5, b's', b'h', b'a', b'p', b'e', 0x91, 0x02,
//!     0xa8, b's', b'h', b'a', b'r', b'd', b'_', b'i', b'd', 0x00,
//!     0xa8, b'd', b'a', b't', b'a', b'_', b'o', b'f', b'f', 0x00,
//!     0xa8, b'd', b'a', b't', b'a', b'_', b'l', b'e', b'n', 0x08,
//!     0xa5, b'f', b'l', b'a', b'g', b's', 0x00,
//! ];
//! let mut it = TensorIter::new(tidx)?;
//! let t = it.next().unwrap()?;
//! assert_eq!((t.name, t.dtype, t.data_len), ("w", DType::F32, 8));
//! assert_eq!(t.shape.iter().collect::<Result<Vec<u64>, _>>()?, [2]);
//! assert!(it.next().is_none());
//! # Ok::<(), aero_format::Error>(())
//! ```

use crate::dtype::DType;
use crate::error::{Error, ErrorKind, Field};
use crate::limits;
use crate::msgpack::{Reader, decode_hex32};

/// The dimensions of a tensor, borrowed from the MessagePack bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape<'a> {
    raw: &'a [u8],
    rank: u32,
}

impl<'a> Shape<'a> {
    /// Number of dimensions.
    pub fn rank(&self) -> u32 {
        self.rank
    }

    /// Iterates over the dimensions. Every item was validated as a
    /// non-negative integer when the tensor was parsed.
    pub fn iter(&self) -> ShapeIter<'a> {
        let mut r = Reader::new(self.raw);
        // The raw bytes start with the array header; it was validated already.
        let _ = r.read_array_len(Field::TensorShape);
        ShapeIter { r, left: self.rank }
    }

    /// Product of the dimensions (1 for a scalar), `None` on overflow.
    pub fn elements(&self) -> Option<u64> {
        self.iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(d.ok()?))
    }

    /// The raw MessagePack bytes of the shape array.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

/// Iterator over the dimensions of a [`Shape`].
#[derive(Clone, Debug)]
pub struct ShapeIter<'a> {
    r: Reader<'a>,
    left: u32,
}

impl Iterator for ShapeIter<'_> {
    type Item = Result<u64, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left = self.left.saturating_sub(1);
        Some(self.r.read_u64(Field::TensorShape))
    }
}

/// One tensor entry of the TIDX, borrowing from the payload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorRecord<'a> {
    /// Position in the `tensors` array.
    pub index: u32,
    /// Tensor name.
    pub name: &'a str,
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub shape: Shape<'a>,
    /// The WTSH shard holding the bytes.
    pub shard_id: u64,
    /// Offset inside the shard payload.
    pub data_off: u64,
    /// Byte length.
    pub data_len: u64,
    /// The reserved `flags` value (0 when absent).
    pub flags: u64,
    /// BLAKE3-256 of the tensor bytes, when recorded (an empty string means absent).
    pub hash_b3: Option<[u8; 32]>,
    /// `quant_id`, when present and a non-negative integer.
    pub quant_id: Option<u64>,
    /// Whether the map has keys other than [`KNOWN_KEYS`] (see [`Self::extras`]).
    pub has_extras: bool,
    /// The raw MessagePack bytes of the whole tensor map.
    pub raw: &'a [u8],
}

/// Keys the iterator interprets; every other key is an "extra" (see
/// [`TensorRecord::extras`]).
pub const KNOWN_KEYS: [&str; 8] = [
    "name", "dtype", "shape", "shard_id", "data_off", "data_len", "flags", "hash_b3",
];

impl<'a> TensorRecord<'a> {
    /// Keys other than [`KNOWN_KEYS`], in stored order, as (key, raw
    /// MessagePack value). `quant_id` and `quant_params` appear here.
    pub fn extras(&self) -> ExtraIter<'a> {
        if !self.has_extras {
            return ExtraIter {
                r: Reader::new(&[]),
                left: 0,
            };
        }
        let mut r = Reader::new(self.raw);
        let left = r.read_map_len(Field::TensorExtra).unwrap_or(0);
        ExtraIter { r, left }
    }

    /// The end of the tensor's range in its shard.
    pub fn data_end(&self) -> Option<u64> {
        self.data_off.checked_add(self.data_len)
    }

    /// For sized dtypes, the byte length dtype × shape implies.
    pub fn expected_len(&self) -> Option<u64> {
        self.dtype.byte_len(self.shape.elements()?)
    }
}

/// Iterator over the extra keys of a tensor entry.
#[derive(Clone, Debug)]
pub struct ExtraIter<'a> {
    r: Reader<'a>,
    left: u32,
}

impl<'a> Iterator for ExtraIter<'a> {
    type Item = (&'a str, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        while self.left > 0 {
            self.left = self.left.saturating_sub(1);
            let key = self.r.read_str(Field::TensorExtra).ok()?;
            let val = self.r.skip(Field::TensorExtra).ok()?;
            if !KNOWN_KEYS.contains(&key) {
                return Some((key, val));
            }
        }
        None
    }
}

/// Iterator over the tensors of an uncompressed TIDX payload.
///
/// Stops after the first error (it yields the error, then `None`).
#[derive(Clone, Debug)]
pub struct TensorIter<'a> {
    r: Reader<'a>,
    left: u32,
    count: u32,
    failed: bool,
}

impl<'a> TensorIter<'a> {
    /// Positions the iterator at the `tensors` array. Other top-level keys are skipped.
    pub fn new(payload: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(payload);
        let n = r.read_map_len(Field::Tidx)?;
        for _ in 0..n {
            let key = r.read_str(Field::Tidx)?;
            if key == "tensors" {
                let at = r.position() as u64;
                let count = r.read_array_len(Field::Tensors)?;
                if u64::from(count) > limits::MAX_TENSORS {
                    return Err(Error::new(
                        ErrorKind::LimitExceeded {
                            value: count.into(),
                            limit: limits::MAX_TENSORS,
                        },
                        Field::Tensors,
                        at,
                    ));
                }
                return Ok(TensorIter {
                    r,
                    left: count,
                    count,
                    failed: false,
                });
            }
            r.skip(Field::Tidx)?;
        }
        Err(Error::new(ErrorKind::MissingKey, Field::Tensors, 0))
    }

    /// Number of entries the `tensors` array declares.
    pub fn declared_len(&self) -> u32 {
        self.count
    }

    fn parse_one(&mut self, index: u32) -> Result<TensorRecord<'a>, Error> {
        let start = self.r.position();
        let at = start as u64;
        let n = self
            .r
            .read_map_len(Field::Tensors)
            .map_err(|e| e.at(index))?;
        let mut seen = 0u16;
        let mut name = None;
        let mut dtype = None;
        let mut shape = None;
        let mut shard_id = None;
        let mut data_off = None;
        let mut data_len = None;
        let mut flags = 0;
        let mut hash_b3 = None;
        let mut quant_id = None;
        let mut has_extras = false;
        for _ in 0..n {
            let kat = self.r.position() as u64;
            let key_bytes = self
                .r
                .read_str_bytes(Field::TensorExtra)
                .map_err(|e| e.at(index))?;
            // Known keys are ASCII; only other keys need a UTF-8 check.
            let bit = match key_bytes {
                b"name" => Some(0),
                b"dtype" => Some(1),
                b"shape" => Some(2),
                b"shard_id" => Some(3),
                b"data_off" => Some(4),
                b"data_len" => Some(5),
                b"flags" => Some(6),
                b"hash_b3" => Some(7),
                _ => None,
            };
            let key = match bit {
                Some(b) => KNOWN_KEYS.get(b).copied().unwrap_or_default(),
                None => core::str::from_utf8(key_bytes).map_err(|_| {
                    Error::new(ErrorKind::InvalidUtf8, Field::TensorExtra, kat).at(index)
                })?,
            };
            if let Some(b) = bit {
                let mask = 1u16 << b;
                if seen & mask != 0 {
                    return Err(Error::new(
                        ErrorKind::DuplicateKey,
                        field_of(b),
                        self.r.position() as u64,
                    )
                    .at(index));
                }
                seen |= mask;
            }
            let vat = self.r.position() as u64;
            let bad = |kind, f| Error::new(kind, f, vat).at(index);
            match key {
                "name" => {
                    let s = self
                        .r
                        .read_str(Field::TensorName)
                        .map_err(|e| e.at(index))?;
                    if s.len() as u64 > limits::MAX_NAME_LEN {
                        return Err(bad(
                            ErrorKind::LimitExceeded {
                                value: s.len() as u64,
                                limit: limits::MAX_NAME_LEN,
                            },
                            Field::TensorName,
                        ));
                    }
                    name = Some(s);
                }
                "dtype" => {
                    let v = self
                        .r
                        .read_u64(Field::TensorDtype)
                        .map_err(|e| e.at(index))?;
                    let code = u16::try_from(v)
                        .map_err(|_| bad(ErrorKind::BadValue(v), Field::TensorDtype))?;
                    dtype = Some(DType::from_code(code));
                }
                "shape" => {
                    let s0 = self.r.position();
                    let rank = self
                        .r
                        .read_array_len(Field::TensorShape)
                        .map_err(|e| e.at(index))?;
                    if u64::from(rank) > limits::MAX_RANK {
                        return Err(bad(
                            ErrorKind::LimitExceeded {
                                value: rank.into(),
                                limit: limits::MAX_RANK,
                            },
                            Field::TensorShape,
                        ));
                    }
                    for _ in 0..rank {
                        self.r
                            .read_u64(Field::TensorShape)
                            .map_err(|e| e.at(index))?;
                    }
                    shape = Some(Shape {
                        raw: self.r.slice(s0, self.r.position()),
                        rank,
                    });
                }
                "shard_id" => {
                    shard_id = Some(
                        self.r
                            .read_u64(Field::TensorShardId)
                            .map_err(|e| e.at(index))?,
                    )
                }
                "data_off" => {
                    data_off = Some(
                        self.r
                            .read_u64(Field::TensorDataOff)
                            .map_err(|e| e.at(index))?,
                    )
                }
                "data_len" => {
                    data_len = Some(
                        self.r
                            .read_u64(Field::TensorDataLen)
                            .map_err(|e| e.at(index))?,
                    )
                }
                "flags" => {
                    flags = self
                        .r
                        .read_u64(Field::TensorExtra)
                        .map_err(|e| e.at(index))?
                }
                "hash_b3" => {
                    // 64 hex digits are ASCII: the UTF-8 check is needed
                    // only to report a string that is not hex correctly.
                    let s = self
                        .r
                        .read_str_bytes(Field::TensorHash)
                        .map_err(|e| e.at(index))?;
                    if !s.is_empty() {
                        hash_b3 = Some(match decode_hex32(s) {
                            Some(h) => h,
                            None if core::str::from_utf8(s).is_err() => {
                                return Err(bad(ErrorKind::InvalidUtf8, Field::TensorHash));
                            }
                            None => return Err(bad(ErrorKind::BadHex, Field::TensorHash)),
                        });
                    }
                }
                "quant_id" => {
                    has_extras = true;
                    let mut peek = self.r.clone();
                    if let Ok(v) = peek.read_u64(Field::TensorExtra) {
                        quant_id = Some(v);
                    }
                    self.r.skip(Field::TensorExtra).map_err(|e| e.at(index))?;
                }
                _ => {
                    has_extras = true;
                    self.r.skip(Field::TensorExtra).map_err(|e| e.at(index))?;
                }
            }
        }
        let missing = |f| Error::new(ErrorKind::MissingKey, f, at).at(index);
        let record = TensorRecord {
            index,
            name: name.ok_or(missing(Field::TensorName))?,
            dtype: dtype.ok_or(missing(Field::TensorDtype))?,
            shape: shape.ok_or(missing(Field::TensorShape))?,
            shard_id: shard_id.ok_or(missing(Field::TensorShardId))?,
            data_off: data_off.ok_or(missing(Field::TensorDataOff))?,
            data_len: data_len.ok_or(missing(Field::TensorDataLen))?,
            flags,
            hash_b3,
            quant_id,
            has_extras,
            raw: self.r.slice(start, self.r.position()),
        };
        if record.data_end().is_none() {
            return Err(Error::new(
                ErrorKind::OutOfBounds {
                    offset: record.data_off,
                    length: record.data_len,
                    limit: u64::MAX,
                },
                Field::TensorDataLen,
                at,
            )
            .at(index));
        }
        Ok(record)
    }
}

fn field_of(bit: usize) -> Field {
    match bit {
        0 => Field::TensorName,
        1 => Field::TensorDtype,
        2 => Field::TensorShape,
        3 => Field::TensorShardId,
        4 => Field::TensorDataOff,
        5 => Field::TensorDataLen,
        7 => Field::TensorHash,
        _ => Field::TensorExtra,
    }
}

impl<'a> Iterator for TensorIter<'a> {
    type Item = Result<TensorRecord<'a>, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 || self.failed {
            return None;
        }
        let index = self.count.saturating_sub(self.left);
        self.left = self.left.saturating_sub(1);
        let r = self.parse_one(index);
        self.failed = r.is_err();
        Some(r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}
