//! `model.aeroset.json`: parsing (v0.1 and v0.2) and encoding (spec §13).
//!
//! Parsing walks the JSON by hand rather than through `serde` derives so that
//! every problem names the exact field (`parts[2].shards[0]`) and says what was
//! expected. Unknown keys are ignored at every level.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::{Result, SetError};

/// The file name of a set's JSON index.
pub const MANIFEST_NAME: &str = "model.aeroset.json";
/// Largest manifest accepted (64 MiB): a set of a million parts fits easily.
pub const MAX_MANIFEST_LEN: u64 = 64 << 20;
/// Largest number of parts accepted.
pub const MAX_PARTS: usize = 1_000_000;
/// The `format.version`s this crate reads.
pub const READ_VERSIONS: [[u64; 2]; 2] = [[0, 1], [0, 2]];
/// The `format.version` the writer writes…
pub const WRITE_VERSION: [u64; 2] = [0, 1];
/// …and the one it writes when given a `base_url` (spec §14).
pub const WRITE_VERSION_BASE_URL: [u64; 2] = [0, 2];

/// Model identity recorded in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    /// Model name.
    pub name: String,
    /// Architecture.
    pub architecture: String,
}

/// A file the manifest pins by size and SHA-256 (the index, or a part).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Path as written: relative to the set (or `base_url`), or a URL (v0.2).
    pub path: String,
    /// SHA-256 of the whole file.
    pub sha256: [u8; 32],
    /// Size of the whole file in bytes.
    pub size_bytes: u64,
}

/// One part: a standalone AERO file holding some of the set's shards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartEntry {
    /// Path, SHA-256 and size.
    pub file: FileEntry,
    /// Global shard ids stored in this part.
    pub shards: Vec<u64>,
}

/// v0.2 cache hints (advisory).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CacheHints {
    /// Whether the publisher allows caching fetched ranges.
    pub enabled: Option<bool>,
    /// Whether the publisher recommends caching.
    pub recommended: Option<bool>,
}

/// A parsed `model.aeroset.json`.
///
/// ```
/// let m = aero_set::SetManifest::parse(br#"{
///   "format": {"name": "AEROSET", "version": [0, 1]},
///   "model": {"name": "m", "architecture": "a"},
///   "parts": [{"path": "part-000.aero", "size_bytes": 10, "shards": [0],
///              "sha256": "0000000000000000000000000000000000000000000000000000000000000000"}],
///   "global_tidx": {"path": "index.aero", "size_bytes": 5,
///              "sha256": "0000000000000000000000000000000000000000000000000000000000000000"}
/// }"#, "model.aeroset.json".as_ref())?;
/// assert_eq!(m.part_for_shard(0), Some(0));
/// # Ok::<(), aero_set::SetError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetManifest {
    /// `format.version`: `[0, 1]` or `[0, 2]`.
    pub version: [u64; 2],
    /// `model`.
    pub model: ModelInfo,
    /// `parts`, in manifest order.
    pub parts: Vec<PartEntry>,
    /// `global_tidx`: the index file.
    pub global_tidx: FileEntry,
    /// `base_url` (v0.2): relative paths resolve as `base_url + "/" + path`.
    pub base_url: Option<String>,
    /// `cache` hints (v0.2).
    pub cache: Option<CacheHints>,
    /// `files`: files that travel with the weights (a model's
    /// `config.json`, its tokenizer), stored beside the manifest under
    /// these relative paths and pinned by size and SHA-256 (this project's
    /// extension; readers that do not know the key ignore it).
    pub files: Vec<FileEntry>,
    /// Top-level keys this crate does not interpret (e.g. `huggingface`,
    /// the folder layout `aero_convert::hf` records), in manifest order;
    /// written back after the standard keys.
    pub extra: Map<String, Value>,
    shard_part: HashMap<u64, usize>,
}

/// Top-level manifest keys this crate interprets.
const KNOWN_KEYS: [&str; 7] = [
    "format",
    "model",
    "parts",
    "global_tidx",
    "base_url",
    "cache",
    "files",
];

