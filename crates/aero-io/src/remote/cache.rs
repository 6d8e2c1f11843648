//! A bounded disk cache of fetched byte ranges.
//!
//! Entries are keyed by (URL, validator, start, length), where the validator
//! is the remote file's ETag (or size and Last-Modified): a changed remote
//! file gets new keys and never serves stale bytes. Each entry stores its
//! bytes followed by their BLAKE3, checked on every hit; a corrupt or
//! truncated entry is deleted and reported as a miss, so the caller refetches.
//! Writes go to a unique temporary name and are renamed into place, so a
//! killed writer leaves only a `.tmp` file that is never read (and is swept
//! later); an interrupted one (the CLI's signal handler calls
//! [`crate::output::stop_and_remove_in_flight`]) leaves none. Two processes may share
//! the directory. Eviction is LRU by mtime
//! (touched on every hit), bounded by `max_bytes`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Disk cache of byte ranges (cheap to clone).
#[derive(Clone, Debug)]
pub struct RangeCache {
    dir: PathBuf,
    max_bytes: u64,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl RangeCache {
    /// A cache in `dir` holding at most `max_bytes`.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> io::Result<RangeCache> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(RangeCache { dir, max_bytes })
    }

    /// `$AEROTENSOR_CACHE_DIR` (default `~/.cache/aerotensor`) bounded by
    /// `$AEROTENSOR_CACHE_MAX_MB` (default 2048).
    pub fn from_env() -> io::Result<RangeCache> {
        let dir = match std::env::var_os("AEROTENSOR_CACHE_DIR") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => {
                let home = std::env::var_os("HOME")
                    .ok_or_else(|| io::Error::other("HOME is not set; set AEROTENSOR_CACHE_DIR"))?;
                Path::new(&home).join(".cache").join("aerotensor")
            }
        };
        let mb = match std::env::var("AEROTENSOR_CACHE_MAX_MB") {
            Ok(v) => v.trim().parse::<u64>().map_err(|_| {
                io::Error::other(format!("AEROTENSOR_CACHE_MAX_MB={v:?} is not a number"))
            })?,
            Err(_) => 2048,
        };
        RangeCache::new(dir, mb.saturating_mul(1 << 20))
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The size bound in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn path(&self, url: &str, validator: &str, start: u64, len: u64) -> PathBuf {
        let mut h = blake3::Hasher::new();
        for part in [
            url.as_bytes(),
            b"\0",
            validator.as_bytes(),
            b"\0",
            &start.to_le_bytes(),
            &len.to_le_bytes(),
        ] {
            h.update(part);
        }
        let k = h.finalize().to_hex();
        self.dir.join(&k[..2]).join(format!("{k}.bin"))
    }

    /// The cached bytes of a range, if present and intact.
    pub fn get(&self, url: &str, validator: &str, start: u64, len: u64) -> Option<Vec<u8>> {
        let p = self.path(url, validator, start, len);
        let mut data = fs::read(&p).ok()?;
        let ok = data.len() as u64 == len + 32 && {
            let (body, tail) = data.split_at(len as usize);
            blake3::hash(body).as_bytes() == tail
        };
        if !ok {
            let _ = fs::remove_file(&p);
            return None;
        }
        data.truncate(len as usize);
        if let Ok(f) = fs::File::options().append(true).open(&p) {
            let _ = f.set_modified(SystemTime::now());
        }
        Some(data)
    }

    /// Stores a range (atomically), then evicts least-recently-used entries
    /// beyond the size bound. Entries larger than the bound are not stored.
    pub fn put(&self, url: &str, validator: &str, start: u64, data: &[u8]) -> io::Result<()> {
        let len = data.len() as u64;
        if len + 32 > self.max_bytes {
            return Ok(());
        }
        let p = self.path(url, validator, start, len);
        let dir = p.parent().unwrap_or(&self.dir);
        fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            "{}.{}.{}.tmp",
            p.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        // Listed while it exists: a process interrupted by a signal (the
        // CLI's handler calls `output::stop_and_remove_in_flight`) removes
        // it, and creates no new one after that.
        let (mut f, _tracked) = crate::output::create_tracked(&tmp)?;
        let res = (|| {
            f.write_all(data)?;
            f.write_all(blake3::hash(data).as_bytes())?;
            // Stamp with the precise clock (as hits do), not the filesystem's
            // coarse write time, so LRU order is exact.
            f.set_modified(SystemTime::now())?;
            f.sync_data()?;
            fs::rename(&tmp, &p)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res?;
        self.evict();
        Ok(())
    }

    /// Removes one range (e.g. after its bytes failed a hash check upstream).
    pub fn remove(&self, url: &str, validator: &str, start: u64, len: u64) {
        let _ = fs::remove_file(self.path(url, validator, start, len));
    }

    fn entries(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        let mut v = Vec::new();
        let Ok(top) = fs::read_dir(&self.dir) else {
            return v;
        };
        for d in top.flatten() {
            let Ok(rd) = fs::read_dir(d.path()) else {
                continue;
            };
            for e in rd.flatten() {
                let Ok(m) = e.metadata() else { continue };
                let mtime = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                let path = e.path();
                if path.extension().is_some_and(|x| x == "tmp") {
                    // A writer that died mid-write: sweep after an hour.
                    if mtime.elapsed().unwrap_or_default() > Duration::from_secs(3600) {
                        let _ = fs::remove_file(&path);
                    }
                    continue;
                }
                if path.extension().is_some_and(|x| x == "bin") {
                    v.push((path, m.len(), mtime));
                }
            }
        }
        v
    }

    /// Bytes currently held.
    pub fn total_bytes(&self) -> u64 {
        self.entries().iter().map(|e| e.1).sum()
    }

    fn evict(&self) {
        let mut e = self.entries();
        let mut total: u64 = e.iter().map(|x| x.1).sum();
        if total <= self.max_bytes {
            return;
        }
        e.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
        for (p, size, _) in e {
            if total <= self.max_bytes {
                break;
            }
            if fs::remove_file(&p).is_ok() {
                total = total.saturating_sub(size);
            }
        }
    }
}
