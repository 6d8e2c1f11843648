use std::path::PathBuf;

/// Errors from reading, validating or writing AERO files.
///
/// Every variant that concerns a file names it, so a one-line message is
/// enough for a user to know what to look at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The header, TOC or string table is malformed.
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What the format parser found.
        #[source]
        source: aero_format::Error,
    },
    /// A chunk's payload could not be read or is inconsistent.
    #[error("{path}: chunk {index} ({fourcc} '{name}'): {reason}")]
    Chunk {
        /// The file.
        path: PathBuf,
        /// TOC index.
        index: u32,
        /// Chunk type.
        fourcc: aero_format::FourCc,
        /// Chunk name.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// A chunk's BLAKE3 does not match the TOC.
    #[error("{path}: chunk {index} ({fourcc} '{name}'): BLAKE3 mismatch (payload corrupt)")]
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// TOC index.
        index: u32,
        /// Chunk type.
        fourcc: aero_format::FourCc,
        /// Chunk name.
        name: String,
    },
    /// A required chunk is absent.
    #[error("{path}: no {what} chunk")]
    MissingChunk {
        /// The file.
        path: PathBuf,
        /// Which chunk.
        what: &'static str,
    },
    /// A metadata payload (TIDX, MMSG, MJSN, IHSH, PHSH) does not decode.
    #[error("{path}: {chunk}: {reason}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// Which chunk.
        chunk: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A tensor entry is unusable.
    #[error("{path}: tensor '{name}': {reason}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The requested tensor does not exist.
    #[error("{path}: no tensor named '{name}'")]
    NoSuchTensor {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        name: String,
    },
    /// A tensor's bytes do not match its `hash_b3`.
    #[error("{path}: tensor '{name}': bytes do not match hash_b3 (corrupt)")]
    TensorHashMismatch {
        /// The file.
        path: PathBuf,
        /// Tensor name.
        name: String,
    },
    /// A typed view was requested that the bytes cannot provide.
    #[error("tensor '{name}': {reason}")]
    View {
        /// Tensor name.
        name: String,
        /// Why not.
        reason: String,
    },
    /// Invalid input to a writer.
    #[error("{0}")]
    Invalid(String),
    /// An output path is one of the inputs (same device and inode).
    #[error("{output}: is the same file as the input {input}; refusing to overwrite an input")]
    SameFile {
        /// The output path.
        output: PathBuf,
        /// The input it names.
        input: PathBuf,
    },
    /// An output path is a file the writer is reading from.
    #[error("{output}: is one of the files being read; refusing to overwrite an input")]
    OutputIsInput {
        /// The output path.
        output: PathBuf,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