struct Ctx<'a> {
    path: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, field: &str, reason: impl Into<String>) -> SetError {
        SetError::Field {
            path: self.path.to_path_buf(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    fn obj<'v>(&self, v: &'v Value, field: &str) -> Result<&'v Map<String, Value>> {
        v.as_object()
            .ok_or_else(|| self.err(field, format!("expected an object, found {}", kind(v))))
    }

    fn get<'v>(&self, m: &'v Map<String, Value>, parent: &str, key: &str) -> Result<&'v Value> {
        m.get(key)
            .ok_or_else(|| self.err(&join(parent, key), "missing (required)"))
    }

    fn str<'v>(&self, m: &'v Map<String, Value>, parent: &str, key: &str) -> Result<&'v str> {
        let v = self.get(m, parent, key)?;
        v.as_str().ok_or_else(|| {
            self.err(
                &join(parent, key),
                format!("expected a string, found {}", kind(v)),
            )
        })
    }

    fn u64_value(&self, v: &Value, field: &str) -> Result<u64> {
        v.as_u64().ok_or_else(|| {
            let what = match v {
                Value::Number(n) if n.is_i64() => "a negative number".to_string(),
                Value::Number(_) => "a non-integer number".to_string(),
                other => kind(other),
            };
            self.err(
                field,
                format!("expected a non-negative integer, found {what}"),
            )
        })
    }

    fn u64(&self, m: &Map<String, Value>, parent: &str, key: &str) -> Result<u64> {
        let v = self.get(m, parent, key)?;
        self.u64_value(v, &join(parent, key))
    }

    fn sha(&self, m: &Map<String, Value>, parent: &str, key: &str) -> Result<[u8; 32]> {
        let s = self.str(m, parent, key)?;
        let field = join(parent, key);
        if s.len() != 64 {
            return Err(self.err(
                &field,
                format!("expected 64 hex digits, found {} characters", s.len()),
            ));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)
            .map_err(|_| self.err(&field, "not a hexadecimal SHA-256"))?;
        Ok(out)
    }

    fn file(&self, v: &Value, field: &str) -> Result<FileEntry> {
        let m = self.obj(v, field)?;
        let path = self.str(m, field, "path")?;
        if path.is_empty() {
            return Err(self.err(&join(field, "path"), "is empty"));
        }
        Ok(FileEntry {
            path: path.to_string(),
            sha256: self.sha(m, field, "sha256")?,
            size_bytes: self.u64(m, field, "size_bytes")?,
        })
    }

    fn opt_bool(&self, m: &Map<String, Value>, parent: &str, key: &str) -> Result<Option<bool>> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.err(
                &join(parent, key),
                format!("expected true or false, found {}", kind(v)),
            )),
        }
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.len() <= 40 => format!("the string \"{s}\""),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

impl SetManifest {
    /// Parses manifest bytes; `label` names the manifest in errors.
    pub fn parse(bytes: &[u8], label: &Path) -> Result<SetManifest> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| SetError::Json {
            path: label.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::from_value(&v, label)
    }

    /// Reads and parses a manifest file (at most [`MAX_MANIFEST_LEN`] bytes).
    pub fn load(path: &Path) -> Result<SetManifest> {
        use std::io::Read;
        let f = std::fs::File::open(path).map_err(|e| SetError::io(path, e))?;
        let mut bytes = Vec::new();
        f.take(MAX_MANIFEST_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| SetError::io(path, e))?;
        if bytes.len() as u64 > MAX_MANIFEST_LEN {
            return Err(SetError::File {
                path: path.to_path_buf(),
                reason: format!("manifest is larger than {MAX_MANIFEST_LEN} bytes"),
            });
        }
        Self::parse(&bytes, path)
    }

