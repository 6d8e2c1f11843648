//! Hugging Face model folders ⇄ AERO: a whole folder in one artifact, and
//! back (see `docs/CONVERSION.md`, "Hugging Face folders").
//!
//! **In** ([`Folder`]): a directory holding `model.safetensors`, or a
//! sharded checkpoint (`*.safetensors.index.json` + the shard files it
//! names), becomes one `.aero` file ([`Folder::write_file`]) or an AEROSET
//! ([`Folder::write_set`]). Model name and architecture come from
//! `config.json` (`_name_or_path`; `architectures[0]`, else `model_type`).
//! The folder's other files travel with the weights ([`Folder::files`]):
//! every regular file, in subdirectories too, except
//!
//! - the weight files themselves (the shard files; the index travels as an
//!   attached file, byte for byte);
//! - weights in other formats, recognised by extension
//!   ([`OTHER_WEIGHT_EXTENSIONS`]: `pytorch_model.bin`, `tf_model.h5`,
//!   `model.onnx`, other `*.safetensors`…), left out and listed
//!   ([`Folder::left_out`]);
//! - hidden directories (`.git`, `.cache`, …), left out and listed;
//! - anything that is not a regular file (a FIFO, a socket).
//!
//! A symbolic link is followed when its target stays inside the folder
//! and refused when it leaves it (a folder must not smuggle `~/.ssh/id_rsa`
//! into an artifact); a link to a directory is left out. A file over
//! [`aero_io::attached::MAX_FILE_LEN`], more than
//! [`aero_io::attached::MAX_FILES`] files, or a name that is not UTF-8 or
//! not a safe relative path is refused, naming the file.
//!
//! What export needs to give the folder back byte for byte is recorded
//! under [`LAYOUT_KEY`] (MJSN for a file, the manifest for a set):
//! `{"version": 1, "weights": [{"file", "header"}…], "index"?}` — every
//! weight file's name and its safetensors header exactly as stored (key
//! order, `__metadata__`, padding), and the name of the index file.
//!
//! **Out** ([`export`]): the attached files, verified, and the weights as
//! the recorded files (each tensor at the offset its header gives, verified
//! as it is copied) or, without a record, one canonical
//! `model.safetensors`. The folder is written into a temporary directory
//! beside `OUT_DIR` and renamed into place: nothing appears on failure.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use aero_io::attached::{AttachedData, AttachedFile, name_problem};
use aero_io::write::{TensorSpec, WriteOptions, WriteSummary};
use aero_io::{AeroFile, TensorInfo};
use aero_set::{AeroSet, SetWriteOptions, SetWriteSummary};
use serde_json::{Map, Value, json};

use crate::safetensors::{Input, StFile, export_dtype_name, write_st};
use crate::sharded::{INDEX_SUFFIX, ShardedSafetensors};
use crate::state_dict::TensorSource;
use crate::{ConvertError, Progress, Result};

/// MJSN key (single file) and manifest key (AEROSET) of the folder layout.
pub const LAYOUT_KEY: &str = "huggingface";
/// The weights file of an unsharded folder.
pub const SINGLE_WEIGHTS: &str = "model.safetensors";
/// Extensions of weight files in other formats (and pickled training
/// state): left out of the attached files. Compared case-insensitively.
pub const OTHER_WEIGHT_EXTENSIONS: [&str; 21] = [
    "aero",
    "bin",
    "pt",
    "pth",
    "ckpt",
    "h5",
    "hdf5",
    "keras",
    "msgpack",
    "ot",
    "onnx",
    "onnx_data",
    "gguf",
    "ggml",
    "safetensors",
    "pb",
    "tflite",
    "npz",
    "pkl",
    "pickle",
    "joblib",
];

/// The weights of a folder.
enum Weights {
    Single { name: String, input: Input },
    Sharded(ShardedSafetensors),
}

/// A file of the folder that does not travel with the weights, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftOut {
    /// Its relative path (`/`-separated).
    pub name: String,
    /// Why: `weights in another format`, `hidden directory`, ….
    pub reason: &'static str,
}

