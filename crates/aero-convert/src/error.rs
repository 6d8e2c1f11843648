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
        /// What is wrong.
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
    /// The input cannot be represented in the target format.
    #[error("{0}")]
    Unsupported(String),
    /// Reading a tensor as floats failed.
    #[error(transparent)]
    StateDict(#[from] crate::state_dict::StateDictError),
    /// The input format could not be recognised.
    #[error("{path}: {reason}")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl ConvertError {
    /// Whether the error says an input's content is damaged (see
    /// [`aero_io::Error::is_invalid_data`]); the CLI exits 1 for these.
    pub fn is_invalid_data(&self) -> bool {
        match self {
            ConvertError::Aero(e) => e.is_invalid_data(),
            ConvertError::SafeTensors { .. } | ConvertError::Gguf { .. } => true,
            ConvertError::StateDict(e) => e.is_invalid_data(),
            _ => false,
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
