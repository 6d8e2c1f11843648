//! Object storage (`s3://`, `gs://`, `az://`) through the `object_store`
//! crate, behind the same [`ByteSource`] seam as [`super::HttpSource`].
//!
//! Credentials and endpoints come from the usual environment variables, read
//! by `object_store`'s builders (`AmazonS3Builder::from_env`, …):
//!
//! - `s3://bucket/key`: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//!   `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION`,
//!   `AWS_ENDPOINT_URL` / `AWS_ENDPOINT` (S3-compatible servers; add
//!   `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint), `AWS_SKIP_SIGNATURE`,
//!   web identity / container / instance credentials;
//! - `gs://bucket/key`: `GOOGLE_SERVICE_ACCOUNT` (path),
//!   `GOOGLE_SERVICE_ACCOUNT_KEY` (JSON), `GOOGLE_APPLICATION_CREDENTIALS`;
//! - `az://container/key`: `AZURE_STORAGE_ACCOUNT_NAME`,
//!   `AZURE_STORAGE_ACCOUNT_KEY` / `AZURE_STORAGE_SAS_KEY` / client secrets,
//!   `AZURE_STORAGE_USE_EMULATOR`.
//!
//! The async client runs on one small process-wide tokio runtime (two worker
//! threads, created on first use); reads block the calling thread. Calling
//! from inside an async runtime is refused with an error rather than a
//! panic: use `spawn_blocking`.

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientConfigKey, GetOptions, GetRange, ObjectStore, RetryConfig,
};

use super::{RemoteOptions, RequestStats};
use crate::source::ByteSource;

/// An object in S3, Google Cloud Storage or Azure Blob Storage, read with
/// ranged GETs.
///
/// Opening costs one request: a ranged GET of the first `prefix_guess`
/// bytes, whose response carries the object size (`Content-Range`) and ETag.
/// Those bytes stay in memory, so parsing the header, TOC and string table
/// costs nothing more. (An empty object, which has no byte ranges, is
/// recognised with a HEAD instead.) Later reads are pinned to the ETag seen
/// at open (`If-Match`), are split at `max_request`, capped at `max_read`,
/// retried (object_store's retry policy per request, then a bounded loop of
/// our own that resumes at the current offset) and go through the verified
/// [`super::RangeCache`] keyed by URL and ETag.
pub struct ObjectSource {
    url: String,
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    len: u64,
    head: Vec<u8>,
    validator: String,
    etag: Option<String>,
    opts: RemoteOptions,
    stats: Mutex<RequestStats>,
}

impl std::fmt::Debug for ObjectSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectSource")
            .field("url", &self.url)
            .field("len", &self.len)
            .finish()
    }
}

/// The object-store schemes accepted (`s3://`, `gs://`, `az://`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Scheme {
    S3,
    Gcs,
    Azure,
}

/// Splits `url` into its scheme, bucket (or container) and object key.
fn parse(url: &str) -> io::Result<(Scheme, String, ObjectPath)> {
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidInput, format!("{url}: {why}"));
    let u = url::Url::parse(url).map_err(|e| bad(format!("not a valid URL: {e}")))?;
    let scheme = match u.scheme() {
        "s3" => Scheme::S3,
        "gs" => Scheme::Gcs,
        "az" => Scheme::Azure,
        s => {
            return Err(bad(format!(
                "scheme {s}:// is not an object store (s3://, gs://, az://)"
            )));
        }
    };
    let bucket = u
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no bucket name".into()))?
        .to_string();
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad("query strings and fragments are not supported".into()));
    }
    let path =
        ObjectPath::from_url_path(u.path()).map_err(|e| bad(format!("invalid object key: {e}")))?;
    if path.as_ref().is_empty() {
        return Err(bad("no object key after the bucket".into()));
    }
    Ok((scheme, bucket, path))
}

/// The process-wide runtime driving object_store's async client.
fn runtime() -> io::Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RT.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("aero-object-io")
        .enable_all()
        .build()?;
    // A racing thread may have won; its runtime is used and ours dropped.
    Ok(RT.get_or_init(|| rt))
}