/// An opened Hugging Face model folder.
pub struct Folder {
    dir: PathBuf,
    weights: Weights,
    files: Vec<AttachedFile>,
    left_out: Vec<LeftOut>,
    config: Option<Map<String, Value>>,
    /// Overrides `config.json`'s model name and architecture
    /// (`--model-name`, `--architecture`).
    pub identity: crate::Identity,
}

impl std::fmt::Debug for Folder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Folder")
            .field("dir", &self.dir)
            .field("files", &self.files.len())
            .finish()
    }
}

/// Whether `dir` is a model folder: a directory holding `model.safetensors`
/// or a `*.safetensors.index.json`.
pub fn is_folder(dir: &Path) -> bool {
    dir.is_dir() && (dir.join(SINGLE_WEIGHTS).is_file() || !index_files(dir).is_empty())
}

/// The `*.safetensors.index.json` files directly in `dir`, sorted.
pub(crate) fn index_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(INDEX_SUFFIX))
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A folder problem: the folder cannot be taken as it is (exit 2).
fn folder_err(path: impl Into<PathBuf>, reason: impl Into<String>) -> ConvertError {
    ConvertError::Folder {
        path: path.into(),
        reason: reason.into(),
    }
}

/// `_name_or_path` shortened to its last component when it is a local path
/// (`/home/me/models/x` → `x`): a hub id (`org/name`) is kept whole.
fn model_name_of(v: &str) -> Option<String> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    let local = v.starts_with('/') || v.starts_with('.') || v.starts_with('~') || v.contains('\\');
    if local {
        let last = v.trim_end_matches(['/', '\\']).rsplit(['/', '\\']).next()?;
        return (!last.is_empty() && last != "." && last != "..").then(|| last.to_string());
    }
    Some(v.to_string())
}

/// `config.json` of `dir`, if there is one; malformed JSON is an error
/// naming it (it would be carried as it is, and `transformers` would fail
/// on it).
fn read_config(dir: &Path) -> Result<Option<Map<String, Value>>> {
    let p = dir.join("config.json");
    let meta = match std::fs::metadata(&p) {
        Ok(m) if m.is_file() => m,
        _ => return Ok(None),
    };
    if meta.len() > aero_set::manifest::MAX_MANIFEST_LEN {
        return Err(ConvertError::Json {
            path: p,
            reason: format!("{} bytes: too large for a model configuration", meta.len()),
        });
    }
    let bytes = std::fs::read(&p).map_err(|e| ConvertError::io(&p, e))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(_) => Err(ConvertError::Json {
            path: p,
            reason: "expected a JSON object".into(),
        }),
        Err(e) => Err(ConvertError::Json {
            path: p,
            reason: format!("not valid JSON: {e}"),
        }),
    }
}

/// Model name and architecture a `config.json` gives.
pub fn identity_from_config(config: &Map<String, Value>) -> (Option<String>, Option<String>) {
    let name = config
        .get("_name_or_path")
        .and_then(Value::as_str)
        .and_then(model_name_of);
    let arch = config
        .get("architectures")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .or_else(|| config.get("model_type").and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    (name, arch)
}

/// The identity `config.json` beside `dir` gives, ignoring a missing or
/// malformed one (for inputs that are not folders, e.g. an index file).
pub(crate) fn config_identity(dir: &Path) -> (Option<String>, Option<String>) {
    match read_config(dir) {
        Ok(Some(c)) => identity_from_config(&c),
        _ => (None, None),
    }
}

/// Walks the folder (see the module docs for the rule).
struct Walk<'a> {
    root: &'a Path,
    weights: &'a [String],
    files: Vec<AttachedFile>,
    left_out: Vec<LeftOut>,
}

