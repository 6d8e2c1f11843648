use std::path::{Path, PathBuf};

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
    /// The file is shorter than its own structure says.
    #[error("{path}: truncated: {what} needs at least {need} bytes, the file has {have}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What reaches past the end (`the header`, `chunk 4 (WTSH 'weights.shard0')`).
        what: String,
        /// Bytes needed.
        need: u64,
        /// Bytes present.
        have: u64,
    },
    /// The file does not start with the AERO magic.
    #[error("{path}: not an AERO file{}", .looks_like.map(|k| format!(" (this looks like {k})")).unwrap_or_default())]
    NotAero {
        /// The file.
        path: PathBuf,
        /// What the first bytes look like, with a hint, when recognised.
        looks_like: Option<&'static str>,
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
        /// What went wrong. Free text: the variant already says which
        /// chunk and that it is unusable (what a caller acts on); the
        /// detail (decompression error, length disagreement) is for people.
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
        /// What is wrong. Free text: the decoder's diagnostic; callers
        /// branch on the variant and `chunk`, never on the detail.
        reason: String,
    },
    /// A tensor entry is unusable.
    #[error("{path}: tensor '{name}': {reason}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// What is wrong. Free text: the entry's inconsistencies as the
        /// validator lists them; the variant and `name` are what a caller
        /// acts on.
        reason: String,
    },
    /// The requested tensor does not exist.
    #[error(
        "{path}: no tensor named '{name}'{}",
        crate::names::did_you_mean(suggestions)
    )]
    NoSuchTensor {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The file's tensor names closest to `name`, best first
        /// ([`crate::names::nearest`]); empty when none is close.
        suggestions: Vec<String>,
    },
    /// Tensor bytes failed verification: nothing was handed out.
    #[error(
        "{path}: tensor '{tensor}' ({shard}, file offset {offset}): bytes do not match {check} (corrupt)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The tensor being read.
        tensor: String,
        /// The shard chunk it lies in (`weights.shard{N}`).
        shard: String,
        /// Absolute file offset of the first byte of the range that failed
        /// (the tensor, the page, or the shard).
        offset: u64,
        /// What the bytes were checked against: `hash_b3`, `PHSH page N`,
        /// or `the weights.shard{N} BLAKE3`.
        check: String,
    },
    /// Nothing in the file records a hash for a tensor's bytes.
    #[error(
        "{path}: tensor '{tensor}' cannot be verified: it has no hash_b3, {shard} has no page hashes and its TOC hash is not recorded (read it unverified to accept that)"
    )]
    Unverifiable {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// Its shard chunk.
        shard: String,
    },
    /// A typed view was requested that the bytes cannot provide.
    #[error("tensor '{name}': {reason}")]
    View {
        /// Tensor name.
        name: String,
        /// Why not (alignment, element type, length). Free text: a typed
        /// view either works or the caller falls back to bytes; nobody
        /// branches on which.
        reason: String,
    },
    /// A writer was given no tensors (nothing was written).
    #[error("no tensors to write")]
    NoTensors,
    /// A tensor given to a writer is unusable (nothing was written).
    #[error("{}", .problem.describe(.tensor))]
    BadTensor {
        /// The tensor's name (may be empty: see [`TensorProblem::EmptyName`]).
        tensor: String,
        /// What is wrong with it.
        problem: TensorProblem,
    },
    /// A writer option is outside what the format allows.
    #[error("{option} {value} is out of range")]
    OptionOutOfRange {
        /// The option (`max shard bytes`, `page size`).
        option: &'static str,
        /// The value given.
        value: u64,
    },
    /// The output would exceed a limit of the format (chunk count, u64
    /// offsets).
    #[error("{what}: exceeds the format's limits")]
    LimitExceeded {
        /// What grew too large (`the chunk count`, `the file size`, `a shard size`).
        what: &'static str,
    },
    /// A copy was cancelled because its other side failed first (the
    /// failure is reported by whoever saw it).
    #[error("{what} was cancelled")]
    Cancelled {
        /// What was being copied (`shard copy`, `tensor copy`).
        what: &'static str,
    },
    /// A hand-built chunk list that cannot be encoded (a duplicate chunk, a
    /// compressed weight shard), a compressor failure, or a broken internal
    /// invariant of the writer. Free text: these are programming errors of
    /// the caller or of this crate that nobody handles differently from one
    /// another; the message is for the person fixing the code.
    #[error("{0}")]
    Invalid(String),
    /// An input failed verification, so a writer refused it (nothing was
    /// written).
    #[error("{path}: input is damaged: {}{reason}", damaged_at(.tensor.as_deref(), *.shard))]
    InputDamaged {
        /// The input file.
        path: PathBuf,
        /// The first tensor whose bytes failed, when the damage is in a
        /// tensor's bytes.
        tensor: Option<String>,
        /// The weight shard (WTSH `shard_id`) holding that tensor.
        shard: Option<u64>,
        /// The first problem found, as the validator reports it
        /// ([`crate::Report::errors`]). Free text: the variant is what a
        /// caller acts on (refuse, suggest `validate`); the full, typed
        /// picture is the validation report itself.
        reason: String,
    },
    /// Reading a writer's input failed: an I/O error, a short source, or
    /// (`InvalidData`) input bytes that failed verification while streaming.
    #[error("{}while copying tensor '{tensor}': {source}", in_file(.path.as_deref()))]
    Input {
        /// The input file, when the caller named it: the writer reads
        /// [`TensorSpec`](crate::TensorSpec)s, not files, so callers that
        /// know the file add it with [`Error::in_input`].
        path: Option<PathBuf>,
        /// The tensor being copied.
        tensor: String,
        /// What happened.
        #[source]
        source: std::io::Error,
    },
    /// An output path is one of the inputs (same device and inode).
    #[error("{output}: is the same file as the input {input}; refusing to overwrite an input")]
    SameFile {
        /// The output path.
        output: PathBuf,
        /// The input it names.
        input: PathBuf,
    },
    /// The requested attached file (`FILE` chunk) does not exist.
    #[error("{path}: no attached file named '{name}'")]
    NoSuchAttachedFile {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        name: String,
    },
    /// A file given to a writer to attach is unusable (nothing was
    /// written): an unsafe or duplicate name, over a size cap, or changed
    /// while it was read.
    #[error("attached file '{name}': {reason}")]
    BadAttachedFile {
        /// The attached file's name (its relative path).
        name: String,
        /// What is wrong. Free text: callers refuse the file whatever the
        /// reason; the variant and `name` are what they act on.
        reason: String,
    },
    /// An output path is a file the writer is reading from.
    #[error("{output}: is one of the files being read; refusing to overwrite an input")]
    OutputIsInput {
        /// The output path.
        output: PathBuf,
    },
}

