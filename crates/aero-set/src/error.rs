use std::path::PathBuf;

/// Errors from reading, validating or writing AEROSETs.
///
/// Every variant names the file it concerns and, for manifest problems, the
/// JSON field (`parts[1].sha256`), so one line tells a user what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetError {
    /// An operating-system I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not JSON.
    #[error("{path}: not valid JSON: {reason}")]
    Json {
        /// The manifest.
        path: PathBuf,
        /// What the JSON parser said (free text: serde_json's diagnostic,
        /// for people; the variant is what a caller acts on).
        reason: String,
    },
    /// A manifest field is missing, has the wrong type or an invalid value.
    #[error("{path}: field `{field}`: {reason}")]
    Field {
        /// The manifest.
        path: PathBuf,
        /// The field, e.g. `parts[1].sha256`.
        field: String,
        /// What is wrong (free text: the variant and `field` say what to
        /// fix; callers do not branch on the detail).
        reason: String,
    },
    /// A file the manifest names (index, part, attached file) cannot be
    /// opened: missing, or denied. An operating-system error, not damage
    /// (the CLI's exit 2), naming the manifest field and the file.
    #[error("{path}: field `{field}`: cannot open '{}': {source}", file.display())]
    MissingFile {
        /// The manifest.
        path: PathBuf,
        /// The field naming the file, e.g. `parts[1].path`.
        field: String,
        /// The file as resolved.
        file: PathBuf,
        /// Why it cannot be opened.
        source: std::io::Error,
    },
    /// A path in the manifest would leave the set's directory.
    #[error("{path}: field `{field}`: path '{value}' {reason}")]
    UnsafePath {
        /// The manifest.
        path: PathBuf,
        /// The field holding the path.
        field: String,
        /// The path as written.
        value: String,
        /// Why it is refused (free text: every unsafe path is refused
        /// alike; the detail tells the author which rule it broke).
        reason: String,
    },
    /// A local manifest names a remote URL and remote access was not allowed.
    #[error(
        "{path}: field `{field}`: '{url}' is remote; a local AEROSET may only name remote parts when remote access is explicitly allowed"
    )]
    RemoteNotAllowed {
        /// The manifest.
        path: PathBuf,
        /// The field holding the URL.
        field: String,
        /// The URL.
        url: String,
    },
    /// The storage backend cannot open this kind of location.
    #[error("{location}: {reason}")]
    Unsupported {
        /// The location (path or URL).
        location: String,
        /// Why not (free text: which feature or backend is missing, for
        /// the person building or configuring the reader).
        reason: String,
    },
    /// Valid input of another kind than the caller accepts (a GGUF file
    /// where AERO is read, a single file where a set is wanted): a usage
    /// error, not damage ([`crate::model`]).
    #[error("{}: is {}, not {}", path.display(), found.describe(), wanted.describe())]
    WrongKind {
        /// The path or URL.
        path: PathBuf,
        /// What it is.
        found: Found,
        /// What the caller accepts.
        wanted: Expect,
    },
    /// A part or index file does not match what the manifest says about it.
    #[error("{path}: {reason}")]
    File {
        /// The part or index file.
        path: PathBuf,
        /// What is wrong (free text: a size or UUID disagreement; every
        /// such file is refused alike and the detail is for people).
        reason: String,
    },
    /// Reading an AERO file (index or part) failed.
    #[error(transparent)]
    Aero(#[from] aero_io::Error),
    /// A tensor cannot be located or its entries disagree.
    #[error("{set}: tensor '{name}': {reason}")]
    Tensor {
        /// The set manifest.
        set: PathBuf,
        /// Tensor name.
        name: String,
        /// What is wrong (free text: how the global index and the part
        /// disagree; the variant and `name` are what a caller acts on).
        reason: String,
    },
    /// The set holds no tensor of this name.
    #[error(
        "{set}: no tensor named '{name}'{}",
        aero_io::names::did_you_mean(suggestions)
    )]
    NoSuchTensor {
        /// The set manifest.
        set: PathBuf,
        /// The name asked for.
        name: String,
        /// The set's tensor names closest to `name`, best first
        /// ([`aero_io::names::nearest`]); empty when none is close.
        suggestions: Vec<String>,
    },
    /// The set has no attached file of this name (`files[].path`).
    #[error("{set}: no attached file named '{name}'")]
    NoSuchFile {
        /// The set manifest.
        set: PathBuf,
        /// The name asked for.
        name: String,
    },
    /// The set has no part of this index.
    #[error("{set}: no part {index}")]
    NoSuchPart {
        /// The set manifest.
        set: PathBuf,
        /// The index asked for.
        index: usize,
    },
    /// A writer option is out of range.
    #[error("{option} {value} is out of range")]
    OptionOutOfRange {
        /// The option (`max_part_shards`, `max_shard_bytes`).
        option: &'static str,
        /// The value given.
        value: u64,
    },
    /// A broken invariant of the writer's own plan (a shard claimed by two
    /// parts, a part written with other shards than planned). Free text:
    /// these are bugs in this crate, not conditions a caller handles; the
    /// message is for whoever fixes the code.
    #[error("{0}")]
    Invalid(String),
    /// A new revision cannot be written on the plan of an existing set
    /// ([`crate::writer::SetWriteOptions::like`]): the set's layout cannot
    /// be followed, or the options contradict it.
    #[error("{set}: {reason}")]
    Plan {
        /// The set whose plan was asked for (its manifest).
        set: PathBuf,
        /// Why (free text: which part or option; for people).
        reason: String,
    },
    /// The destination of a write cannot be used.
    #[error("{path}: {reason}")]
    Output {
        /// The destination directory.
        path: PathBuf,
        /// Why (free text: not empty, not a directory, ...; the writer
        /// refuses alike in every case).
        reason: String,
    },
}