impl Walk<'_> {
    fn dir(&mut self, at: &Path, prefix: &str, depth: usize) -> Result<()> {
        let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(at)
            .map_err(|e| ConvertError::io(at, e))?
            .collect::<std::io::Result<_>>()
            .map_err(|e| ConvertError::io(at, e))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                return Err(folder_err(
                    &path,
                    "the name is not UTF-8; an attached file is named by a UTF-8 path (rename it or move it out of the folder)",
                ));
            };
            let rel = format!("{prefix}{name}");
            let lmeta = std::fs::symlink_metadata(&path).map_err(|e| ConvertError::io(&path, e))?;
            let meta = if lmeta.file_type().is_symlink() {
                let target = path
                    .canonicalize()
                    .map_err(|e| ConvertError::io(&path, e))?;
                if !target.starts_with(self.root) {
                    return Err(folder_err(
                        &path,
                        format!(
                            "is a symbolic link to {}, outside the folder; refusing to carry it (copy the folder with `cp -rL`, or download it with `local_dir=`)",
                            target.display()
                        ),
                    ));
                }
                let m = std::fs::metadata(&target).map_err(|e| ConvertError::io(&path, e))?;
                if m.is_dir() {
                    self.left_out.push(LeftOut {
                        name: rel,
                        reason: "symbolic link to a directory",
                    });
                    continue;
                }
                m
            } else {
                lmeta
            };
            if meta.is_dir() {
                if name.starts_with('.') {
                    self.left_out.push(LeftOut {
                        name: format!("{rel}/"),
                        reason: "hidden directory",
                    });
                    continue;
                }
                if depth + 1 >= aero_io::attached::MAX_DEPTH {
                    return Err(folder_err(
                        &path,
                        format!(
                            "is nested more than {} levels deep",
                            aero_io::attached::MAX_DEPTH
                        ),
                    ));
                }
                self.dir(&path, &format!("{rel}/"), depth + 1)?;
                continue;
            }
            if !meta.is_file() {
                self.left_out.push(LeftOut {
                    name: rel,
                    reason: "not a regular file",
                });
                continue;
            }
            if self.weights.contains(&rel) {
                continue;
            }
            let ext = name
                .rsplit_once('.')
                .map(|(_, x)| x.to_ascii_lowercase())
                .unwrap_or_default();
            if OTHER_WEIGHT_EXTENSIONS.contains(&ext.as_str()) {
                self.left_out.push(LeftOut {
                    name: rel,
                    reason: "weights in another format",
                });
                continue;
            }
            if let Some(p) = name_problem(&rel) {
                return Err(folder_err(&path, format!("cannot be attached: {p}")));
            }
            if meta.len() > aero_io::attached::MAX_FILE_LEN {
                return Err(folder_err(
                    &path,
                    format!(
                        "{} bytes exceed the cap of {} bytes per attached file (move it out of the folder)",
                        meta.len(),
                        aero_io::attached::MAX_FILE_LEN
                    ),
                ));
            }
            if self.files.len() >= aero_io::attached::MAX_FILES {
                return Err(folder_err(
                    self.root,
                    format!(
                        "holds more than {} files to attach",
                        aero_io::attached::MAX_FILES
                    ),
                ));
            }
            self.files.push(AttachedFile {
                name: rel,
                data: AttachedData::Path {
                    path,
                    len: meta.len(),
                },
            });
        }
        Ok(())
    }
}