/// The payload of the `InvalidData` I/O error a streaming check raises when
/// a whole weight shard fails its TOC hash. Such a check learns of the
/// damage at the shard's last byte and cannot tell which tensor held it, so
/// it names none; the caller asks [`crate::AeroFile::locate_damage`].
#[derive(Debug)]
pub(crate) struct ShardMismatch {
    /// The shard chunk's name (`weights.shard{N}`).
    pub(crate) shard: String,
}

impl std::fmt::Display for ShardMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: BLAKE3 mismatch (corrupt)", self.shard)
    }
}

impl std::error::Error for ShardMismatch {}

impl ShardMismatch {
    /// The I/O error carrying it.
    pub(crate) fn io(shard: &str) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            ShardMismatch {
                shard: shard.to_owned(),
            },
        )
    }

    /// The shard named by `e`, when `e` is such an error.
    pub(crate) fn of(e: &std::io::Error) -> Option<&str> {
        e.get_ref()?
            .downcast_ref::<ShardMismatch>()
            .map(|m| m.shard.as_str())
    }
}

/// `"tensor 'NAME' (shard N): "` for damage located in a tensor.
fn damaged_at(tensor: Option<&str>, shard: Option<u64>) -> String {
    match (tensor, shard) {
        (Some(t), Some(s)) => format!("tensor '{t}' (shard {s}): "),
        (Some(t), None) => format!("tensor '{t}': "),
        (None, Some(s)) => format!("shard {s}: "),
        (None, None) => String::new(),
    }
}

