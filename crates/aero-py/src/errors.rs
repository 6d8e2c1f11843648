//! Rust errors as Python exceptions that keep what the Rust errors name.
//!
//! The classes live in `aerotensor/_errors.py` (so they can inherit from
//! two bases: `TensorNotFoundError` is an `AeroError` and a `KeyError`);
//! each raised instance carries the attributes `kind`, `path`, `tensor`,
//! `chunk`, `field`, `offset` and `check` (None when they do not apply).
//! Operating-system errors stay `OSError`s (`FileNotFoundError`, …) with the
//! path in the message and in `filename`.

use pyo3::exceptions::{
    PyConnectionError, PyConnectionRefusedError, PyFileNotFoundError, PyOSError, PyPermissionError,
    PyRuntimeError, PyTimeoutError,
};
use pyo3::prelude::*;

/// Which Python class an error becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// `AeroError`: malformed, truncated, inconsistent, refused.
    Aero,
    /// `IntegrityError`: bytes failed (or cannot get) verification.
    Integrity,
    /// `TensorNotFoundError`: no tensor of that name.
    NotFound,
}

/// Everything an exception carries.
#[derive(Debug)]
pub(crate) struct Raised {
    pub class: Class,
    pub kind: &'static str,
    pub message: String,
    pub path: Option<String>,
    pub tensor: Option<String>,
    pub chunk: Option<String>,
    pub field: Option<String>,
    pub offset: Option<u64>,
    pub check: Option<String>,
}

impl Raised {
    pub(crate) fn new(class: Class, kind: &'static str, message: impl Into<String>) -> Raised {
        Raised {
            class,
            kind,
            message: message.into(),
            path: None,
            tensor: None,
            chunk: None,
            field: None,
            offset: None,
            check: None,
        }
    }

    fn path(mut self, p: &std::path::Path) -> Self {
        self.path = Some(p.display().to_string());
        self
    }

    /// Names the tensor.
    pub(crate) fn with_tensor(self, t: &str) -> Self {
        self.tensor(t)
    }

    fn tensor(mut self, t: &str) -> Self {
        self.tensor = Some(t.to_string());
        self
    }

    fn chunk(mut self, fourcc: aero_format::FourCc, name: &str) -> Self {
        self.chunk = Some(format!("{fourcc} '{name}'"));
        self
    }

    /// The Python exception.
    pub(crate) fn into_py(self, py: Python<'_>) -> PyErr {
        let class = match self.class {
            Class::Aero => "AeroError",
            Class::Integrity => "IntegrityError",
            Class::NotFound => "TensorNotFoundError",
        };
        let made = (|| -> PyResult<PyErr> {
            let cls = py.import("aerotensor._errors")?.getattr(class)?;
            let e = cls.call1((self.message.clone(),))?;
            e.setattr("kind", self.kind)?;
            e.setattr("path", self.path)?;
            e.setattr("tensor", self.tensor)?;
            e.setattr("chunk", self.chunk)?;
            e.setattr("field", self.field)?;
            e.setattr("offset", self.offset)?;
            e.setattr("check", self.check)?;
            Ok(PyErr::from_value(e))
        })();
        // Only if the package itself is broken (its Python half missing).
        made.unwrap_or_else(|_| PyRuntimeError::new_err(self.message))
    }
}

/// An error that becomes a Python exception.
pub(crate) enum Failure {
    Raised(Box<Raised>),
    Os {
        path: String,
        source: std::io::Error,
    },
    Py(PyErr),
}

impl Failure {
    pub(crate) fn aero(kind: &'static str, message: impl Into<String>) -> Failure {
        Failure::Raised(Box::new(Raised::new(Class::Aero, kind, message)))
    }

    pub(crate) fn into_py(self, py: Python<'_>) -> PyErr {
        match self {
            Failure::Raised(r) => r.into_py(py),
            Failure::Os { path, source } => os_error(&path, &source),
            Failure::Py(e) => e,
        }
    }
}

impl From<PyErr> for Failure {
    fn from(e: PyErr) -> Failure {
        Failure::Py(e)
    }
}

impl From<Raised> for Failure {
    fn from(r: Raised) -> Failure {
        Failure::Raised(Box::new(r))
    }
}