impl Folder {
    /// Opens a model folder: its weights (parsed and checked), its
    /// `config.json` and the list of files that travel with the weights.
    pub fn open(dir: &Path) -> Result<Folder> {
        let meta = std::fs::metadata(dir).map_err(|e| ConvertError::io(dir, e))?;
        if !meta.is_dir() {
            return Err(folder_err(dir, "is not a directory"));
        }
        let root = dir.canonicalize().map_err(|e| ConvertError::io(dir, e))?;
        let indexes = index_files(dir);
        let single = dir.join(SINGLE_WEIGHTS);
        let weights = match indexes.len() {
            0 if single.is_file() => {
                let canon = single
                    .canonicalize()
                    .map_err(|e| ConvertError::io(&single, e))?;
                if !canon.starts_with(&root) {
                    return Err(folder_err(
                        &single,
                        format!(
                            "is a symbolic link to {}, outside the folder; refusing to follow it (copy the folder with `cp -rL`)",
                            canon.display()
                        ),
                    ));
                }
                Weights::Single {
                    name: SINGLE_WEIGHTS.into(),
                    input: Input::from_source(&single, crate::open_source(&canon)?)?,
                }
            }
            0 => {
                let others: Vec<String> = std::fs::read_dir(dir)
                    .map(|rd| {
                        rd.flatten()
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .filter(|n| n.ends_with(".safetensors"))
                            .collect()
                    })
                    .unwrap_or_default();
                let hint = if others.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (it holds {}: convert such a file by naming it)",
                        others.join(", ")
                    )
                };
                return Err(ConvertError::UnknownFormat {
                    path: dir.to_path_buf(),
                    reason: format!(
                        "no model weights: a Hugging Face model folder holds {SINGLE_WEIGHTS} or a *{INDEX_SUFFIX} with its shards{hint}"
                    ),
                });
            }
            1 => {
                let canon = indexes[0]
                    .canonicalize()
                    .map_err(|e| ConvertError::io(&indexes[0], e))?;
                if !canon.starts_with(&root) {
                    return Err(folder_err(
                        &indexes[0],
                        format!(
                            "is a symbolic link to {}, outside the folder; refusing to follow it (copy the folder with `cp -rL`)",
                            canon.display()
                        ),
                    ));
                }
                Weights::Sharded(ShardedSafetensors::open(&indexes[0])?)
            }
            _ => {
                return Err(folder_err(
                    dir,
                    format!(
                        "holds more than one *{INDEX_SUFFIX}; convert the one you mean by naming it"
                    ),
                ));
            }
        };
        let weight_names: Vec<String> = match &weights {
            Weights::Single { name, .. } => vec![name.clone()],
            Weights::Sharded(s) => s.files().map(str::to_owned).collect(),
        };
        let config = read_config(dir)?;
        let mut walk = Walk {
            root: &root,
            weights: &weight_names,
            files: Vec::new(),
            left_out: Vec::new(),
        };
        walk.dir(dir, "", 0)?;
        aero_io::attached::check_files(&walk.files)?;
        Ok(Folder {
            dir: dir.to_path_buf(),
            weights,
            files: walk.files,
            left_out: walk.left_out,
            config,
            identity: crate::Identity::default(),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The files that travel with the weights, in path order.
    pub fn files(&self) -> &[AttachedFile] {
        &self.files
    }

    /// The folder's files that do not travel, and why.
    pub fn left_out(&self) -> &[LeftOut] {
        &self.left_out
    }

    /// Whether the weights are sharded (an index and its shard files).
    pub fn is_sharded(&self) -> bool {
        matches!(self.weights, Weights::Sharded(_))
    }

    /// The weight file names, sorted.
    pub fn weight_files(&self) -> Vec<&str> {
        match &self.weights {
            Weights::Single { name, .. } => vec![name.as_str()],
            Weights::Sharded(s) => s.files().collect(),
        }
    }

    /// Total tensor bytes.
    pub fn data_len(&self) -> u64 {
        match &self.weights {
            Weights::Single { input, .. } => input.data_len(),
            Weights::Sharded(s) => s.data_len(),
        }
    }

    /// Model name and architecture: the overrides, else `config.json`
    /// (`_name_or_path`; `architectures[0]`, else `model_type`), else the
    /// weights' own metadata, else the folder's name and `unknown`.
    pub fn identity(&self) -> (String, String) {
        let (cn, ca) = self
            .config
            .as_ref()
            .map(identity_from_config)
            .unwrap_or_default();
        let (mn, ma) = match &self.weights {
            Weights::Single { input, .. } => {
                let get = |k: &str| {
                    input
                        .metadata()
                        .and_then(|m| m.get(k))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                (get("model_name"), get("architecture"))
            }
            Weights::Sharded(s) => {
                let get = |k: &str| {
                    s.metadata()
                        .get(k)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                (get("model_name"), get("architecture"))
            }
        };
        let folder = self
            .dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()));
        (
            self.identity
                .model_name
                .clone()
                .or(cn)
                .or(mn)
                .or(folder)
                .unwrap_or_else(|| "converted".into()),
            self.identity
                .architecture
                .clone()
                .or(ca)
                .or(ma)
                .unwrap_or_else(|| "unknown".into()),
        )
    }

    /// The layout record ([`LAYOUT_KEY`]).
    pub fn layout(&self) -> Result<Value> {
        let mut weights = Vec::new();
        match &self.weights {
            Weights::Single { name, input } => {
                weights.push(json!({"file": name, "header": input.header_text()?}));
            }
            Weights::Sharded(s) => {
                for (name, input) in s.inputs() {
                    weights.push(json!({"file": name, "header": input.header_text()?}));
                }
            }
        }
        let mut m = Map::new();
        m.insert("version".into(), json!(1));
        m.insert("weights".into(), Value::Array(weights));
        if let Weights::Sharded(s) = &self.weights {
            let index = s
                .index_path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            m.insert("index".into(), json!(index));
        }
        Ok(Value::Object(m))
    }

    /// Every tensor (sorted by name) and the writer options for one file
    /// on top of `base`: identity, MJSN extras of the weights.
    fn specs_and_options<'s>(
        &'s self,
        base: &WriteOptions,
        progress: &'s Progress<'s>,
    ) -> Result<(Vec<TensorSpec<'s>>, WriteOptions)> {
        let (specs, mut opts) = match &self.weights {
            Weights::Single { input, .. } => {
                crate::ImportInput::check(input, base)?;
                (input.specs(progress)?, input.options(base))
            }
            Weights::Sharded(s) => {
                let (specs, descriptors) = s.specs(progress)?;
                let mut o = s.file_options(base);
                if !descriptors.is_empty() {
                    o.extra_meta
                        .insert("quant_descriptors".into(), Value::Array(descriptors));
                }
                (specs, o)
            }
        };
        let (name, arch) = self.identity();
        opts.model_name = name;
        opts.architecture = arch;
        Ok((specs, opts))
    }

    /// Writes the folder as one AERO file: the tensors, the attached files
    /// as `FILE` chunks and the layout in MJSN.
    pub fn write_file(
        &self,
        out: &Path,
        base: &WriteOptions,
        progress: &Progress<'_>,
    ) -> Result<WriteSummary> {
        let (specs, mut opts) = self.specs_and_options(base, progress)?;
        opts.extra_meta.insert(LAYOUT_KEY.into(), self.layout()?);
        opts.attached = self.files.clone();
        aero_io::write::write_model(out, specs, &opts).map_err(|e| e.in_input(&self.dir).into())
    }

    /// Writes the folder as an AEROSET: the tensors in parts, the attached
    /// files beside the manifest (listed in its `files`), the layout in the
    /// manifest.
    pub fn write_set(
        &self,
        out: &Path,
        base: &SetWriteOptions,
        progress: &Progress<'_>,
    ) -> Result<SetWriteSummary> {
        let (specs, file) = self.specs_and_options(&base.file, progress)?;
        let mut opts = base.clone();
        opts.file = file;
        opts.file.attached = self.files.clone();
        opts.manifest_extra
            .insert(LAYOUT_KEY.into(), self.layout()?);
        Ok(aero_set::write_set_specs(out, specs, &opts)?)
    }
}