/// Runs `fut` to completion on the shared runtime, from a blocking context.
fn block_on<F: std::future::Future>(fut: F) -> io::Result<F::Output> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(io::Error::other(
            "object storage reads block; call them outside an async runtime (e.g. in spawn_blocking)",
        ));
    }
    Ok(runtime()?.block_on(fut))
}

/// Stores already built, shared by every source of one bucket with the same
/// options (one connection pool and credential cache per bucket).
type StoreKey = (Scheme, String, Duration, u32, Duration);

fn stores() -> &'static Mutex<HashMap<StoreKey, Arc<dyn ObjectStore>>> {
    static S: OnceLock<Mutex<HashMap<StoreKey, Arc<dyn ObjectStore>>>> = OnceLock::new();
    S.get_or_init(Default::default)
}

fn store_for(
    scheme: Scheme,
    bucket: &str,
    opts: &RemoteOptions,
) -> io::Result<Arc<dyn ObjectStore>> {
    let key = (
        scheme,
        bucket.to_string(),
        opts.timeout,
        opts.retries,
        opts.backoff,
    );
    if let Some(s) = stores().lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(s);
    }
    // reqwest's rustls is built without a bundled crypto provider: install
    // ring (already used by ureq) unless the application installed one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: opts.backoff,
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: opts.retries as usize,
        retry_timeout: opts
            .timeout
            .saturating_mul(opts.retries.saturating_add(1))
            .min(Duration::from_secs(300)),
    };
    let timeout = format!("{}ms", opts.timeout.as_millis().max(1));
    let connect = format!(
        "{}ms",
        opts.timeout.min(Duration::from_secs(10)).as_millis().max(1)
    );
    let url = match scheme {
        Scheme::S3 => format!("s3://{bucket}"),
        Scheme::Gcs => format!("gs://{bucket}"),
        Scheme::Azure => format!("az://{bucket}"),
    };
    let built: object_store::Result<Arc<dyn ObjectStore>> = match scheme {
        Scheme::S3 => {
            use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey as K};
            AmazonS3Builder::from_env()
                .with_url(&url)
                .with_retry(retry)
                .with_config(K::Client(ClientConfigKey::Timeout), &timeout)
                .with_config(K::Client(ClientConfigKey::ConnectTimeout), &connect)
                .build()
                .map(|s| Arc::new(s) as _)
        }
        Scheme::Gcs => {
            use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey as K};
            GoogleCloudStorageBuilder::from_env()
                .with_url(&url)
                .with_retry(retry)
                .with_config(K::Client(ClientConfigKey::Timeout), &timeout)
                .with_config(K::Client(ClientConfigKey::ConnectTimeout), &connect)
                .build()
                .map(|s| Arc::new(s) as _)
        }
        Scheme::Azure => {
            use object_store::azure::{AzureConfigKey as K, MicrosoftAzureBuilder};
            MicrosoftAzureBuilder::from_env()
                .with_url(&url)
                .with_retry(retry)
                .with_config(K::Client(ClientConfigKey::Timeout), &timeout)
                .with_config(K::Client(ClientConfigKey::ConnectTimeout), &connect)
                .build()
                .map(|s| Arc::new(s) as _)
        }
    };
    let store = built.map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{url}: cannot configure the object store client: {e}"),
        )
    })?;
    if let Ok(mut m) = stores().lock() {
        m.insert(key, Arc::clone(&store));
    }
    Ok(store)
}

/// Why one attempt failed.
enum Failure {
    /// Transport trouble left over after object_store's own retries, or a
    /// body cut before any byte arrived: worth one more round.
    Retry(String),
    /// A body cut after some bytes arrived: resume at the new offset (up to
    /// `retries` times).
    Resume(String),
    /// Final.
    Fatal(io::Error),
}