/// `OSError` with the right subclass, the path in the message and in
/// `filename`.
fn os_error(path: &str, e: &std::io::Error) -> PyErr {
    let msg = format!("{path}: {e}");
    if let Some(errno) = e.raw_os_error() {
        // OSError(errno, strerror, filename) picks the subclass itself.
        return PyOSError::new_err((errno, msg, path.to_string()));
    }
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => PyFileNotFoundError::new_err(msg),
        K::PermissionDenied => PyPermissionError::new_err(msg),
        K::ConnectionRefused => PyConnectionRefusedError::new_err(msg),
        K::ConnectionReset | K::ConnectionAborted | K::NotConnected => {
            PyConnectionError::new_err(msg)
        }
        K::TimedOut => PyTimeoutError::new_err(msg),
        _ => PyOSError::new_err(msg),
    }
}

impl From<aero_io::Error> for Failure {
    fn from(e: aero_io::Error) -> Failure {
        use aero_io::Error as E;
        let message = e.to_string();
        let r = |class, kind| Raised::new(class, kind, message.clone());
        let raised = match &e {
            E::Io { path, source } if source.kind() != std::io::ErrorKind::InvalidData => {
                return Failure::Os {
                    path: path.display().to_string(),
                    source: clone_io(source),
                };
            }
            E::Input {
                path,
                tensor,
                source,
            } if source.kind() != std::io::ErrorKind::InvalidData => {
                return Failure::Os {
                    path: match path {
                        Some(p) => format!("{} (tensor '{tensor}')", p.display()),
                        None => format!("the source of tensor '{tensor}'"),
                    },
                    source: clone_io(source),
                };
            }
            // Bytes from a remote source that failed a check there.
            E::Io { path, .. } => r(Class::Integrity, "io-invalid-data").path(path),
            E::Input {
                path: Some(path),
                tensor,
                ..
            } => r(Class::Integrity, "input").path(path).tensor(tensor),
            E::Input { tensor, .. } => r(Class::Integrity, "input").tensor(tensor),
            E::Format { path, source } => {
                let mut x = r(Class::Aero, "format").path(path);
                x.field = Some(source.field.as_str().to_string());
                x.offset = Some(source.offset);
                x
            }
            E::Truncated { path, what, .. } => {
                let mut x = r(Class::Aero, "truncated").path(path);
                x.field = Some(what.clone());
                x
            }
            E::NotAero { path, .. } => r(Class::Aero, "not-aero").path(path),
            E::Chunk {
                path, fourcc, name, ..
            } => r(Class::Aero, "chunk").path(path).chunk(*fourcc, name),
            E::HashMismatch {
                path, fourcc, name, ..
            } => {
                let mut x = r(Class::Integrity, "hash-mismatch")
                    .path(path)
                    .chunk(*fourcc, name);
                x.check = Some("chunk BLAKE3".into());
                x
            }
            E::MissingChunk { path, what } => {
                let mut x = r(Class::Aero, "missing-chunk").path(path);
                x.chunk = Some((*what).to_string());
                x
            }
            E::Metadata { path, chunk, .. } => {
                let mut x = r(Class::Aero, "metadata").path(path);
                x.chunk = Some((*chunk).to_string());
                x
            }
            E::Tensor { path, name, .. } => r(Class::Aero, "tensor").path(path).tensor(name),
            E::NoSuchTensor { path, name, .. } => {
                r(Class::NotFound, "no-such-tensor").path(path).tensor(name)
            }
            E::Corrupt {
                path,
                tensor,
                shard,
                offset,
                check,
            } => {
                let mut x = r(Class::Integrity, "corrupt").path(path).tensor(tensor);
                x.chunk = Some(shard.clone());
                x.offset = Some(*offset);
                x.check = Some(check.clone());
                x
            }
            E::Unverifiable {
                path,
                tensor,
                shard,
            } => {
                let mut x = r(Class::Integrity, "unverifiable")
                    .path(path)
                    .tensor(tensor);
                x.chunk = Some(shard.clone());
                x
            }
            E::View { name, .. } => r(Class::Aero, "view").tensor(name),
            E::InputDamaged { path, tensor, .. } => {
                let r = r(Class::Integrity, "input-damaged").path(path);
                match tensor {
                    Some(t) => r.tensor(t),
                    None => r,
                }
            }
            E::SameFile { output, .. } | E::OutputIsInput { output } => {
                r(Class::Aero, "output-is-input").path(output)
            }
            _ => r(Class::Aero, "invalid"),
        };
        raised.into()
    }
}