// ------------------------------------------------------------------ export

/// An opened model to export: an AERO file or an AEROSET (local or remote).
pub trait ModelSource: TensorSource {
    /// The file or manifest, named in errors.
    fn label(&self) -> &Path;
    /// The attached files: name and size, in stored order.
    fn attached(&self) -> Result<Vec<(String, u64)>>;
    /// An attached file's bytes, verified (its TOC hash, or the manifest's
    /// SHA-256 and size).
    fn attached_bytes(&self, name: &str) -> Result<Cow<'_, [u8]>>;
    /// The folder layout recorded at import ([`LAYOUT_KEY`]), if any.
    fn layout(&self) -> Result<Option<Value>>;
    /// The AERO file holding a tensor and its entry there (with the hash to
    /// verify it against), for verified copies.
    fn copy_source(&self, name: &str) -> Result<(&AeroFile, Cow<'_, TensorInfo>)>;
}

use crate::state_dict::ModelInner;

impl ModelSource for AeroFile {
    fn label(&self) -> &Path {
        self.path()
    }
    fn attached(&self) -> Result<Vec<(String, u64)>> {
        Ok(self
            .attached_files()
            .iter()
            .map(|c| (c.name.clone(), c.ulen))
            .collect())
    }
    fn attached_bytes(&self, name: &str) -> Result<Cow<'_, [u8]>> {
        Ok(self.attached_file(name)?)
    }
    fn layout(&self) -> Result<Option<Value>> {
        Ok(self.meta_json()?.and_then(|m| m.get(LAYOUT_KEY).cloned()))
    }
    fn copy_source(&self, name: &str) -> Result<(&AeroFile, Cow<'_, TensorInfo>)> {
        let t = self.tensor_info(name)?;
        Ok((self, Cow::Borrowed(t)))
    }
}

