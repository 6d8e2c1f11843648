//! Hugging Face sharded safetensors → AEROSET (spec §15).
//!
//! Input: a `*.safetensors.index.json` (`weight_map`: tensor → shard file,
//! optional `metadata`) or a directory holding exactly one. Every shard file
//! is parsed with [`crate::safetensors::Input`] (which checks offsets,
//! sizes and the header cap) and every tensor is streamed from that file's
//! mapping; nothing is loaded whole. Tensors are sorted by name over all
//! files, then written with [`aero_set::writer::write_set`].
//!
//! The index and the shard files must agree: every tensor of every shard file
//! is in `weight_map` under that file, every `weight_map` entry exists in
//! its file, and no tensor name occurs in two files. Shard file names must
//! stay inside the index's directory (same rules as AEROSET paths).
//!
//! Model name and architecture come from `metadata.model_name` /
//! `metadata.architecture`, else from a `config.json` beside the index
//! (defaults `converted-sharded` / `unknown`). Every
//! part's MJSN records `source_format: "safetensors"`, the index `metadata`
//! under `safetensors_index_metadata`, the shard files' `__metadata__` under
//! `safetensors_metadata` when all shard files carry the same one, and
//! `quant_descriptors` (numbered over the whole set) for dtypes kept packed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::safetensors::{DTYPE_PARAM, Input, METADATA_KEY};
use aero_io::DType;
use aero_io::write::TensorSpec;
use serde_json::{Map, Value, json};

use crate::{ConvertError, Result};

fn io_err(path: impl Into<PathBuf>, source: std::io::Error) -> ConvertError {
    ConvertError::io(path, source)
}
use aero_set::manifest::{MAX_MANIFEST_LEN, ModelInfo};
use aero_set::writer::{SetWriteOptions, SetWriteSummary, write_set_specs};

/// Default model name when the index metadata has none.
pub const DEFAULT_MODEL_NAME: &str = "converted-sharded";
/// MJSN key holding the index's `metadata` object (without `total_size`).
pub const INDEX_METADATA_KEY: &str = "safetensors_index_metadata";
/// Suffix of a Hugging Face sharded-checkpoint index.
pub const INDEX_SUFFIX: &str = ".safetensors.index.json";

/// Wraps every tensor reader (e.g. for a progress bar).
pub use crate::Progress;

/// An opened sharded checkpoint.
pub struct ShardedSafetensors {
    index_path: PathBuf,
    metadata: Map<String, Value>,
    files: Vec<(String, Input)>,
    tensor_count: usize,
    /// Model name and architecture from a `config.json` beside the index.
    config: (Option<String>, Option<String>),
    /// Model name and architecture given by the caller, over the above.
    pub identity: crate::Identity,
}

impl std::fmt::Debug for ShardedSafetensors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedSafetensors")
            .field("index", &self.index_path)
            .field("files", &self.files.len())
            .field("tensors", &self.tensor_count)
            .finish()
    }
}