/// A copy of an I/O error that keeps its errno (local file errors have one)
/// or its kind and message.
fn clone_io(e: &std::io::Error) -> std::io::Error {
    match e.raw_os_error() {
        Some(n) => std::io::Error::from_raw_os_error(n),
        None => std::io::Error::new(e.kind(), e.to_string()),
    }
}

impl From<aero_set::SetError> for Failure {
    fn from(e: aero_set::SetError) -> Failure {
        use aero_set::SetError as S;
        let message = e.to_string();
        let r = |class, kind| Raised::new(class, kind, message.clone());
        let raised = match e {
            S::Aero(inner) => return inner.into(),
            S::Io { path, source } if source.kind() != std::io::ErrorKind::InvalidData => {
                return Failure::Os {
                    path: path.display().to_string(),
                    source,
                };
            }
            S::Io { path, .. } => r(Class::Integrity, "io-invalid-data").path(&path),
            S::MissingFile { file, source, .. } => {
                return Failure::Os {
                    path: file.display().to_string(),
                    source,
                };
            }
            S::Json { path, .. } => r(Class::Aero, "manifest-json").path(&path),
            S::Field { path, field, .. } | S::RemoteNotAllowed { path, field, .. } => {
                let mut x = r(Class::Aero, "manifest-field").path(&path);
                x.field = Some(field);
                x
            }
            S::UnsafePath { path, field, .. } => {
                let mut x = r(Class::Aero, "unsafe-path").path(&path);
                x.field = Some(field);
                x
            }
            S::File { path, .. } => r(Class::Integrity, "set-file").path(&path),
            S::Tensor { set, name, .. } => {
                r(Class::Integrity, "set-tensor").path(&set).tensor(&name)
            }
            S::Plan { set, .. } => r(Class::Aero, "set-plan").path(&set),
            S::WrongKind { path, .. } => r(Class::Aero, "wrong-kind").path(&path),
            S::NoSuchTensor { set, name, .. } => r(Class::NotFound, "no-such-tensor")
                .path(&set)
                .tensor(&name),
            _ => r(Class::Aero, "set"),
        };
        raised.into()
    }
}

impl From<aero_convert::ConvertError> for Failure {
    fn from(e: aero_convert::ConvertError) -> Failure {
        use aero_convert::ConvertError as C;
        let message = e.to_string();
        match e {
            C::Aero(inner) => inner.into(),
            C::Set(inner) => inner.into(),
            C::Io { path, source } => Failure::Os {
                path: path.display().to_string(),
                source,
            },
            C::SafeTensors { path, .. } | C::Gguf { path, .. } => {
                Raised::new(Class::Aero, "input-format", message)
                    .path(&path)
                    .into()
            }
            C::UnknownFormat { path, .. } => Raised::new(Class::Aero, "unknown-format", message)
                .path(&path)
                .into(),
            C::Unsupported { path, tensor, .. } => {
                let r = Raised::new(Class::Aero, "unsupported", message).path(&path);
                match tensor {
                    Some(t) => r.tensor(&t).into(),
                    None => r.into(),
                }
            }
            // The output's name asks for what the call does not write: a
            // wrong argument, not a damaged or unsupported input.
            C::WrongOutput { .. } => Failure::Py(pyo3::exceptions::PyValueError::new_err(message)),
            C::NoTensors { path, .. } => Raised::new(Class::Aero, "no-tensors", message)
                .path(&path)
                .into(),
            _ => Raised::new(Class::Aero, "unsupported", message).into(),
        }
    }
}

impl From<aero_quant::QuantError> for Failure {
    fn from(e: aero_quant::QuantError) -> Failure {
        Failure::aero("dequantize", e.to_string())
    }
}

/// A `Result` whose error becomes a Python exception.
pub(crate) type Res<T> = Result<T, Failure>;

/// Converts a [`Res`] into a `PyResult`.
pub(crate) trait IntoPyResult<T> {
    fn py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Res<T> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| e.into_py(py))
    }
}