impl ModelSource for AeroSet {
    fn label(&self) -> &Path {
        self.path()
    }
    fn attached(&self) -> Result<Vec<(String, u64)>> {
        Ok(self
            .manifest()
            .files
            .iter()
            .map(|f| (f.path.clone(), f.size_bytes))
            .collect())
    }
    fn attached_bytes(&self, name: &str) -> Result<Cow<'_, [u8]>> {
        Ok(Cow::Owned(self.attached_file(name)?))
    }
    fn layout(&self) -> Result<Option<Value>> {
        Ok(self.manifest().extra.get(LAYOUT_KEY).cloned())
    }
    fn copy_source(&self, name: &str) -> Result<(&AeroFile, Cow<'_, TensorInfo>)> {
        Ok(self.tensor_source(name)?)
    }
}

impl ModelSource for aero_set::Model {
    fn label(&self) -> &Path {
        aero_set::Model::label(self)
    }
    fn attached(&self) -> Result<Vec<(String, u64)>> {
        self.inner().attached()
    }
    fn attached_bytes(&self, name: &str) -> Result<Cow<'_, [u8]>> {
        self.inner().attached_bytes(name)
    }
    fn layout(&self) -> Result<Option<Value>> {
        self.inner().layout()
    }
    fn copy_source(&self, name: &str) -> Result<(&AeroFile, Cow<'_, TensorInfo>)> {
        self.inner().copy_source(name)
    }
}

/// What [`export`] wrote.
#[derive(Clone, Debug)]
pub struct Exported {
    /// The folder.
    pub dir: PathBuf,
    /// Every file written (relative path, bytes), attached files first.
    pub files: Vec<(String, u64)>,
    /// Whether the weights were written as the recorded original files
    /// (else as one canonical `model.safetensors`).
    pub original_layout: bool,
    /// Attached files not written: an index of sharded weights when the
    /// weights are written as one `model.safetensors`.
    pub skipped: Vec<String>,
}

/// One weight file to write: its name and contents plan.
struct Planned<'a> {
    name: String,
    st: StFile<'a>,
}