/// Maps an object_store error to an `io::Error` with a clear message, or to
/// a retry when a new attempt may help.
fn classify(e: object_store::Error) -> Failure {
    use object_store::Error as E;
    let kind = match &e {
        E::NotFound { .. } => io::ErrorKind::NotFound,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => io::ErrorKind::PermissionDenied,
        E::Precondition { .. } => {
            return Failure::Fatal(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("remote object changed since it was opened ({e})"),
            ));
        }
        // Credentials were looked up last in the instance metadata service
        // (169.254.169.254, used by AWS, GCP and Azure) and none came back:
        // final, another round would only wait for the same answer.
        E::Generic { .. } if e.to_string().contains("169.254.169.254") => io::ErrorKind::Other,
        E::Generic { source, .. } => {
            // object_store has already retried this request (5xx, 429,
            // timeouts, connection errors) up to `retries` times. Transport
            // failures get another round of ours; an HTTP status it gave up
            // on, or a malformed response (no Content-Range, wrong range),
            // is final.
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
            while let Some(c) = cause {
                if c.is::<object_store::client::HttpError>() {
                    return Failure::Retry(e.to_string());
                }
                cause = c.source();
            }
            io::ErrorKind::InvalidData
        }
        _ => io::ErrorKind::Other,
    };
    let text = e.to_string();
    let msg = match kind {
        io::ErrorKind::PermissionDenied => format!(
            "access denied ({text}); check the credentials in the environment (AWS_*, GOOGLE_*, AZURE_*)"
        ),
        _ if text.contains("169.254.169.254") => format!(
            "no credentials: none in the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
             AWS_SKIP_SIGNATURE=true for a public bucket; GOOGLE_*; AZURE_*) and the instance \
             metadata service gave none ({text})"
        ),
        _ => text,
    };
    Failure::Fatal(io::Error::new(kind, msg))
}

impl ObjectSource {
    /// Opens `url` (`s3://bucket/key`, `gs://bucket/key` or
    /// `az://container/key`).
    pub fn open(url: &str, opts: RemoteOptions) -> io::Result<ObjectSource> {
        let (scheme, bucket, path) = parse(url)?;
        let store = store_for(scheme, &bucket, &opts)?;
        let mut src = ObjectSource {
            url: url.to_owned(),
            store,
            path,
            len: 0,
            head: Vec::new(),
            validator: String::new(),
            etag: None,
            opts,
            stats: Mutex::new(RequestStats::default()),
        };
        let (head, len, etag, modified) = src.first_read()?;
        src.len = len;
        src.head = head;
        src.validator = match &etag {
            Some(e) => format!("etag:{e}"),
            None => format!("size:{len};modified:{modified}"),
        };
        src.etag = etag;
        Ok(src)
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests and bytes fetched so far (requests retried inside
    /// object_store count once).
    pub fn stats(&self) -> RequestStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    fn err(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", self.url))
    }

    fn count(&self, bytes: u64, requests: u64) {
        if let Ok(mut s) = self.stats.lock() {
            s.requests += requests;
            s.bytes += bytes;
        }
    }

    fn sleep(&self, attempt: u32) {
        let d = self
            .opts
            .backoff
            .saturating_mul(1u32 << attempt.min(10).saturating_sub(1));
        std::thread::sleep(d.min(Duration::from_secs(5)));
    }

    /// Runs `f` until it succeeds or fails for good. Each request inside
    /// `f` is already retried by object_store (`retries` times), so a
    /// failure without progress gets one more round only; a body cut after
    /// progress is resumed up to `retries` times.
    fn with_retries<T>(&self, mut f: impl FnMut() -> Result<T, Failure>) -> io::Result<T> {
        let mut attempt = 0u32;
        let mut stalled = 0u32;
        loop {
            let msg = match f() {
                Ok(v) => return Ok(v),
                Err(Failure::Fatal(e)) => return Err(self.err(e)),
                Err(Failure::Retry(msg)) => {
                    stalled += 1;
                    msg
                }
                Err(Failure::Resume(msg)) => msg,
            };
            attempt += 1;
            if attempt > self.opts.retries || stalled > 1 {
                return Err(self.err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("giving up after {attempt} attempts: {msg}"),
                )));
            }
            self.sleep(attempt);
        }
    }

