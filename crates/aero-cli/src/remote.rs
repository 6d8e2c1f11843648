//! Paths or URLs: every read command accepts `http(s)://` URLs for `.aero`
//! files and AEROSET manifests, read with Range requests through a bounded,
//! verified disk cache; with the `s3` feature also `s3://`, `gs://` and
//! `az://` objects (credentials from the environment). Without the feature
//! such URLs are still recognised, and refused with an error that says so
//! instead of being taken for local paths.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use aero_io::AeroFile;
use aero_set::model::{CacheChoice, Found, RemoteSettings};
use aero_set::{AeroSet, Expect, Model, OpenOptions, SetError};
use clap::Args;

/// Options for remote reads, accepted by every command.
#[derive(Args, Debug, Clone, Default)]
pub struct RemoteArgs {
    /// Let a local AEROSET manifest name remote (http(s)://, s3://, gs://, az://) parts or a base_url.
    #[arg(long, global = true)]
    pub remote: bool,
    /// Cache directory for remote byte ranges [default: $AEROTENSOR_CACHE_DIR or ~/.cache/aerotensor].
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Do not read or write the remote range cache.
    #[arg(long, global = true, conflicts_with = "cache_dir")]
    pub no_cache: bool,
    /// Range requests in flight at once for remote reads (1-256) [default: $AEROTENSOR_REMOTE_JOBS or 16].
    #[arg(long, global = true, value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,
}

fn parse_jobs(v: &str) -> Result<usize, String> {
    aero_io::remote::parse_jobs(v)
}

/// The flags of the command being run (set again by every
/// `main_with_args`, which a process may call more than once).
static ARGS: RwLock<Option<RemoteArgs>> = RwLock::new(None);

pub fn init(a: RemoteArgs) {
    *ARGS.write().unwrap_or_else(|e| e.into_inner()) = Some(a);
}

fn args() -> RemoteArgs {
    ARGS.read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

/// Whether `--remote` was given.
pub fn allow_remote() -> bool {
    args().remote
}

/// Whether a command-line argument is a URL (any `scheme://`, so that an
/// unsupported scheme is refused by name rather than taken for a path).
pub fn is_url(p: &Path) -> bool {
    aero_set::model::Target::classify_str(p).is_some()
}

/// The remote settings the flags and environment give.
pub fn settings() -> RemoteSettings {
    let a = args();
    RemoteSettings {
        cache: if a.no_cache {
            CacheChoice::Off
        } else if let Some(d) = a.cache_dir {
            CacheChoice::Dir(d)
        } else {
            CacheChoice::Default
        },
        jobs: a.jobs,
    }
}

/// How the flags say to open what a command reads.
pub fn open_options(expect: Expect) -> OpenOptions {
    OpenOptions {
        expect,
        allow_remote_parts: allow_remote(),
        remote: settings(),
        ..OpenOptions::default()
    }
}

/// Opens a path or URL as a file or set ([`aero_set::Model::open`], the
/// opener the C ABI and Python use too). Input of the wrong kind is a
/// usage error whose message says which command reads it.
pub fn open(p: &Path, opts: &OpenOptions) -> anyhow::Result<Model> {
    Model::open(p, opts).map_err(with_hint)
}

/// Opens a `.aero` path or URL.
pub fn open_file(p: &Path) -> anyhow::Result<AeroFile> {
    open(p, &open_options(Expect::File))?
        .into_file()
        .map_err(with_hint)
}

/// Opens an AEROSET manifest (or its directory) by path or URL. Local
/// manifests may name URLs only with `--remote`.
pub fn open_set(p: &Path) -> anyhow::Result<AeroSet> {
    open(p, &open_options(Expect::Set))?
        .into_set()
        .map_err(with_hint)
}

/// Input of the wrong kind, with the commands that read it; any other
/// error as it is.
fn with_hint(e: SetError) -> anyhow::Error {
    let SetError::WrongKind { found, wanted, .. } = &e else {
        return e.into();
    };
    let hint = if found.is_foreign_model() {
        "convert it to AERO first (`aerotensor convert IN OUT.aero`); `inspect`, `list` and `diff` read it as it is".to_string()
    } else {
        match (found, wanted) {
            (Found::Aero, _) => "a single file: `inspect`, `list`, `extract` and `validate` read it".into(),
            (Found::AeroSet, _) => {
                "a set: `inspect-set`, `fetch-tensor`, `inspect`, `list`, `extract`, `validate` and the exporters read it".into()
            }
            _ => "AERO commands read `.aero` files and AEROSET manifests; `convert` reads safetensors, GGUF and Hugging Face folders".to_string(),
        }
    };
    anyhow::Error::new(WrongKind { source: e, hint })
}

/// Input of the wrong kind and the commands that read it. The library
/// error stays in the chain (a usage error: exit 2).
#[derive(Debug)]
pub struct WrongKind {
    source: SetError,
    hint: String,
}

impl std::fmt::Display for WrongKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; {}", self.source, self.hint)
    }
}

impl std::error::Error for WrongKind {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