    /// Interprets an already-parsed JSON value.
    pub fn from_value(v: &Value, label: &Path) -> Result<SetManifest> {
        let c = Ctx { path: label };
        let root = c.obj(v, "(root)")?;

        let fmt = c.obj(c.get(root, "", "format")?, "format")?;
        let name = c.str(fmt, "format", "name")?;
        if name != "AEROSET" {
            return Err(c.err(
                "format.name",
                format!("expected \"AEROSET\", found \"{name}\""),
            ));
        }
        let ver = c.get(fmt, "format", "version")?;
        let arr = ver.as_array().ok_or_else(|| {
            c.err(
                "format.version",
                format!("expected [major, minor], found {}", kind(ver)),
            )
        })?;
        if arr.len() != 2 {
            return Err(c.err(
                "format.version",
                format!("expected [major, minor], found {} elements", arr.len()),
            ));
        }
        let version = [
            c.u64_value(&arr[0], "format.version[0]")?,
            c.u64_value(&arr[1], "format.version[1]")?,
        ];
        if !READ_VERSIONS.contains(&version) {
            return Err(c.err(
                "format.version",
                format!(
                    "unsupported AEROSET version {}.{} (this reader supports 0.1 and 0.2)",
                    version[0], version[1]
                ),
            ));
        }

        let model = c.obj(c.get(root, "", "model")?, "model")?;
        let model = ModelInfo {
            name: c.str(model, "model", "name")?.to_string(),
            architecture: c.str(model, "model", "architecture")?.to_string(),
        };

        let parts_v = c.get(root, "", "parts")?;
        let parts_a = parts_v.as_array().ok_or_else(|| {
            c.err(
                "parts",
                format!("expected an array, found {}", kind(parts_v)),
            )
        })?;
        if parts_a.is_empty() {
            return Err(c.err("parts", "is empty: a set needs at least one part"));
        }
        if parts_a.len() > MAX_PARTS {
            return Err(c.err(
                "parts",
                format!("{} parts exceed the limit of {MAX_PARTS}", parts_a.len()),
            ));
        }
        let mut parts = Vec::with_capacity(parts_a.len());
        let mut shard_part: HashMap<u64, usize> = HashMap::new();
        let mut paths: HashMap<String, usize> = HashMap::new();
        for (i, p) in parts_a.iter().enumerate() {
            let field = format!("parts[{i}]");
            let file = c.file(p, &field)?;
            let m = c.obj(p, &field)?;
            let sv = c.get(m, &field, "shards")?;
            let sa = sv.as_array().ok_or_else(|| {
                c.err(
                    &join(&field, "shards"),
                    format!("expected an array of shard ids, found {}", kind(sv)),
                )
            })?;
            let mut shards = Vec::with_capacity(sa.len());
            for (j, s) in sa.iter().enumerate() {
                let sf = format!("{field}.shards[{j}]");
                let id = c.u64_value(s, &sf)?;
                if let Some(&other) = shard_part.get(&id) {
                    let reason = if other == i {
                        format!("shard {id} is listed twice in this part")
                    } else {
                        format!("shard {id} is also claimed by parts[{other}]")
                    };
                    return Err(c.err(&sf, reason));
                }
                shard_part.insert(id, i);
                shards.push(id);
            }
            if let Some(&other) = paths.get(&file.path) {
                return Err(c.err(
                    &join(&field, "path"),
                    format!("'{}' is also the path of parts[{other}]", file.path),
                ));
            }
            paths.insert(file.path.clone(), i);
            parts.push(PartEntry { file, shards });
        }

        let global_tidx = c.file(c.get(root, "", "global_tidx")?, "global_tidx")?;
        if let Some(&i) = paths.get(global_tidx.path.as_str()) {
            return Err(c.err(
                "global_tidx.path",
                format!("'{}' is also the path of parts[{i}]", global_tidx.path),
            ));
        }

        let base_url = match root.get("base_url") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                if aero_io::url::classify(s) != aero_io::url::Kind::Http {
                    return Err(c.err(
                        "base_url",
                        format!("'{s}' is not an http:// or https:// URL"),
                    ));
                }
                Some(s.clone())
            }
            Some(v) => {
                return Err(c.err(
                    "base_url",
                    format!("expected a URL string, found {}", kind(v)),
                ));
            }
        };
        let cache = match root.get("cache") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let m = c.obj(v, "cache")?;
                Some(CacheHints {
                    enabled: c.opt_bool(m, "cache", "enabled")?,
                    recommended: c.opt_bool(m, "cache", "recommended")?,
                })
            }
        };

        let mut files = Vec::new();
        match root.get("files") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                if a.len() > aero_io::attached::MAX_FILES {
                    return Err(c.err(
                        "files",
                        format!(
                            "{} files exceed the limit of {}",
                            a.len(),
                            aero_io::attached::MAX_FILES
                        ),
                    ));
                }
                for (i, v) in a.iter().enumerate() {
                    let field = format!("files[{i}]");
                    let f = c.file(v, &field)?;
                    let pf = join(&field, "path");
                    if let Some(p) = aero_io::attached::name_problem(&f.path) {
                        return Err(c.err(&pf, format!("'{}': {p}", f.path.escape_debug())));
                    }
                    if f.path == MANIFEST_NAME || f.path == global_tidx.path {
                        return Err(c.err(&pf, format!("'{}' is a file of the set itself", f.path)));
                    }
                    if let Some(&j) = paths.get(&f.path) {
                        return Err(
                            c.err(&pf, format!("'{}' is also the path of parts[{j}]", f.path))
                        );
                    }
                    if let Some(j) = files.iter().position(|g: &FileEntry| g.path == f.path) {
                        return Err(c.err(&pf, format!("'{}' is also files[{j}]", f.path)));
                    }
                    files.push(f);
                }
            }
            Some(v) => {
                return Err(c.err(
                    "files",
                    format!("expected an array of files, found {}", kind(v)),
                ));
            }
        }
        let extra = root
            .iter()
            .filter(|(k, _)| !KNOWN_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();

        Ok(SetManifest {
            version,
            model,
            parts,
            global_tidx,
            base_url,
            cache,
            files,
            extra,
            shard_part,
        })
    }

    /// Builds a manifest from its parts (used by the writer). Fails when a
    /// shard id is claimed twice.
    pub fn new(
        version: [u64; 2],
        model: ModelInfo,
        parts: Vec<PartEntry>,
        global_tidx: FileEntry,
    ) -> Result<SetManifest> {
        let mut shard_part = HashMap::new();
        for (i, p) in parts.iter().enumerate() {
            for &s in &p.shards {
                if shard_part.insert(s, i).is_some() {
                    return Err(SetError::Invalid(format!(
                        "shard {s} is claimed by more than one part"
                    )));
                }
            }
        }
        Ok(SetManifest {
            version,
            model,
            parts,
            global_tidx,
            base_url: None,
            cache: None,
            files: Vec::new(),
            extra: Map::new(),
            shard_part,
        })
    }

    /// The index of the part whose `shards` contain `shard_id`.
    pub fn part_for_shard(&self, shard_id: u64) -> Option<usize> {
        self.shard_part.get(&shard_id).copied()
    }

    /// The manifest as JSON, keys in the reference's order.
    pub fn to_json(&self) -> Value {
        let file = |f: &FileEntry| json!({"path": f.path, "sha256": hex::encode(f.sha256), "size_bytes": f.size_bytes});
        let mut root = Map::new();
        root.insert(
            "format".into(),
            json!({"name": "AEROSET", "version": self.version}),
        );
        root.insert(
            "model".into(),
            json!({"name": self.model.name, "architecture": self.model.architecture}),
        );
        root.insert(
            "parts".into(),
            Value::Array(
                self.parts
                    .iter()
                    .map(|p| {
                        let mut v = file(&p.file);
                        v["shards"] = json!(p.shards);
                        v
                    })
                    .collect(),
            ),
        );
        root.insert("global_tidx".into(), file(&self.global_tidx));
        if let Some(b) = &self.base_url {
            root.insert("base_url".into(), json!(b));
        }
        if let Some(c) = &self.cache {
            let mut m = Map::new();
            if let Some(e) = c.enabled {
                m.insert("enabled".into(), json!(e));
            }
            if let Some(r) = c.recommended {
                m.insert("recommended".into(), json!(r));
            }
            root.insert("cache".into(), Value::Object(m));
        }
        if !self.files.is_empty() {
            root.insert(
                "files".into(),
                Value::Array(self.files.iter().map(file).collect()),
            );
        }
        for (k, v) in &self.extra {
            if !KNOWN_KEYS.contains(&k.as_str()) {
                root.insert(k.clone(), v.clone());
            }
        }
        Value::Object(root)
    }

    /// The manifest as the reference writes it: JSON indented by two spaces,
    /// no trailing newline.
    pub fn to_json_pretty(&self) -> String {
        // Serialising a `Value` cannot fail.
        serde_json::to_string_pretty(&self.to_json()).unwrap_or_default()
    }
}

/// `dir/model.aeroset.json` when `path` is a directory, else `path`.
pub fn manifest_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(MANIFEST_NAME)
    } else {
        path.to_path_buf()
    }
}