impl SetError {
    /// Whether the error says the set's content is damaged or untrustworthy
    /// (see [`aero_io::Error::is_invalid_data`]); the CLI exits 1 for these.
    pub fn is_invalid_data(&self) -> bool {
        match self {
            SetError::Aero(e) => e.is_invalid_data(),
            SetError::Json { .. }
            | SetError::Field { .. }
            | SetError::UnsafePath { .. }
            | SetError::File { .. }
            | SetError::Tensor { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SetError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias.
pub type Result<T, E = SetError> = std::result::Result<T, E>;

/// What the caller accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Expect {
    /// An AERO file or an AEROSET, whichever the target is.
    #[default]
    Any,
    /// A single AERO file (a set's index file counts).
    File,
    /// An AEROSET (its manifest, or a directory holding one).
    Set,
}

impl Expect {
    /// What users call it.
    pub fn describe(self) -> &'static str {
        match self {
            Expect::Any => "an AERO file or AEROSET",
            Expect::File => "an AERO file",
            Expect::Set => "an AEROSET manifest (or a directory holding model.aeroset.json)",
        }
    }
}

/// What a local path holds, by a look at its first bytes (for the errors of
/// input of the wrong kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// An AERO file.
    Aero,
    /// An AEROSET manifest or a directory holding one.
    AeroSet,
    /// A GGUF file.
    Gguf,
    /// A safetensors file.
    SafeTensors,
    /// A JSON file that is not an AEROSET manifest (a
    /// `*.safetensors.index.json`, a config).
    Json,
    /// A directory without `model.aeroset.json`.
    Directory,
    /// Something else (or nothing readable).
    Other,
}

impl Found {
    /// What users call it (`"a GGUF file"`).
    pub fn describe(self) -> &'static str {
        match self {
            Found::Aero => "an AERO file",
            Found::AeroSet => "an AEROSET",
            Found::Gguf => "a GGUF file",
            Found::SafeTensors => "a safetensors file",
            Found::Json => "a JSON file that is not an AEROSET manifest",
            Found::Directory => "a directory without model.aeroset.json",
            Found::Other => "not an AERO file",
        }
    }

    /// Whether it is a model in a format other than AERO, which the
    /// converters read.
    pub fn is_foreign_model(self) -> bool {
        matches!(self, Found::Gguf | Found::SafeTensors)
    }
}
