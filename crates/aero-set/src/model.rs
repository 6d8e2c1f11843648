//! One opener for every front end: a path or URL, an AERO file or an
//! AEROSET, under one set of trust and remote rules.
//!
//! The CLI, the C ABI and the Python package all open what a user names
//! through [`Model::open`]; a rule changed here changes for all three.
//!
//! - [`Target::classify`] decides what a string names without reading it
//!   (URLs by their syntax, [`aero_io::url::classify`]; a URL ending in
//!   `.json` or `/` is a set manifest) and, for a local path, by a bounded
//!   look at it ([`crate::is_set`]).
//! - A local manifest may name remote parts only with
//!   [`OpenOptions::allow_remote_parts`]; a remote manifest's parts are
//!   remote by nature.
//! - Input of the wrong kind is refused by what it is: a GGUF or safetensors
//!   file, an AERO file given where a set is wanted, a JSON file that is
//!   not a manifest ([`Found`], [`SetError::WrongKind`], a usage error and
//!   not damage), instead of the first parse error it would meet.
//!
//! ```no_run
//! use aero_set::model::{Expect, Model, OpenOptions};
//! let m = Model::open("model-dir", &OpenOptions::default())?;
//! let w = m.tensor("lm_head.weight")?; // verified
//! println!("{} bytes from {}", w.bytes().len(), m.label().display());
//! let Err(e) = Model::open("model.gguf", &OpenOptions { expect: Expect::Set, ..Default::default() })
//! else { unreachable!() };
//! assert!(!e.is_invalid_data());
//! # Ok::<(), aero_set::SetError>(())
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};

use aero_io::{AeroFile, TensorIndex, TensorInfo, TensorView};

pub use crate::error::{Expect, Found};
use crate::resolve::{LocalStorage, SetOptions};
use crate::{AeroSet, Result, SetError};

/// Where remote reads keep fetched ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CacheChoice {
    /// `$AEROTENSOR_CACHE_DIR`, else `~/.cache/aerotensor`.
    #[default]
    Default,
    /// This directory (bounded like the default one).
    Dir(PathBuf),
    /// No cache: every read goes to the network.
    Off,
}

/// How remote files are read, as every front end takes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteSettings {
    /// The range cache.
    pub cache: CacheChoice,
    /// Range requests in flight (1 to 256); `None`: `$AEROTENSOR_REMOTE_JOBS`,
    /// else the engine's default.
    pub jobs: Option<usize>,
}

impl RemoteSettings {
    /// The remote read options these settings make (the cache directory
    /// is created when missing). The error names the cache directory, or
    /// an invalid `AEROTENSOR_REMOTE_JOBS`.
    #[cfg(feature = "http")]
    pub fn options(&self) -> Result<aero_io::remote::RemoteOptions> {
        use aero_io::remote::RangeCache;
        let cache = match &self.cache {
            CacheChoice::Off => None,
            CacheChoice::Dir(d) => {
                let max = RangeCache::from_env().map_or(2048 << 20, |c| c.max_bytes());
                Some(RangeCache::new(d, max).map_err(|e| SetError::Io {
                    path: d.clone(),
                    source: e,
                })?)
            }
            CacheChoice::Default => Some(RangeCache::from_env().map_err(|e| SetError::Io {
                path: PathBuf::from("remote range cache"),
                source: e,
            })?),
        };
        let jobs = match self.jobs {
            Some(n) => n,
            None => aero_io::remote::jobs_from_env()
                .map_err(|e| SetError::Io {
                    path: PathBuf::from("environment"),
                    source: e,
                })?
                .unwrap_or(aero_io::remote::DEFAULT_JOBS),
        };
        Ok(aero_io::remote::RemoteOptions {
            cache,
            jobs,
            ..aero_io::remote::RemoteOptions::default()
        })
    }
}