    /// The prefix read at open: (bytes, size, ETag, last-modified).
    fn first_read(&self) -> io::Result<(Vec<u8>, u64, Option<String>, String)> {
        let want = self.opts.prefix_guess.max(1);
        let store = Arc::clone(&self.store);
        let path = self.path.clone();
        let res = self.with_retries(|| {
            self.count(0, 1);
            let fut = async {
                let opts = GetOptions {
                    range: Some(GetRange::Bounded(0..want)),
                    ..Default::default()
                };
                let r = store.get_opts(&path, opts).await?;
                let meta = r.meta.clone();
                let range = r.range.clone();
                let mut data = Vec::with_capacity((range.end - range.start) as usize);
                let mut body = r.into_stream();
                let mut cut = None;
                while let Some(chunk) = body.next().await {
                    match chunk {
                        Ok(b) => data.extend_from_slice(&b),
                        Err(e) => {
                            cut = Some(e.to_string());
                            break;
                        }
                    }
                }
                Ok::<_, object_store::Error>((data, meta, range, cut))
            };
            let (data, meta, range, cut) =
                block_on(fut).map_err(Failure::Fatal)?.map_err(classify)?;
            self.count(data.len() as u64, 0);
            let n = range.end.saturating_sub(range.start);
            if range.start != 0 || n != want.min(meta.size) {
                return Err(Failure::Fatal(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "asked for bytes 0..{want} of a {}-byte object, got {range:?}",
                        meta.size
                    ),
                )));
            }
            if data.len() as u64 != n {
                return Err(Failure::Retry(format!(
                    "body ended after {} of {n} bytes{}",
                    data.len(),
                    cut.map(|c| format!(" ({c})")).unwrap_or_default()
                )));
            }
            Ok((data, meta.size, meta.e_tag, meta.last_modified.to_rfc3339()))
        });
        match res {
            Ok(r) => Ok(r),
            // An empty object has no byte range to give (416): learn its
            // size with a HEAD before calling that an error. Anything else
            // keeps the original error.
            Err(e) if e.kind() == io::ErrorKind::InvalidData && e.to_string().contains(" 416 ") => {
                match self.head_meta() {
                    Ok(meta) if meta.size == 0 => {
                        Ok((Vec::new(), 0, meta.e_tag, meta.last_modified.to_rfc3339()))
                    }
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn head_meta(&self) -> io::Result<object_store::ObjectMeta> {
        let store = Arc::clone(&self.store);
        let path = self.path.clone();
        self.with_retries(|| {
            self.count(0, 1);
            let fut = async {
                store
                    .get_opts(
                        &path,
                        GetOptions {
                            head: true,
                            ..Default::default()
                        },
                    )
                    .await
                    .map(|r| r.meta)
            };
            block_on(fut).map_err(Failure::Fatal)?.map_err(classify)
        })
    }

    /// Fetches `buf.len()` bytes at `start`, split at `max_request`.
    fn fetch(&self, start: u64, buf: &mut [u8]) -> io::Result<()> {
        let step = self.opts.max_request.max(1) as usize;
        for (i, piece) in buf.chunks_mut(step).enumerate() {
            self.fetch_piece(start + (i * step) as u64, piece)?;
        }
        Ok(())
    }

    /// One piece, resuming at the current offset after a cut body.
    fn fetch_piece(&self, start: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut got = 0usize;
        self.with_retries(|| {
            let n = self.attempt(start + got as u64, &mut buf[got..]);
            match n {
                Ok(n) => {
                    got += n;
                    Ok(())
                }
                Err((n, f)) => {
                    got += n;
                    if got == buf.len() {
                        return Ok(());
                    }
                    match f {
                        Failure::Retry(m) if n > 0 => Err(Failure::Resume(m)),
                        f => Err(f),
                    }
                }
            }
        })?;
        if got != buf.len() {
            return Err(self.err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("short read: {got} of {} bytes at offset {start}", buf.len()),
            )));
        }
        Ok(())
    }

    /// One ranged GET into `buf`; on failure also reports the bytes that did
    /// arrive, so the next attempt resumes after them.
    fn attempt(&self, start: u64, buf: &mut [u8]) -> Result<usize, (usize, Failure)> {
        let want: Range<u64> = start..start + buf.len() as u64;
        self.count(0, 1);
        let opts = GetOptions {
            range: Some(GetRange::Bounded(want.clone())),
            if_match: self.etag.clone(),
            ..Default::default()
        };
        let fut = async {
            let r = match self.store.get_opts(&self.path, opts).await {
                Ok(r) => r,
                Err(e) => return (0, Err(classify(e))),
            };
            if r.range != want {
                return (
                    0,
                    Err(Failure::Fatal(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("asked for bytes {want:?}, got {:?}", r.range),
                    ))),
                );
            }
            if let (Some(ours), Some(theirs)) = (&self.etag, &r.meta.e_tag)
                && ours != theirs
            {
                return (
                    0,
                    Err(Failure::Fatal(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "remote object changed since it was opened (ETag {ours} → {theirs})"
                        ),
                    ))),
                );
            }
            let mut got = 0usize;
            let mut body = r.into_stream();
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(b) => {
                        let Some(dst) = buf.get_mut(got..got + b.len()) else {
                            return (
                                got,
                                Err(Failure::Fatal(io::Error::new(
                                    io::ErrorKind::InvalidData,
                                    format!(
                                        "server sent more than the {} bytes asked",
                                        want.end - want.start
                                    ),
                                ))),
                            );
                        };
                        dst.copy_from_slice(&b);
                        got += b.len();
                    }
                    Err(e) => return (got, Err(Failure::Retry(e.to_string()))),
                }
            }
            if got < buf.len() {
                let msg = format!("body ended after {got} of {} bytes", buf.len());
                return (got, Err(Failure::Retry(msg)));
            }
            (got, Ok(()))
        };
        match block_on(fut) {
            Ok((n, res)) => {
                self.count(n as u64, 0);
                match res {
                    Ok(()) => Ok(n),
                    Err(f) => Err((n, f)),
                }
            }
            Err(e) => Err((0, Failure::Fatal(e))),
        }
    }
}