/// An error about the recorded layout: the input is inconsistent (exit 1).
fn layout_err(src: &dyn ModelSource, field: &str, reason: impl Into<String>) -> ConvertError {
    ConvertError::Layout {
        path: src.label().to_path_buf(),
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// The weight files of the recorded layout, checked against the tensors.
fn plan_recorded<'a>(src: &'a dyn ModelSource, layout: &Value) -> Result<Vec<Planned<'a>>> {
    let idx = src.tensor_index()?;
    if layout.get("version").and_then(Value::as_u64) != Some(1) {
        return Err(layout_err(
            src,
            "huggingface.version",
            format!(
                "expected 1, found {}",
                layout.get("version").unwrap_or(&Value::Null)
            ),
        ));
    }
    let weights = layout
        .get("weights")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| layout_err(src, "huggingface.weights", "expected a non-empty array"))?;
    let mut used: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(weights.len());
    for (wi, w) in weights.iter().enumerate() {
        let field = format!("huggingface.weights[{wi}]");
        let name = w
            .get("file")
            .and_then(Value::as_str)
            .ok_or_else(|| layout_err(src, &format!("{field}.file"), "expected a file name"))?;
        if let Some(p) = name_problem(name) {
            return Err(layout_err(src, &format!("{field}.file"), p));
        }
        let header = w
            .get("header")
            .and_then(Value::as_str)
            .ok_or_else(|| layout_err(src, &format!("{field}.header"), "expected a string"))?;
        let hfield = format!("{field}.header");
        let parsed: Map<String, Value> = serde_json::from_str(header)
            .map_err(|e| layout_err(src, &hfield, format!("not a JSON object: {e}")))?;
        let mut items = Vec::new();
        for (k, v) in &parsed {
            if k == "__metadata__" {
                continue;
            }
            let t = idx.get(k).ok_or_else(|| {
                layout_err(src, &hfield, format!("tensor '{k}' is not in the model"))
            })?;
            if !used.insert(k.clone()) {
                return Err(layout_err(
                    src,
                    &hfield,
                    format!("tensor '{k}' is listed twice"),
                ));
            }
            let dtype = export_dtype_name(src.label(), t)?;
            let (start, end) = match v
                .get("data_offsets")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
            {
                Some([a, b]) => (a.as_u64(), b.as_u64()),
                _ => (None, None),
            };
            let shape: Option<Vec<u64>> = v
                .get("shape")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(Value::as_u64).collect());
            let ok = v.get("dtype").and_then(Value::as_str) == Some(dtype.as_str())
                && shape.as_deref() == Some(t.shape.as_slice())
                && matches!((start, end), (Some(s), Some(e)) if e.checked_sub(s) == Some(t.data_len));
            if !ok {
                return Err(layout_err(
                    src,
                    &hfield,
                    format!(
                        "tensor '{k}' is {v} there but {dtype} {:?} of {} bytes in the model",
                        t.shape, t.data_len
                    ),
                ));
            }
            let (f, info) = src.copy_source(k)?;
            items.push((f, info, start.unwrap_or(0)));
        }
        // The data section: contiguous from 0, no overlaps, no gaps.
        let mut spans: Vec<(u64, u64)> =
            items.iter().map(|(_, t, s)| (*s, s + t.data_len)).collect();
        spans.sort_unstable();
        let mut at = 0u64;
        for (s, e) in &spans {
            if *s != at {
                return Err(layout_err(
                    src,
                    &hfield,
                    format!("tensor data is not contiguous at byte {at}"),
                ));
            }
            at = *e;
        }
        out.push(Planned {
            name: name.to_string(),
            st: StFile {
                header: header.as_bytes().to_vec(),
                items,
                data_len: at,
            },
        });
    }
    if let Some(t) = idx.tensors().iter().find(|t| !used.contains(&t.name)) {
        return Err(layout_err(
            src,
            "huggingface.weights",
            format!(
                "tensor '{}' is in the model but in none of the recorded files",
                t.name
            ),
        ));
    }
    Ok(out)
}

/// One canonical `model.safetensors` holding every tensor.
fn plan_canonical(src: &dyn ModelSource) -> Result<Planned<'_>> {
    let idx = src.tensor_index()?;
    let tensors: Vec<&TensorInfo> = idx.tensors().iter().collect();
    let order = src.shape_order()?;
    for t in &tensors {
        crate::safetensors::check_length(src.label(), t, order)?;
    }
    let meta = src.meta()?;
    let (header, offsets, data_len) = crate::safetensors::canonical_header(
        src.label(),
        &tensors,
        crate::safetensors::kept_metadata(meta.as_ref()),
        order,
    )?;
    let mut items = Vec::with_capacity(tensors.len());
    for (t, o) in tensors.iter().zip(offsets) {
        let (f, info) = src.copy_source(&t.name)?;
        items.push((f, info, o));
    }
    Ok(Planned {
        name: SINGLE_WEIGHTS.into(),
        st: StFile {
            header,
            items,
            data_len,
        },
    })
}