/// Finds the index file: `path` itself, or the one `*.safetensors.index.json`
/// in a directory.
pub fn find_index(path: &Path) -> Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let rd = std::fs::read_dir(path).map_err(|e| io_err(path, e))?;
    let mut found: Vec<PathBuf> = Vec::new();
    for e in rd {
        let e = e.map_err(|e| io_err(path, e))?;
        if e.file_name().to_string_lossy().ends_with(INDEX_SUFFIX) && e.path().is_file() {
            found.push(e.path());
        }
    }
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(ConvertError::UnknownFormat {
            path: path.to_path_buf(),
            reason: format!("no *{INDEX_SUFFIX} in this directory"),
        }),
        _ => Err(ConvertError::UnknownFormat {
            path: path.to_path_buf(),
            reason: format!(
                "more than one *{INDEX_SUFFIX} ({}); name the one to convert",
                found
                    .iter()
                    .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

impl ShardedSafetensors {
    /// Opens an index (or a directory holding one) and every shard file it
    /// names, and checks that they agree.
    pub fn open(path: &Path) -> Result<ShardedSafetensors> {
        let index_path = find_index(path)?;
        let bad = |reason: String| ConvertError::SafeTensors {
            path: index_path.clone(),
            reason,
        };
        let meta = std::fs::metadata(&index_path).map_err(|e| io_err(&index_path, e))?;
        if meta.len() > MAX_MANIFEST_LEN {
            return Err(bad(format!(
                "index is larger than {MAX_MANIFEST_LEN} bytes"
            )));
        }
        let bytes = std::fs::read(&index_path).map_err(|e| io_err(&index_path, e))?;
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let root = v
            .as_object()
            .ok_or_else(|| bad("expected a JSON object".into()))?;
        let metadata = match root.get("metadata") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(bad("field `metadata`: expected an object".into())),
        };
        let wm = match root.get("weight_map") {
            Some(Value::Object(m)) => m,
            Some(_) => return Err(bad("field `weight_map`: expected an object".into())),
            None => return Err(bad("field `weight_map`: missing (required)".into())),
        };
        if wm.is_empty() {
            return Err(bad("field `weight_map`: is empty".into()));
        }
        let mut weight_map: BTreeMap<&str, &str> = BTreeMap::new();
        for (k, f) in wm {
            let f = f.as_str().ok_or_else(|| {
                bad(format!(
                    "field `weight_map[\"{k}\"]`: expected a file name string"
                ))
            })?;
            weight_map.insert(k, f);
        }
        let given_dir = match index_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = given_dir
            .canonicalize()
            .map_err(|e| io_err(&given_dir, e))?;
        let names: BTreeSet<&str> = weight_map.values().copied().collect();
        let mut files = Vec::with_capacity(names.len());
        for name in names {
            let tensor = weight_map
                .iter()
                .find(|(_, f)| **f == name)
                .map(|(t, _)| *t)
                .unwrap_or_default();
            let field = format!("weight_map[\"{tensor}\"]");
            if aero_set::resolve::check_lexical(&index_path, &field, name)? {
                return Err(bad(format!(
                    "field `{field}`: '{name}' is a URL; shard files must be local"
                )));
            }
            let canon = aero_set::resolve::inside(&index_path, &dir, &field, name)?;
            // Read from the checked canonical path; named in errors as the
            // user would write it (beside the index they gave).
            let shown = given_dir.join(name);
            let src = aero_io::LocalSource::open(&canon).map_err(|e| io_err(&shown, e))?;
            files.push((name.to_string(), Input::from_source(&shown, src)?));
        }

        // Agreement between weight_map and the files.
        let mut owner: HashMap<String, &str> = HashMap::new();
        for (fname, inp) in &files {
            for s in inp.specs(&|_| {})? {
                if let Some(other) = owner.insert(s.name.clone(), fname) {
                    return Err(bad(format!(
                        "tensor '{}' is in both {other} and {fname}",
                        s.name
                    )));
                }
                match weight_map.get(s.name.as_str()) {
                    Some(f) if *f == fname.as_str() => {}
                    Some(f) => {
                        return Err(bad(format!(
                            "tensor '{}' is in {fname} but weight_map maps it to {f}",
                            s.name
                        )));
                    }
                    None => {
                        return Err(bad(format!(
                            "tensor '{}' is in {fname} but not in weight_map",
                            s.name
                        )));
                    }
                }
            }
        }
        for (t, f) in &weight_map {
            if !owner.contains_key(*t) {
                return Err(bad(format!(
                    "weight_map lists tensor '{t}' in {f}, but that file has no such tensor"
                )));
            }
        }
        let tensor_count = owner.len();
        Ok(ShardedSafetensors {
            identity: crate::Identity::default(),
            config: crate::hf::config_identity(&given_dir),
            index_path,
            metadata,
            files,
            tensor_count,
        })
    }

    /// The index file.
    pub fn index_path(&self) -> &Path {
        &self.index_path
    }

    /// The index's `metadata` object (empty when absent).
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }

    /// Shard file names, sorted.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|(n, _)| n.as_str())
    }

    /// Each shard file's name (as the index writes it) and parsed input,
    /// sorted by name.
    pub fn inputs(&self) -> impl Iterator<Item = (&str, &Input)> {
        self.files.iter().map(|(n, i)| (n.as_str(), i))
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensor_count
    }

    /// Whether there are no tensors (never true for an opened input).
    pub fn is_empty(&self) -> bool {
        self.tensor_count == 0
    }

    /// Total tensor bytes.
    pub fn data_len(&self) -> u64 {
        self.files.iter().map(|(_, i)| i.data_len()).sum()
    }

    /// Model name and architecture: [`ShardedSafetensors::identity`], else
    /// the index metadata, else a
    /// `config.json` beside the index (`_name_or_path`; `architectures[0]`,
    /// else `model_type`), else `converted-sharded` / `unknown`.
    pub fn model(&self) -> ModelInfo {
        let get = |k: &str| {
            self.metadata
                .get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        ModelInfo {
            name: self
                .identity
                .model_name
                .clone()
                .or_else(|| get("model_name"))
                .or_else(|| self.config.0.clone())
                .unwrap_or_else(|| DEFAULT_MODEL_NAME.into()),
            architecture: self
                .identity
                .architecture
                .clone()
                .or_else(|| get("architecture"))
                .or_else(|| self.config.1.clone())
                .unwrap_or_else(|| "unknown".into()),
        }
    }

    /// Tensor specs over all files, sorted by name, with `quant_id`s numbered
    /// over the whole set; and the matching `quant_descriptors`.
    pub(crate) fn specs<'s>(
        &'s self,
        progress: &'s Progress<'s>,
    ) -> Result<(Vec<TensorSpec<'s>>, Vec<Value>)> {
        let mut all = Vec::with_capacity(self.tensor_count);
        for (_, inp) in &self.files {
            all.extend(inp.specs(progress)?);
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        let mut quant_names: Vec<String> = Vec::new();
        for s in &mut all {
            if s.dtype != DType::Packed {
                continue;
            }
            let qp = s
                .extras
                .iter()
                .find(|(k, _)| k == "quant_params")
                .and_then(|(_, v)| aero_io::meta::msgpack_to_json(v).ok());
            let Some(dn) = qp
                .as_ref()
                .and_then(|q| q.get(DTYPE_PARAM))
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                continue;
            };
            let id = match quant_names.iter().position(|q| *q == dn) {
                Some(i) => i,
                None => {
                    quant_names.push(dn);
                    quant_names.len() - 1
                }
            };
            let mut enc = Vec::new();
            aero_io::meta::json_to_msgpack(&json!(id), &mut enc);
            for (k, v) in &mut s.extras {
                if k == "quant_id" {
                    *v = enc.clone();
                }
            }
        }
        Ok((all, crate::safetensors::quant_descriptors(&quant_names)))
    }

    /// Writer options on top of `base`: model identity and MJSN extras.
    pub fn options(&self, base: &SetWriteOptions) -> SetWriteOptions {
        let mut o = base.clone();
        o.file = self.file_options(&base.file);
        o
    }

    /// [`ShardedSafetensors::options`] for one AERO file (or each part).
    pub fn file_options(
        &self,
        base: &aero_io::write::WriteOptions,
    ) -> aero_io::write::WriteOptions {
        let mut o = base.clone();
        let m = self.model();
        o.model_name = m.name;
        o.architecture = m.architecture;
        o.extra_meta
            .insert("source_format".into(), json!("safetensors"));
        // Every part records this, so it leaves out `total_size`: the sum
        // of the tensors' sizes (which the index already gives) changes with
        // any tensor added, removed or resized, and would change every part
        // of a revision written on the old plan (aero_set::plan).
        let mut meta = self.metadata.clone();
        meta.remove("total_size");
        if !meta.is_empty() {
            o.extra_meta
                .insert(INDEX_METADATA_KEY.into(), Value::Object(meta));
        }
        let mut metas = self.files.iter().map(|(_, i)| i.metadata());
        if let Some(Some(first)) = metas.next()
            && metas.all(|m| m == Some(first))
        {
            o.extra_meta
                .insert(METADATA_KEY.into(), Value::Object(first.clone()));
        }
        o
    }

    /// Converts to an AEROSET at `out`; `progress` is told of every byte streamed.
    pub fn write(
        &self,
        out: &Path,
        base: &SetWriteOptions,
        progress: &Progress<'_>,
    ) -> Result<SetWriteSummary> {
        let mut opts = self.options(base);
        let (specs, descriptors) = self.specs(progress)?;
        if !descriptors.is_empty() {
            opts.file
                .extra_meta
                .insert("quant_descriptors".into(), Value::Array(descriptors));
        }
        Ok(write_set_specs(out, specs, &opts)?)
    }
}

/// Converts a sharded checkpoint (index file or directory) to an AEROSET.
pub fn import(input: &Path, out: &Path, base: &SetWriteOptions) -> Result<SetWriteSummary> {
    ShardedSafetensors::open(input)?.write(out, base, &|_| {})
}