impl ObjectSource {
    fn remote_file(&self) -> super::RemoteFile<'_> {
        super::RemoteFile {
            url: &self.url,
            validator: &self.validator,
            len: self.len,
            head: &self.head,
            opts: &self.opts,
        }
    }
}

impl ByteSource for ObjectSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.remote_file()
            .read(offset, buf, |o, b| self.fetch(o, b))
    }

    fn invalidate(&self, offset: u64, len: u64) -> bool {
        self.remote_file().invalidate(offset, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let (s, b, p) = parse("s3://bucket/a/b/model.aeroset.json").unwrap();
        assert_eq!(
            (s, b.as_str(), p.as_ref()),
            (Scheme::S3, "bucket", "a/b/model.aeroset.json")
        );
        let (s, b, p) = parse("gs://b/x%20y.aero").unwrap();
        assert_eq!((s, b.as_str(), p.as_ref()), (Scheme::Gcs, "b", "x y.aero"));
        assert_eq!(parse("az://c/k").unwrap().0, Scheme::Azure);
        for bad in [
            "s3://bucket",
            "s3://bucket/",
            "s3:///key",
            "http://h/k",
            "s3://b/k?versionId=1",
            "s3://b/a//b",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_to_block_inside_a_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let e = rt.block_on(async { block_on(async { 1 }) }).unwrap_err();
        assert!(e.to_string().contains("spawn_blocking"), "{e}");
        assert_eq!(block_on(async { 2 }).unwrap(), 2);
    }
}
