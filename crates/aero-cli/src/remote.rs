//! Paths or URLs: every read command accepts `http(s)://` URLs for `.aero`
//! files and AEROSET manifests, read with Range requests through a bounded,
//! verified disk cache; with the `s3` feature also `s3://`, `gs://` and
//! `az://` objects (credentials from the environment). Without the feature
//! such URLs are still recognised, and refused with an error that says so
//! instead of being taken for local paths.

use std::path::{Path, PathBuf};

use aero_io::AeroFile;
use aero_set::model::{CacheChoice, Found, RemoteSettings};
use aero_set::{AeroSet, Expect, Model, OpenOptions, SetError};
use clap::Args;

/// Options for remote reads, accepted by every command.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct RemoteArgs {
    /// Let a local AEROSET manifest name remote (http(s)://, s3://, gs://, az://) parts or a base_url.
    #[arg(long, global = true)]
    pub(crate) remote: bool,
    /// Cache directory for remote byte ranges [default: $AEROTENSOR_CACHE_DIR or ~/.cache/aerotensor].
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Do not read or write the remote range cache.
    #[arg(long, global = true, conflicts_with = "cache_dir")]
    pub(crate) no_cache: bool,
    /// Range requests in flight at once for remote reads (1-256) [default: $AEROTENSOR_REMOTE_JOBS or 16].
    #[arg(long, global = true, value_name = "N", value_parser = parse_jobs)]
    pub(crate) jobs: Option<usize>,
}

fn parse_jobs(v: &str) -> Result<usize, String> {
    aero_io::remote::parse_jobs(v)
}

/// How the commands of one command line open what they are given: the
/// global flags, read once in [`crate::main_with_args`] and passed to every
/// handler that opens a path or URL (no process-wide state, so two calls in
/// one process each get their own flags).
#[derive(Clone, Debug, Default)]
pub(crate) struct Opener {
    /// `--remote`: a local manifest may name remote parts.
    allow_remote_parts: bool,
    /// `--cache-dir`, `--no-cache`, `--jobs`.
    settings: RemoteSettings,
}

impl From<RemoteArgs> for Opener {
    fn from(a: RemoteArgs) -> Self {
        Opener {
            allow_remote_parts: a.remote,
            settings: RemoteSettings {
                cache: if a.no_cache {
                    CacheChoice::Off
                } else if let Some(d) = a.cache_dir {
                    CacheChoice::Dir(d)
                } else {
                    CacheChoice::Default
                },
                jobs: a.jobs,
            },
        }
    }
}

impl Opener {
    /// Remote read options from the flags and environment, for the
    /// commands that open URLs themselves (`pull`, `push`). An invalid
    /// `AEROTENSOR_REMOTE_JOBS` is refused, naming it.
    pub(crate) fn options(&self) -> anyhow::Result<aero_io::remote::RemoteOptions> {
        Ok(self.settings.options()?)
    }

    /// The remote settings of the flags (`pull` picks its own default
    /// number of requests from them: `aero_set::pull::remote_options`).
    pub(crate) fn settings(&self) -> &RemoteSettings {
        &self.settings
    }

    /// How the flags say to open what a command reads.
    pub(crate) fn open_options(&self, expect: Expect) -> OpenOptions {
        OpenOptions {
            expect,
            allow_remote_parts: self.allow_remote_parts,
            remote: self.settings.clone(),
            ..OpenOptions::default()
        }
    }

    /// Opens a path or URL as a file or set ([`aero_set::Model::open`], the
    /// opener the C ABI and Python use too) with `opts` (from
    /// [`Opener::open_options`]). Input of the wrong kind is a usage error
    /// whose message says which command reads it.
    pub(crate) fn open_with(&self, p: &Path, opts: &OpenOptions) -> anyhow::Result<Model> {
        Model::open(p, opts).map_err(with_hint)
    }

    /// Opens a path or URL as a file or a set, whichever it is.
    pub(crate) fn open(&self, p: &Path) -> anyhow::Result<Model> {
        self.open_with(p, &self.open_options(Expect::Any))
    }

    /// Opens a `.aero` path or URL.
    pub(crate) fn open_file(&self, p: &Path) -> anyhow::Result<AeroFile> {
        self.open_with(p, &self.open_options(Expect::File))?
            .into_file()
            .map_err(with_hint)
    }

    /// Opens an AEROSET manifest (or its directory) by path or URL. Local
    /// manifests may name URLs only with `--remote`.
    pub(crate) fn open_set(&self, p: &Path) -> anyhow::Result<AeroSet> {
        self.open_with(p, &self.open_options(Expect::Set))?
            .into_set()
            .map_err(with_hint)
    }
}

/// Whether a command-line argument is a URL (any `scheme://`, so that an
/// unsupported scheme is refused by name rather than taken for a path).
pub(crate) fn is_url(p: &Path) -> bool {
    aero_set::model::Target::classify_str(p).is_some()
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
pub(crate) struct WrongKind {
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