/// Writes a model back as a Hugging Face folder at `out_dir` (see the
/// module docs). `out_dir` must not exist yet or be an empty directory; it
/// appears complete or not at all. `opts` says whether tensor bytes are
/// verified (attached files always are) and whether the files are synced.
pub fn export(
    src: &dyn ModelSource,
    out_dir: &Path,
    opts: &aero_io::CopyOptions<'_>,
) -> Result<Exported> {
    let out_err = |reason: String| ConvertError::Output {
        path: out_dir.to_path_buf(),
        reason,
    };
    for p in src.local_files() {
        if let (Ok(a), Ok(b)) = (out_dir.canonicalize(), p.canonicalize())
            && (a == b || b.starts_with(&a))
        {
            return Err(out_err(format!(
                "holds the input {}; choose another directory",
                p.display()
            )));
        }
    }
    match std::fs::symlink_metadata(out_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ConvertError::io(out_dir, e)),
        Ok(m) if m.is_dir() && !m.file_type().is_symlink() => {
            let mut rd = std::fs::read_dir(out_dir).map_err(|e| ConvertError::io(out_dir, e))?;
            if rd.next().is_some() {
                return Err(out_err(
                    "exists and is not empty; export into a new or empty directory".into(),
                ));
            }
        }
        Ok(_) => {
            return Err(out_err(
                "exists and is not a directory; export into a new or empty directory".into(),
            ));
        }
    }

    // Plan everything (and check the record) before writing a byte.
    let layout = src.layout()?;
    let (weights, original) = match &layout {
        Some(l) => (plan_recorded(src, l)?, true),
        None => (vec![plan_canonical(src)?], false),
    };
    let mut attached = src.attached()?;
    let mut skipped = Vec::new();
    let index_name = layout
        .as_ref()
        .and_then(|l| l.get("index"))
        .and_then(Value::as_str);
    if !original {
        // An index would name shard files that are not written.
        attached.retain(|(n, _)| {
            let keep = !n.ends_with(INDEX_SUFFIX);
            if !keep {
                skipped.push(n.clone());
            }
            keep
        });
    }
    if let Some(i) = index_name
        && !attached.iter().any(|(n, _)| n == i)
    {
        return Err(layout_err(
            src,
            "huggingface.index",
            format!("the index file '{i}' is not among the attached files"),
        ));
    }
    for (n, _) in &attached {
        if let Some(p) = name_problem(n) {
            return Err(layout_err(
                src,
                "attached files",
                format!("'{}': {p}", n.escape_debug()),
            ));
        }
        if weights.iter().any(|w| &w.name == n) {
            return Err(layout_err(
                src,
                "attached files",
                format!("'{n}' is also the name of a weight file"),
            ));
        }
    }
    let names: Vec<AttachedFile> = attached
        .iter()
        .map(|(n, _)| AttachedFile {
            name: n.clone(),
            data: AttachedData::Bytes(std::sync::Arc::from(&b""[..])),
        })
        .chain(weights.iter().map(|w| AttachedFile {
            name: w.name.clone(),
            data: AttachedData::Bytes(std::sync::Arc::from(&b""[..])),
        }))
        .collect();
    // Unique names, no file that is also a directory of another.
    aero_io::attached::check_files(&names).map_err(|e| layout_err(src, "files", e.to_string()))?;

    let guard = aero_io::output::temp_dir(out_dir)?;
    let tmp = guard.path().to_path_buf();
    let mut written = Vec::new();
    let create = |rel: &str| -> Result<(PathBuf, std::fs::File)> {
        let p = tmp.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ConvertError::io(parent, e))?;
        }
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&p)
            .map_err(|e| ConvertError::io(out_dir.join(rel), e))?;
        Ok((p, f))
    };
    for (name, _) in &attached {
        let bytes = src.attached_bytes(name)?;
        let (_, mut f) = create(name)?;
        use std::io::Write;
        f.write_all(&bytes)
            .map_err(|e| ConvertError::io(out_dir.join(name), e))?;
        if opts.durable {
            f.sync_all()
                .map_err(|e| ConvertError::io(out_dir.join(name), e))?;
        }
        written.push((name.clone(), bytes.len() as u64));
    }
    for w in &weights {
        let (_, mut f) = create(&w.name)?;
        let shown = out_dir.join(&w.name);
        let n = write_st(&mut f, &shown, &w.st, opts)?;
        if opts.durable {
            f.sync_all().map_err(|e| ConvertError::io(&shown, e))?;
        }
        written.push((w.name.clone(), n));
    }
    // Into place: the destination is absent or an empty directory.
    if out_dir.is_dir() {
        std::fs::remove_dir(out_dir).map_err(|e| ConvertError::io(out_dir, e))?;
    }
    std::fs::rename(&tmp, out_dir).map_err(|e| ConvertError::io(out_dir, e))?;
    guard.disarm();
    if opts.durable
        && let Ok(d) = std::fs::File::open(aero_io::output::parent_dir(out_dir))
    {
        let _ = d.sync_all();
    }
    Ok(Exported {
        dir: out_dir.to_path_buf(),
        files: written,
        original_layout: original,
        skipped,
    })
}
