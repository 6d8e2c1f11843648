//! A safetensors or GGUF file read as a [`TensorSource`], as `convert`
//! would hold it in AERO: what `aerotensor diff model.safetensors
//! model.aero` compares, so that a conversion can be checked tensor by
//! tensor.
//!
//! The tensor index is the one the converter would write
//! ([`crate::safetensors::Input::tensor_infos`],
//! [`crate::gguf_convert::Input::tensor_infos`]): tensors in name order,
//! row-major shapes (GGUF's `ne` reversed), dtypes AERO has no code for kept
//! `packed` with their `quant_params` (`ggml_type`, `safetensors_dtype`).
//! Each entry's `data_off` is the absolute offset of its bytes in the file.
//!
//! Neither format records hashes, so there is nothing to verify a tensor's
//! bytes against: opening checks the header and that every tensor's range
//! lies inside the file (as the converters do), and
//! [`TensorSource::verified`] hands out the bytes as stored. The file has no
//! MJSN; [`TensorSource::meta`] is `None`.
//!
//! ```no_run
//! use aero_convert::diff::{diff, DiffOptions};
//! let st = aero_convert::foreign::ForeignFile::open("model.safetensors".as_ref())?;
//! let aero = aero_io::AeroFile::open("model.aero")?;
//! let r = diff(&st, &aero, &DiffOptions::default())?;
//! assert!(r.identical(), "the conversion changed something");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use aero_io::{ByteSource, TensorIndex, TensorView};
use serde_json::Value;

use crate::state_dict::{Result as SdResult, StateDictError, TensorSource};
use crate::{ConvertError, InputKind, Result, gguf_convert, safetensors};

/// The parsed file behind a [`ForeignFile`].
enum Parsed {
    SafeTensors(safetensors::Input),
    Gguf(gguf_convert::Input),
}

/// A safetensors or GGUF file as a [`TensorSource`] (see the module docs).
pub struct ForeignFile {
    path: PathBuf,
    kind: InputKind,
    parsed: Parsed,
    index: TensorIndex,
}

impl std::fmt::Debug for ForeignFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForeignFile")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("tensors", &self.index.len())
            .finish()
    }
}

impl ForeignFile {
    /// Opens a safetensors or GGUF file, recognised by its content
    /// ([`crate::detect`]). Another kind of input is
    /// [`ConvertError::Unsupported`] naming what it is; a file that is none
    /// of the known formats is [`ConvertError::UnknownFormat`]; a malformed
    /// header or a tensor range past the end is the format's error.
    pub fn open(path: &Path) -> Result<ForeignFile> {
        let kind = crate::detect(path)?;
        let parsed = match kind {
            InputKind::SafeTensors => Parsed::SafeTensors(safetensors::Input::open(path)?),
            InputKind::Gguf => Parsed::Gguf(gguf_convert::Input::open(path)?),
            other => {
                return Err(ConvertError::unsupported(
                    path,
                    None,
                    format!(
                        "is {} input; only a single safetensors or GGUF file is read this way",
                        other.name()
                    ),
                ));
            }
        };
        let tensors = match &parsed {
            Parsed::SafeTensors(i) => i.tensor_infos(),
            Parsed::Gguf(i) => i.tensor_infos()?,
        };
        Ok(ForeignFile {
            path: path.to_path_buf(),
            kind,
            parsed,
            index: TensorIndex::from_tensors(tensors),
        })
    }

    /// Which format the file is ([`InputKind::SafeTensors`] or
    /// [`InputKind::Gguf`]).
    pub fn kind(&self) -> InputKind {
        self.kind
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn source(&self) -> &aero_io::Source {
        match &self.parsed {
            Parsed::SafeTensors(i) => i.source(),
            Parsed::Gguf(i) => i.source(),
        }
    }
}

impl TensorSource for ForeignFile {
    fn tensor_index(&self) -> SdResult<&TensorIndex> {
        Ok(&self.index)
    }

    fn meta(&self) -> SdResult<Option<Value>> {
        Ok(None)
    }

    /// The tensor's bytes as stored: the format records no hash to check
    /// them against (see the module docs).
    fn verified(&self, name: &str) -> SdResult<TensorView<'_>> {
        let info = self
            .index
            .get(name)
            .ok_or_else(|| StateDictError::NotFound {
                name: name.to_owned(),
                suggestions: aero_io::names::nearest(
                    name,
                    self.index.tensors().iter().map(|t| &*t.name),
                ),
            })?;
        let bytes = self
            .source()
            .bytes(info.data_off, info.data_len)
            .map_err(|e| {
                StateDictError::Aero(aero_io::Error::Io {
                    path: self.path.clone(),
                    source: e,
                })
            })?;
        Ok(TensorView::from_unhashed(info, bytes))
    }

    fn local_files(&self) -> Vec<PathBuf> {
        vec![self.path.clone()]
    }
}
