//! Publishing a local `.aero` file or AEROSET to object storage (`s3://`,
//! `gs://`, `az://`) through `object_store`
//! ([`aero_io::remote::put_object`]).
//!
//! A set goes up index, parts and attached files first, the manifest last,
//! so a reader that finds the manifest finds every file it names. Each file
//! is hashed before it is sent and must match the manifest (a damaged local
//! set is never published); its SHA-256 is recorded in the object's
//! metadata ([`aero_io::remote::SHA256_METADATA`]). A file already at the
//! destination with the same size and SHA-256 (from that metadata, or else
//! by reading the object back) is skipped. `base_url` rewrites the uploaded
//! manifest's `base_url` (format version `[0, 2]`), so readers fetch the
//! parts from a CDN in front of the bucket.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use aero_io::ByteSource;
use aero_io::remote::{RemoteOptions, head_object, open_source, put_object};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Result, SetError};
use crate::manifest::{MANIFEST_NAME, SetManifest, WRITE_VERSION_BASE_URL};

/// What [`push`] reports as it goes.
#[derive(Clone, Copy, Debug)]
pub enum PushEvent {
    /// Bytes to upload at most (every file).
    Plan(u64),
    /// This many bytes were sent, or found already present.
    Done(u64),
}

/// Options of [`push`].
pub struct PushOptions<'a> {
    /// Timeouts and retries of the object-store client.
    pub remote: RemoteOptions,
    /// Rewrites the uploaded manifest's `base_url` (an `http(s)://` URL).
    pub base_url: Option<String>,
    /// Called with progress.
    pub progress: &'a (dyn Fn(PushEvent) + Sync),
}

/// One file of a push.
#[derive(Clone, Debug, Serialize)]
pub struct PushedFile {
    /// Its path relative to the destination.
    pub path: String,
    /// Its URL.
    pub url: String,
    /// Its size.
    #[serde(rename = "size")]
    pub size_bytes: u64,
    /// `uploaded` or `skipped` (already there with the same SHA-256).
    pub state: &'static str,
}

/// What [`push`] did.
#[derive(Clone, Debug, Serialize)]
pub struct PushSummary {
    /// The local file or set.
    #[serde(rename = "input")]
    pub source: PathBuf,
    /// The URL a reader opens (the manifest's, for a set).
    #[serde(rename = "output")]
    pub url: String,
    /// `set` or `file`.
    #[serde(rename = "format", serialize_with = "crate::pull::format_name")]
    pub kind: &'static str,
    /// Every file in upload order (the manifest last).
    pub files: Vec<PushedFile>,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// Bytes already present and skipped.
    pub bytes_skipped: u64,
}

/// Uploads `src` (an AEROSET directory or manifest, or a single file) to
/// `dest` (for a set: the URL of its directory, or of the manifest to
/// write; for a file: its object URL, or a URL ending in `/` to which its
/// name is added). See the module docs.
pub fn push(src: &Path, dest: &str, opts: &PushOptions<'_>) -> Result<PushSummary> {
    if crate::is_set(src) {
        push_set(src, dest, opts)
    } else {
        push_lone(src, dest, opts)
    }
}