/// `"FILE: "` when the file is known.
fn in_file(path: Option<&Path>) -> String {
    path.map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

impl Error {
    /// [`Error::InputDamaged`] for `input`: `tensor` (when the damage is in
    /// one) with the shard that holds it, and `reason`.
    pub fn input_damaged(
        input: &crate::AeroFile,
        tensor: Option<String>,
        reason: impl Into<String>,
    ) -> Error {
        let shard = tensor
            .as_deref()
            .and_then(|t| input.index().ok()?.get(t).map(|t| t.shard_id));
        Error::InputDamaged {
            path: input.path().to_path_buf(),
            tensor,
            shard,
            reason: reason.into(),
        }
    }

    /// [`Error::InputDamaged`] for `input` whose weight shard `shard` failed
    /// its TOC hash: the tensor holding the damaged bytes, with the offset
    /// and the hash that tells it, when a finer hash (`hash_b3`, PHSH pages)
    /// places the damage ([`crate::AeroFile::locate_damage`]); otherwise the
    /// shard alone, saying that no tensor can be named.
    pub fn shard_damaged(input: &crate::AeroFile, shard: &crate::Chunk) -> Error {
        match input.locate_damage(shard) {
            Some(Error::Corrupt {
                tensor,
                offset,
                check,
                ..
            }) => Error::input_damaged(
                input,
                Some(tensor),
                format!("bytes at file offset {offset} do not match {check} (corrupt)"),
            ),
            _ => Error::InputDamaged {
                path: input.path().to_path_buf(),
                tensor: None,
                shard: shard.shard_id(),
                reason: format!(
                    "{}: BLAKE3 mismatch (corrupt); no tensor's own hash_b3, nor a page \
                     hash over one tensor's bytes alone, fails, so the damaged bytes cannot \
                     be placed in one tensor",
                    shard.name
                ),
            },
        }
    }

    /// [`Error::input_damaged`] from a failed validation report: its first
    /// failing tensor and first error.
    pub fn input_damaged_by(input: &crate::AeroFile, report: &crate::Report) -> Error {
        let tensor = report
            .tensors
            .iter()
            .find(|t| t.status != "ok")
            .map(|t| t.name.clone());
        let reason = report.errors.first().cloned().unwrap_or_default();
        Error::input_damaged(input, tensor, reason)
    }

    /// Names the input file of an [`Error::Input`] that does not name one
    /// yet (the writer reads tensor sources, not files; a caller that opened
    /// the file knows it). Other errors are returned unchanged.
    pub fn in_input(self, input: &Path) -> Error {
        match self {
            Error::Input {
                path: None,
                tensor,
                source,
            } => Error::Input {
                path: Some(input.to_path_buf()),
                tensor,
                source,
            },
            e => e,
        }
    }

    /// Whether the error says a file's content is damaged or cannot be
    /// trusted (a failed hash, a malformed structure, bytes nothing
    /// verifies), as opposed to a usage or operating-system error. The CLI
    /// exits 1 for these and 2 for the others.
    pub fn is_invalid_data(&self) -> bool {
        match self {
            Error::Io { source, .. } | Error::Input { source, .. } => {
                source.kind() == std::io::ErrorKind::InvalidData
            }
            Error::Format { .. }
            | Error::Truncated { .. }
            | Error::NotAero { .. }
            | Error::Chunk { .. }
            | Error::HashMismatch { .. }
            | Error::MissingChunk { .. }
            | Error::Metadata { .. }
            | Error::Tensor { .. }
            | Error::Corrupt { .. }
            | Error::InputDamaged { .. }
            | Error::Unverifiable { .. } => true,
            Error::NoSuchTensor { .. }
            | Error::View { .. }
            | Error::Invalid(_)
            | Error::NoTensors
            | Error::BadTensor { .. }
            | Error::OptionOutOfRange { .. }
            | Error::LimitExceeded { .. }
            | Error::Cancelled { .. }
            | Error::SameFile { .. }
            | Error::NoSuchAttachedFile { .. }
            | Error::BadAttachedFile { .. }
            | Error::OutputIsInput { .. } => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// What is wrong with a tensor a writer was given ([`Error::BadTensor`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TensorProblem {
    /// The name is empty.
    EmptyName,
    /// The name is longer than the format allows.
    NameTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: u64,
    },
    /// Another tensor has the same name.
    DuplicateName,
    /// More dimensions than the format allows.
    RankTooHigh {
        /// The rank given.
        rank: usize,
        /// The limit.
        max: u64,
    },
    /// The element count or byte length overflows u64.
    ShapeOverflows {
        /// The shape given.
        shape: Vec<u64>,
    },
    /// The byte length given is not dtype size × element count.
    LengthMismatch {
        /// Element type.
        dtype: aero_format::DType,
        /// The shape.
        shape: Vec<u64>,
        /// dtype size × element count.
        expected: u64,
        /// The length given.
        given: u64,
    },
}

impl TensorProblem {
    fn describe(&self, tensor: &str) -> String {
        match self {
            TensorProblem::EmptyName => "a tensor has an empty name".into(),
            TensorProblem::NameTooLong { len, max } => format!(
                "tensor name of {len} bytes exceeds {max} bytes: '{}…'",
                tensor.chars().take(40).collect::<String>()
            ),
            TensorProblem::DuplicateName => format!("duplicate tensor name '{tensor}'"),
            TensorProblem::RankTooHigh { rank, max } => {
                format!("tensor '{tensor}': rank {rank} exceeds {max}")
            }
            TensorProblem::ShapeOverflows { shape } => {
                format!("tensor '{tensor}': shape {shape:?} overflows")
            }
            TensorProblem::LengthMismatch {
                dtype,
                shape,
                expected,
                given,
            } => format!(
                "tensor '{tensor}': {dtype} × shape {shape:?} is {expected} bytes but {given} bytes were given"
            ),
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
