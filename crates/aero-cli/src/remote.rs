//! Paths or URLs: every read command accepts `http(s)://` URLs for `.aero`
//! files and AEROSET manifests, read with Range requests through a bounded,
//! verified disk cache; with the `s3` feature also `s3://`, `gs://` and
//! `az://` objects (credentials from the environment). Without the feature
//! such URLs are still recognised, and refused with an error that says so
//! instead of being taken for local paths.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use aero_io::AeroFile;
use aero_io::remote::{RangeCache, RemoteOptions};
use aero_set::AeroSet;
use anyhow::Context;
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

/// Whether a string is a URL (`scheme://…`, [`aero_io::url::classify`])
/// rather than a local path. URLs of schemes we do not read (or, for object
/// storage, read only with the `s3` feature) are routed to the URL openers
/// too, which refuse them with an error naming the accepted schemes, instead
/// of "no such file".
fn url_syntax(s: &str) -> bool {
    aero_io::url::classify(s).is_url()
}

/// Whether a command-line argument is a URL.
pub fn is_url(p: &Path) -> bool {
    p.to_str().is_some_and(url_syntax)
}

/// Whether a URL names an AEROSET manifest (`….json` or a directory URL).
pub fn is_set_url(p: &Path) -> bool {
    p.to_str()
        .is_some_and(|s| url_syntax(s) && (s.ends_with(".json") || s.ends_with('/')))
}

/// Remote options from the flags and environment.
pub fn options() -> anyhow::Result<RemoteOptions> {
    let a = args();
    let cache = if a.no_cache {
        None
    } else {
        let max = RangeCache::from_env()
            .map(|c| c.max_bytes())
            .unwrap_or(2048 << 20);
        Some(match &a.cache_dir {
            Some(d) => RangeCache::new(d, max)
                .with_context(|| format!("cache directory {}", d.display()))?,
            None => RangeCache::from_env()
                .context("remote range cache (use --no-cache to go without)")?,
        })
    };
    let jobs = match a.jobs {
        Some(n) => n,
        None => aero_io::remote::jobs_from_env()?.unwrap_or(aero_io::remote::DEFAULT_JOBS),
    };
    Ok(RemoteOptions {
        cache,
        jobs,
        ..RemoteOptions::default()
    })
}

/// Opens a `.aero` path or URL.
pub fn open_file(p: &Path) -> anyhow::Result<AeroFile> {
    match p.to_str().filter(|s| url_syntax(s)) {
        Some(url) => Ok(AeroFile::open_url(url, options()?)?),
        None => Ok(AeroFile::open(p)?),
    }
}

/// Opens an AEROSET manifest (or its directory) by path or URL. Local
/// manifests may name URLs only with `--remote`.
pub fn open_set(p: &Path) -> anyhow::Result<AeroSet> {
    match p.to_str().filter(|s| url_syntax(s)) {
        Some(url) => Ok(AeroSet::open_url(url, options()?)?),
        None if allow_remote() => Ok(AeroSet::open_with_remote(p, true, options()?)?),
        None => Ok(AeroSet::open(p)?),
    }
}