fn sha_of(path: &Path) -> Result<[u8; 32]> {
    let mut f = File::open(path).map_err(|e| SetError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| SetError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// Whether `url` already holds `size` bytes with SHA-256 `sha`.
fn present(url: &str, size: u64, sha: &[u8; 32], opts: &RemoteOptions) -> Result<bool> {
    let io = |e| SetError::io(url, e);
    let Some(head) = head_object(url, opts).map_err(io)? else {
        return Ok(false);
    };
    if head.size != size {
        return Ok(false);
    }
    if let Some(s) = head.sha256 {
        return Ok(s.eq_ignore_ascii_case(&hex::encode(sha)));
    }
    // No recorded hash: read it back (in parallel ranges) and compare.
    let mut o = opts.clone();
    o.cache = None;
    let src = open_source(url, o).map_err(io)?;
    let mut h = Sha256::new();
    src.stream_ranges(&[(0, src.len())], &mut |_, b| {
        h.update(b);
        Ok(())
    })
    .map_err(io)?;
    Ok(<[u8; 32]>::from(h.finalize()) == *sha)
}

/// Uploads one file unless present; checks it against `want` first.
fn send(
    path: &Path,
    url: &str,
    rel: &str,
    want: Option<([u8; 32], u64)>,
    opts: &PushOptions<'_>,
) -> Result<PushedFile> {
    let size = std::fs::metadata(path)
        .map_err(|e| SetError::io(path, e))?
        .len();
    let sha = sha_of(path)?;
    if let Some((s, n)) = want
        && (s != sha || n != size)
    {
        return Err(SetError::File {
            path: path.to_path_buf(),
            reason: format!(
                "is {size} bytes with SHA-256 {} but the manifest says {n} bytes, {}; refusing to publish it",
                hex::encode(sha),
                hex::encode(s)
            ),
        });
    }
    let state = if present(url, size, &sha, &opts.remote)? {
        (opts.progress)(PushEvent::Done(size));
        "skipped"
    } else {
        let mut f = File::open(path).map_err(|e| SetError::io(path, e))?;
        put_object(url, &mut f, size, &hex::encode(sha), &opts.remote, &|n| {
            (opts.progress)(PushEvent::Done(n))
        })
        .map_err(|e| SetError::io(url, e))?;
        "uploaded"
    };
    Ok(PushedFile {
        path: rel.to_string(),
        url: url.to_string(),
        size_bytes: size,
        state,
    })
}

fn join(dir: &str, rel: &str) -> String {
    format!("{}/{rel}", dir.trim_end_matches('/'))
}

fn push_set(src: &Path, dest: &str, opts: &PushOptions<'_>) -> Result<PushSummary> {
    let mpath = crate::manifest::manifest_path(src);
    let dir = aero_io::output::parent_dir(&mpath);
    let dir = dir.canonicalize().map_err(|e| SetError::io(&dir, e))?;
    let bytes = std::fs::read(&mpath).map_err(|e| SetError::io(&mpath, e))?;
    let mut manifest = SetManifest::parse(&bytes, &mpath)?;
    let (dest_dir, manifest_url) = if dest.ends_with(".json") {
        (crate::remote::url_dir(dest).to_string(), dest.to_string())
    } else {
        (
            dest.trim_end_matches('/').to_string(),
            join(dest, MANIFEST_NAME),
        )
    };
    let mut entries = vec![("global_tidx".to_string(), manifest.global_tidx.clone())];
    entries.extend(
        manifest
            .parts
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("parts[{i}]"), p.file.clone())),
    );
    entries.extend(
        manifest
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (format!("files[{i}]"), f.clone())),
    );
    let mut local = Vec::new();
    for (field, e) in &entries {
        if aero_io::url::classify(&e.path).is_url() {
            return Err(SetError::Unsupported {
                location: mpath.display().to_string(),
                reason: format!(
                    "field `{field}.path` is a URL ({}); push publishes sets whose files are named by relative paths",
                    e.path
                ),
            });
        }
        let p = crate::resolve::inside(&mpath, &dir, &format!("{field}.path"), &e.path)?;
        local.push(p);
    }
    let total: u64 = entries.iter().map(|(_, e)| e.size_bytes).sum();
    (opts.progress)(PushEvent::Plan(total));
    let mut files = Vec::new();
    for ((_, e), p) in entries.iter().zip(&local) {
        files.push(send(
            p,
            &join(&dest_dir, &e.path),
            &e.path,
            Some((e.sha256, e.size_bytes)),
            opts,
        )?);
    }
    // Every file is up: the manifest last.
    let body = match &opts.base_url {
        Some(b) => {
            if aero_io::url::classify(b) != aero_io::url::Kind::Http {
                return Err(SetError::Invalid(format!(
                    "--base-url {b}: expected an http:// or https:// URL"
                )));
            }
            manifest.base_url = Some(b.trim_end_matches('/').to_string());
            manifest.version = manifest.version.max(WRITE_VERSION_BASE_URL);
            manifest.to_json_pretty().into_bytes()
        }
        None => bytes,
    };
    let sha: [u8; 32] = Sha256::digest(&body).into();
    let mut cursor = std::io::Cursor::new(&body);
    put_object(
        &manifest_url,
        &mut cursor,
        body.len() as u64,
        &hex::encode(sha),
        &opts.remote,
        &|_| {},
    )
    .map_err(|e| SetError::io(&manifest_url, e))?;
    files.push(PushedFile {
        path: MANIFEST_NAME.into(),
        url: manifest_url.clone(),
        size_bytes: body.len() as u64,
        state: "uploaded",
    });
    Ok(summary(src, manifest_url, "set", files))
}

fn push_lone(src: &Path, dest: &str, opts: &PushOptions<'_>) -> Result<PushSummary> {
    let name = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| SetError::Invalid(format!("{}: not a file name", src.display())))?;
    let url = if dest.ends_with('/') {
        format!("{dest}{name}")
    } else {
        dest.to_string()
    };
    // Only a file that opens as AERO is published.
    aero_io::AeroFile::open(src)?;
    let size = std::fs::metadata(src)
        .map_err(|e| SetError::io(src, e))?
        .len();
    (opts.progress)(PushEvent::Plan(size));
    let f = send(src, &url, &name, None, opts)?;
    Ok(summary(src, url, "file", vec![f]))
}

fn summary(src: &Path, url: String, kind: &'static str, files: Vec<PushedFile>) -> PushSummary {
    let sum = |state: &str| {
        files
            .iter()
            .filter(|f| f.state == state)
            .map(|f| f.size_bytes)
            .sum()
    };
    PushSummary {
        source: src.to_path_buf(),
        url,
        kind,
        bytes_uploaded: sum("uploaded"),
        bytes_skipped: sum("skipped"),
        files,
    }
}
