use std::path::PathBuf;

/// Errors from converting between AERO and other formats.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// An OS error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing the AERO side failed.
    #[error(transparent)]
    Aero(#[from] aero_io::Error),
    /// The safetensors input is malformed.
    #[error("{path}: safetensors: {reason}")]
    SafeTensors {
        /// The file.
        path: PathBuf,
        /// What is wrong (the header JSON, an offset, a dtype). Free text:
        /// a caller refuses the file whatever it is; the variant says so.
        reason: String,
    },
    /// The GGUF input is malformed.
    #[error("{path}: {source}")]
    Gguf {
        /// The file.
        path: PathBuf,
        /// What the parser found.
        #[source]
        source: crate::gguf::GgufError,
    },
    /// The input cannot be represented in the target format (or with the
    /// options asked for: `--layout reference` for a GGUF input, a dtype
    /// the reference converter cannot write).
    #[error("{path}: {}{reason}", in_tensor(.tensor.as_deref()))]
    Unsupported {
        /// The file that cannot be converted (the input; for an export of
        /// values, the output being planned).
        path: PathBuf,
        /// The tensor concerned, when it is one tensor.
        tensor: Option<String>,
        /// What cannot be represented, and what to do instead. Free text:
        /// nothing branches on it beyond the variant.
        reason: String,
    },
    /// The input holds no tensors, so there is nothing to write.
    #[error("{path}: the {format} file holds no tensors")]
    NoTensors {
        /// The input.
        path: PathBuf,
        /// Its format ("GGUF", "safetensors").
        format: &'static str,
    },
    /// Reading or writing an AEROSET failed (a sharded checkpoint is
    /// written as one).
    #[error(transparent)]
    Set(#[from] aero_set::SetError),
    /// Reading a tensor as floats failed.
    #[error(transparent)]
    StateDict(#[from] crate::state_dict::StateDictError),
    /// A model folder cannot be taken as it is: a file over a size cap, a
    /// symbolic link leaving the folder, a name that cannot be attached,
    /// two weight indexes.
    #[error("{path}: {reason}")]
    Folder {
        /// The folder, or the file in it that is refused.
        path: PathBuf,
        /// What is wrong and what to do. Free text: the variant is what a
        /// caller acts on.
        reason: String,
    },
    /// A JSON file of the input (a model's `config.json`) is malformed.
    #[error("{path}: {reason}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's diagnostic. Free text, for people.
        reason: String,
    },
    /// The Hugging Face folder layout an AERO file or set records
    /// disagrees with its tensors or attached files (nothing was written).
    #[error("{path}: field `{field}`: {reason}")]
    Layout {
        /// The AERO file or set manifest.
        path: PathBuf,
        /// The field (`huggingface.weights[1].header`).
        field: String,
        /// What disagrees. Free text: the variant and `field` say what to
        /// look at.
        reason: String,
    },
    /// The destination of an export cannot be used (nothing was written).
    #[error("{path}: {reason}")]
    Output {
        /// The destination.
        path: PathBuf,
        /// Why not (not empty, not a directory). Free text.
        reason: String,
    },
    /// The output's name asks for something the command does not write (a
    /// `.gguf` output of `convert-safetensors`, a `.safetensors` output
    /// for a GGUF input of `convert`): a usage error, nothing was read
    /// beyond the input's first bytes.
    #[error("{output}: {reason}")]
    WrongOutput {
        /// The output as given (or as resolved into a directory).
        output: PathBuf,
        /// What it names, what the command writes, and the command to use.
        /// Free text, for the person; the variant is the branch.
        reason: String,
    },
    /// The input format could not be recognised.
    #[error("{path}: {reason}")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// What was seen instead (the first bytes, a directory without
        /// an index). Free text, for the person; the variant is the branch.
        reason: String,
    },
}

/// `"tensor 'NAME': "` for an error about one tensor.
fn in_tensor(tensor: Option<&str>) -> String {
    tensor
        .map(|t| format!("tensor '{t}': "))
        .unwrap_or_default()
}

impl ConvertError {
    /// Whether the error says an input's content is damaged (see
    /// [`aero_io::Error::is_invalid_data`]); the CLI exits 1 for these.
    pub fn is_invalid_data(&self) -> bool {
        match self {
            ConvertError::Aero(e) => e.is_invalid_data(),
            ConvertError::SafeTensors { .. }
            | ConvertError::Gguf { .. }
            | ConvertError::Json { .. }
            | ConvertError::Layout { .. } => true,
            ConvertError::StateDict(e) => e.is_invalid_data(),
            ConvertError::Set(e) => e.is_invalid_data(),
            _ => false,
        }
    }

    /// An [`ConvertError::Unsupported`] about `path` (and `tensor`).
    pub(crate) fn unsupported(
        path: impl Into<PathBuf>,
        tensor: Option<&str>,
        reason: impl Into<String>,
    ) -> Self {
        ConvertError::Unsupported {
            path: path.into(),
            tensor: tensor.map(str::to_owned),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ConvertError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias.
pub type Result<T, E = ConvertError> = std::result::Result<T, E>;
