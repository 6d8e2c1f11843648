//! What the writer is given: tensors and where their bytes come from, and
//! the checks made before anything is written.

use std::fs::File;
use std::io::{self, Read};

use aero_format::DType;

use crate::error::{Error, Result, TensorProblem};

/// One tensor to write: metadata and a source of exactly `data_len` bytes.
pub struct TensorSpec<'a> {
    /// Unique name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub shape: Vec<u64>,
    /// Byte length the source will supply.
    pub data_len: u64,
    /// Extra TIDX keys as raw MessagePack (`quant_id`, `quant_params`, unknown keys).
    pub extras: Vec<(String, Vec<u8>)>,
    /// Where the bytes come from.
    pub bytes: TensorBytes<'a>,
}

/// Where a tensor's bytes come from.
pub enum TensorBytes<'a> {
    /// A stream of exactly `data_len` bytes.
    Reader(Box<dyn Read + Send + 'a>),
    /// A range of a local file: the writer reads it with positioned reads on
    /// its reading thread, and an unchanged shard of a verified input can be
    /// checked and hashed in one pass (see [`SourceChunk`]).
    File(FileRange<'a>),
}

impl<'a> TensorBytes<'a> {
    pub(super) fn file_range(&self) -> Option<&FileRange<'a>> {
        match self {
            TensorBytes::File(r) => Some(r),
            TensorBytes::Reader(_) => None,
        }
    }

    pub(super) fn file_range_mut(&mut self) -> Option<&mut FileRange<'a>> {
        match self {
            TensorBytes::File(r) => Some(r),
            TensorBytes::Reader(_) => None,
        }
    }
}

/// A tensor's bytes as a range of a local file (see [`TensorBytes::File`]).
pub struct FileRange<'a> {
    /// The file.
    pub file: &'a File,
    /// Offset of the tensor's first byte.
    pub offset: u64,
    /// Called with every block of the bytes as they are written (input
    /// verification, progress).
    pub observers: Vec<Box<dyn Observer + 'a>>,
    /// The verified input chunk the bytes lie in, if any (see [`SourceChunk`]).
    pub chunk: Option<SourceChunk<'a>>,
}

/// An input chunk with a recorded BLAKE3 that a [`FileRange`] lies in,
/// and the observer that verifies it as the bytes stream (for example the
/// verifying reader [`crate::repack`] uses).
///
/// When an output shard is a byte-for-byte copy of one such chunk — the same
/// tensors at the same offsets, the same length, zero gaps: what `repack`
/// writes when the layout does not change — the writer hashes the chunk
/// once, checks the digest against `blake3` and uses it for the output
/// shard; the verifiers are then not run. Otherwise each `verifier` is fed
/// like any other observer.
pub struct SourceChunk<'a> {
    /// Chunk name, for errors.
    pub name: String,
    /// Absolute offset of the chunk in the [`FileRange::file`].
    pub offset: u64,
    /// Chunk length.
    pub length: u64,
    /// Its recorded BLAKE3.
    pub blake3: [u8; 32],
    /// Verifies the chunk when the shortcut does not apply.
    pub verifier: Box<dyn Observer + 'a>,
}

/// Sees a tensor's bytes as the writer streams them from a [`FileRange`]
/// (in pieces of at most 256 KiB).
pub trait Observer: Send {
    /// Before the first block.
    fn start(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Each block, in order.
    fn bytes(&mut self, block: &[u8]) -> io::Result<()>;
    /// After the last block; an error aborts the write.
    fn end(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Debug for TensorSpec<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorSpec")
            .field("name", &self.name)
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .finish()
    }
}

/// Checks tensor metadata before anything is written.
pub fn check_specs(specs: &[TensorSpec<'_>]) -> Result<()> {
    if specs.is_empty() {
        return Err(Error::NoTensors);
    }
    let mut names = std::collections::HashSet::with_capacity(specs.len());
    for t in specs {
        if let Some(m) = t.bytes.file_range() {
            // Fail before writing anything rather than at the end of a long
            // stream (and name the tensor).
            let size = m
                .file
                .metadata()
                .map_err(|e| Error::Input {
                    path: None,
                    tensor: t.name.clone(),
                    source: e,
                })?
                .len();
            if m.offset
                .checked_add(t.data_len)
                .is_none_or(|end| end > size)
            {
                return Err(Error::Input {
                    path: None,
                    tensor: t.name.clone(),
                    source: io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "bytes {}..+{} lie past the end of the input file ({size} bytes)",
                            m.offset, t.data_len
                        ),
                    ),
                });
            }
        }
        let bad = |problem| Error::BadTensor {
            tensor: t.name.clone(),
            problem,
        };
        if t.name.is_empty() {
            return Err(bad(TensorProblem::EmptyName));
        }
        if t.name.len() as u64 > aero_format::limits::MAX_NAME_LEN {
            return Err(bad(TensorProblem::NameTooLong {
                len: t.name.len(),
                max: aero_format::limits::MAX_NAME_LEN,
            }));
        }
        if !names.insert(t.name.as_str()) {
            return Err(bad(TensorProblem::DuplicateName));
        }
        if t.shape.len() as u64 > aero_format::limits::MAX_RANK {
            return Err(bad(TensorProblem::RankTooHigh {
                rank: t.shape.len(),
                max: aero_format::limits::MAX_RANK,
            }));
        }
        let overflows = || {
            bad(TensorProblem::ShapeOverflows {
                shape: t.shape.clone(),
            })
        };
        let elems = t
            .shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or_else(overflows)?;
        if let Some(size) = t.dtype.size() {
            let want = elems.checked_mul(size).ok_or_else(overflows)?;
            if want != t.data_len {
                return Err(bad(TensorProblem::LengthMismatch {
                    dtype: t.dtype,
                    shape: t.shape.clone(),
                    expected: want,
                    given: t.data_len,
                }));
            }
        }
    }
    Ok(())
}
