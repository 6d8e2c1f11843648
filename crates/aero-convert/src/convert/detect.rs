//! Recognising an input by its content, not only its name.

use std::io::Read;
use std::path::Path;

use crate::error::{ConvertError, Result};

/// What an input path holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// A single safetensors file.
    SafeTensors,
    /// A GGUF file.
    Gguf,
    /// An AERO file.
    Aero,
    /// A Hugging Face sharded checkpoint (`*.safetensors.index.json` or a directory holding one).
    ShardedSafeTensors,
    /// An AEROSET (`model.aeroset.json` or a directory holding one).
    AeroSet,
    /// A Hugging Face model folder: a directory holding `model.safetensors`
    /// or a `*.safetensors.index.json` (see [`crate::hf`]).
    HfFolder,
}

impl InputKind {
    /// What users call it: `safetensors`, `GGUF`, `AERO`, ...
    pub fn name(self) -> &'static str {
        match self {
            InputKind::SafeTensors => "safetensors",
            InputKind::Gguf => "GGUF",
            InputKind::Aero => "AERO",
            InputKind::ShardedSafeTensors => "sharded safetensors",
            InputKind::AeroSet => "AEROSET",
            InputKind::HfFolder => "Hugging Face model folder",
        }
    }
}

/// Looks at the first bytes of `path` (or, for a directory, the files in it).
pub fn detect(path: &Path) -> Result<InputKind> {
    let unknown = |reason: String| ConvertError::UnknownFormat {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| ConvertError::io(path, e))?;
    if meta.is_dir() {
        if path.join("model.aeroset.json").is_file() {
            return Ok(InputKind::AeroSet);
        }
        std::fs::read_dir(path).map_err(|e| ConvertError::io(path, e))?;
        if crate::hf::is_folder(path) {
            return Ok(InputKind::HfFolder);
        }
        return Err(unknown(
            "directory holds no model: neither model.aeroset.json (an AEROSET) nor model.safetensors or a *.safetensors.index.json (a Hugging Face model folder)".into(),
        ));
    }
    let mut head = [0u8; 16];
    let mut f = std::fs::File::open(path).map_err(|e| ConvertError::io(path, e))?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(ConvertError::io(path, e)),
        }
    }
    let head = &head[..n];
    if head.starts_with(b"AERO") {
        return Ok(InputKind::Aero);
    }
    if head.starts_with(b"GGUF") {
        return Ok(InputKind::Gguf);
    }
    if head.len() >= 9 && head[8] == b'{' {
        let len = u64::from_le_bytes(head[..8].try_into().unwrap_or_default());
        // A header longer than the file is still safetensors, truncated:
        // the converter says so (a damaged input, not an unknown one).
        if (2..1 << 32).contains(&len) {
            return Ok(InputKind::SafeTensors);
        }
    }
    let first = head.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first == Some(b'{') {
        // Bounded like every manifest read: a huge JSON file is not a
        // manifest and must not be read whole.
        let cap = aero_set::manifest::MAX_MANIFEST_LEN;
        if meta.len() > cap {
            return Err(unknown(format!(
                "a JSON file of {} bytes (manifests and indexes are at most {cap})",
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| ConvertError::io(path, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| unknown(format!("JSON: {e}")))?;
        if v.get("weight_map").is_some() {
            return Ok(InputKind::ShardedSafeTensors);
        }
        if v.pointer("/format/name").and_then(|x| x.as_str()) == Some("AEROSET") {
            return Ok(InputKind::AeroSet);
        }
        return Err(unknown(
            "JSON file is neither a safetensors index (weight_map) nor an AEROSET".into(),
        ));
    }
    Err(unknown(
        "not safetensors, GGUF, AERO or a recognised JSON index".into(),
    ))
}