/// How to open a target (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// What the caller accepts.
    pub expect: Expect,
    /// A local AEROSET manifest may name remote parts (`--remote`).
    pub allow_remote_parts: bool,
    /// Remote reads: range cache and requests in flight.
    pub remote: RemoteSettings,
    /// Hash every weight shard once at open (every part of a set); later
    /// verified reads of local files then cost nothing.
    pub verify_all: bool,
    /// For a set: parse and check the manifest only, and leave the index
    /// and parts to open on first use (validators report a damaged index
    /// instead of being refused by it).
    pub manifest_only: bool,
}

/// What a string names, decided without opening it (see
/// [`Target::classify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// A URL of a single file.
    FileUrl(&'a str),
    /// A URL of a set manifest (`….json`, or a directory URL ending in `/`).
    SetUrl(&'a str),
    /// A local AEROSET: a manifest or a directory holding one.
    LocalSet(&'a Path),
    /// Any other local path (a file, or something that is not there).
    LocalFile(&'a Path),
}

impl<'a> Target<'a> {
    /// Classifies `target`: any `scheme://` string is a URL (never a local
    /// path, so an unsupported scheme is refused by name rather than as a
    /// missing file); a local path is a set when [`crate::is_set`] says so.
    pub fn classify(target: &'a Path) -> Target<'a> {
        if let Some(url) = Self::classify_str(target) {
            return url;
        }
        if crate::is_set(target) {
            Target::LocalSet(target)
        } else {
            Target::LocalFile(target)
        }
    }

    /// The URL kinds only, without touching the file system: `None` for a
    /// local path.
    pub fn classify_str(target: &'a Path) -> Option<Target<'a>> {
        let s = target.to_str()?;
        aero_io::url::classify(s).is_url().then(|| {
            if s.ends_with(".json") || s.ends_with('/') {
                Target::SetUrl(s)
            } else {
                Target::FileUrl(s)
            }
        })
    }

    /// Whether it names a set.
    pub fn is_set(self) -> bool {
        matches!(self, Target::SetUrl(_) | Target::LocalSet(_))
    }

    /// Whether it is a URL.
    pub fn is_url(self) -> bool {
        matches!(self, Target::FileUrl(_) | Target::SetUrl(_))
    }
}

impl Found {
    /// Looks at `path` (at most 16 bytes are read).
    pub fn sniff(path: &Path) -> Found {
        if crate::is_set(path) {
            return Found::AeroSet;
        }
        if path.is_dir() {
            return Found::Directory;
        }
        let mut head = [0u8; 16];
        let mut n = 0;
        if let Ok(mut f) = std::fs::File::open(path) {
            while n < head.len() {
                match f.read(&mut head[n..]) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => n += k,
                }
            }
        }
        let head = &head[..n];
        if head.starts_with(b"AERO") {
            Found::Aero
        } else if head.starts_with(b"GGUF") {
            Found::Gguf
        } else if head.len() >= 9
            && head[8] == b'{'
            && (2..1 << 32).contains(&u64::from_le_bytes(
                head[..8].try_into().unwrap_or_default(),
            ))
        {
            Found::SafeTensors
        } else if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            Found::Json
        } else {
            Found::Other
        }
    }
}

/// An opened AERO file or AEROSET: what every front end reads tensors from.
pub enum Model {
    /// A single file (local or remote).
    File(Box<AeroFile>),
    /// A set (local or remote).
    Set(Box<AeroSet>),
}

impl Model {
    /// The file, or the error naming what it is instead.
    pub fn into_file(self) -> Result<AeroFile> {
        match self {
            Model::File(f) => Ok(*f),
            Model::Set(s) => Err(wrong(s.path(), Found::AeroSet, Expect::File)),
        }
    }

    /// The set, or the error naming what it is instead.
    pub fn into_set(self) -> Result<AeroSet> {
        match self {
            Model::Set(s) => Ok(*s),
            Model::File(f) => Err(wrong(f.path(), Found::Aero, Expect::Set)),
        }
    }

    /// Opens `target` as `opts` say (see the module docs). Errors name the
    /// target; input of the wrong kind is [`SetError::WrongKind`].
    pub fn open(target: impl AsRef<Path>, opts: &OpenOptions) -> Result<Model> {
        let target = target.as_ref();
        let t = Target::classify(target);
        match (opts.expect, t) {
            (Expect::File, Target::LocalSet(p)) => {
                return Err(wrong(p, Found::AeroSet, Expect::File));
            }
            (Expect::File, Target::SetUrl(u)) | (Expect::Set, Target::FileUrl(u)) => {
                // What a URL holds is known only once read; its name says
                // the other kind.
                let found = if t.is_set() {
                    Found::AeroSet
                } else {
                    Found::Aero
                };
                return Err(wrong(Path::new(u), found, opts.expect));
            }
            (Expect::Set, Target::LocalFile(p)) => {
                return Err(wrong(p, Found::sniff(p), Expect::Set));
            }
            _ => {}
        }
        let model = match t {
            Target::LocalFile(p) if p.is_dir() => {
                return Err(wrong(p, Found::Directory, opts.expect));
            }
            Target::LocalFile(p) => Model::File(Box::new(AeroFile::open(p).map_err(|e| {
                // Valid data of another kind is a usage error, not damage.
                match (&e, Found::sniff(p)) {
                    (aero_io::Error::NotAero { .. }, found) if found != Found::Other => {
                        wrong(p, found, opts.expect)
                    }
                    _ => SetError::Aero(e),
                }
            })?)),
            Target::LocalSet(p) => {
                let storage = remote_storage(opts, opts.allow_remote_parts)?;
                let set = AeroSet::load(
                    p,
                    &SetOptions {
                        allow_remote: opts.allow_remote_parts,
                    },
                    storage,
                )?;
                if !opts.manifest_only {
                    set.index()?;
                }
                Model::Set(Box::new(set))
            }
            Target::FileUrl(u) => Model::File(Box::new(open_file_url(u, opts)?)),
            Target::SetUrl(u) => Model::Set(Box::new(open_set_url(u, opts)?)),
        };
        if opts.verify_all {
            model.verify_all()?;
        }
        Ok(model)
    }

    /// The file or manifest (path or URL) named in errors.
    pub fn label(&self) -> &Path {
        match self {
            Model::File(f) => f.path(),
            Model::Set(s) => s.path(),
        }
    }

    /// The file, when it is one.
    pub fn as_file(&self) -> Option<&AeroFile> {
        match self {
            Model::File(f) => Some(f),
            Model::Set(_) => None,
        }
    }

    /// The set, when it is one.
    pub fn as_set(&self) -> Option<&AeroSet> {
        match self {
            Model::File(_) => None,
            Model::Set(s) => Some(s),
        }
    }

    /// The tensor index (the global one for a set).
    pub fn index(&self) -> Result<&TensorIndex> {
        Ok(match self {
            Model::File(f) => f.index()?,
            Model::Set(s) => s.index()?,
        })
    }

    /// A tensor's index entry (the global one for a set).
    pub fn info(&self, name: &str) -> Result<&TensorInfo> {
        Ok(match self {
            Model::File(f) => f.tensor_info(name)?,
            Model::Set(s) => s.locate(name)?.global,
        })
    }

    /// How the tensor index orders shapes ([`aero_io::ShapeOrder::of_meta`]
    /// of [`Model::meta_json`]; reference GGUF-origin files store GGUF order).
    pub fn shape_order(&self) -> Result<aero_io::ShapeOrder> {
        Ok(match self {
            Model::File(f) => f.shape_order(),
            Model::Set(_) => self
                .meta_json()?
                .as_ref()
                .map_or(aero_io::ShapeOrder::RowMajor, aero_io::ShapeOrder::of_meta),
        })
    }

    /// A tensor as every front end hands it out: its entry, its row-major
    /// shape and its own byte length, whatever order and padding the file
    /// stores ([`aero_io::ShapeOrder`]).
    pub fn described(&self, name: &str) -> Result<(&TensorInfo, Vec<u64>, u64)> {
        let info = self.info(name)?;
        let order = self.shape_order()?;
        Ok((info, info.row_major_shape(order), info.tensor_len(order)))
    }

    /// A tensor's verified bytes.
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>> {
        Ok(match self {
            Model::File(f) => f.tensor(name)?,
            Model::Set(s) => s.tensor(name)?,
        })
    }

    /// A tensor's bytes, not verified: only for callers that asked for
    /// unverified access explicitly.
    pub fn tensor_unverified(&self, name: &str) -> Result<TensorView<'_>> {
        Ok(match self {
            Model::File(f) => f.tensor_unverified(f.tensor_info(name)?)?,
            Model::Set(s) => {
                let (_, f, entry) = s.resolve_tensor(name)?;
                f.tensor_unverified(entry)?
            }
        })
    }

    /// The MJSN object (a set's index file's, else its first part's), if any.
    pub fn meta_json(&self) -> Result<Option<serde_json::Value>> {
        match self {
            Model::File(f) => Ok(f.meta_json()?),
            Model::Set(s) => {
                if let Some(m) = s.index_file()?.meta_json()? {
                    return Ok(Some(m));
                }
                match s.part_count() {
                    0 => Ok(None),
                    _ => Ok(s.part(0)?.meta_json()?),
                }
            }
        }
    }

    /// Hashes every weight shard once (every part of a set).
    pub fn verify_all(&self) -> Result<()> {
        match self {
            Model::File(f) => f.verify_all()?,
            Model::Set(s) => {
                for i in 0..s.part_count() {
                    s.part(i)?.verify_all()?;
                }
            }
        }
        Ok(())
    }

    /// The local files it reads (a file; a set's manifest, index and
    /// parts): an output must never be one of them.
    pub fn local_files(&self) -> Vec<PathBuf> {
        match self {
            Model::File(f) => f.local_path().map(Path::to_path_buf).into_iter().collect(),
            Model::Set(s) => s.local_files(),
        }
    }
}

fn wrong(path: &Path, found: Found, wanted: Expect) -> SetError {
    SetError::WrongKind {
        path: path.to_path_buf(),
        found,
        wanted,
    }
}

#[cfg(feature = "http")]
fn remote_storage(
    opts: &OpenOptions,
    remote: bool,
) -> Result<std::sync::Arc<dyn crate::PartStorage>> {
    if !remote {
        return Ok(std::sync::Arc::new(LocalStorage));
    }
    let options = opts.remote.options()?;
    Ok(std::sync::Arc::new(crate::remote::RemoteStorage {
        options,
    }))
}

#[cfg(not(feature = "http"))]
fn remote_storage(
    _opts: &OpenOptions,
    _remote: bool,
) -> Result<std::sync::Arc<dyn crate::PartStorage>> {
    Ok(std::sync::Arc::new(LocalStorage))
}

/// A URL no transport of this build reads, refused by name.
#[cfg(feature = "http")]
fn refuse_unsupported(url: &str) -> Result<()> {
    if aero_io::remote::can_open(url) {
        return Ok(());
    }
    Err(SetError::Unsupported {
        location: url.to_string(),
        reason: aero_io::remote::unsupported(url).1,
    })
}

#[cfg(feature = "http")]
fn open_file_url(url: &str, opts: &OpenOptions) -> Result<AeroFile> {
    refuse_unsupported(url)?;
    Ok(AeroFile::open_url(url, opts.remote.options()?)?)
}

#[cfg(feature = "http")]
fn open_set_url(url: &str, opts: &OpenOptions) -> Result<AeroSet> {
    refuse_unsupported(url)?;
    AeroSet::open_url(url, opts.remote.options()?)
}

#[cfg(not(feature = "http"))]
fn open_file_url(url: &str, _opts: &OpenOptions) -> Result<AeroFile> {
    Err(no_remote(url))
}

#[cfg(not(feature = "http"))]
fn open_set_url(url: &str, _opts: &OpenOptions) -> Result<AeroSet> {
    Err(no_remote(url))
}

#[cfg(not(feature = "http"))]
fn no_remote(url: &str) -> SetError {
    SetError::Unsupported {
        location: url.to_string(),
        reason: "this build reads local files only (built without the `http` feature)".into(),
    }
}
