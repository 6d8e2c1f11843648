//! Object storage (`s3://`, `gs://`, `az://`) through the `object_store`
//! crate: a [`Transport`] for [`super::RemoteSource`], like HTTP.
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
use std::io::{self, Read};
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientConfigKey, GetOptions, GetRange, ObjectStore,
    RetryConfig,
};

use super::RemoteOptions;
use super::transport::{FetchError, Meta, Reply, Served, Transport};
use crate::url::{Kind, ObjectScheme};

/// The object-store transport of [`super::ObjectSource`]: ranged GETs
/// (pinned to the ETag with `If-Match`) and, for an empty object, a HEAD.
/// Each request is retried by object_store itself (`retries` times, backoff
/// from `backoff`; 5xx, 429, timeouts, connection errors), which
/// [`Transport::retries_itself`] tells the core.
pub struct ObjectTransport {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
}

/// Splits `url` into its service, bucket (or container) and object key.
fn parse(url: &str) -> io::Result<(ObjectScheme, String, ObjectPath)> {
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidInput, format!("{url}: {why}"));
    let Kind::Object {
        scheme,
        bucket,
        key,
    } = crate::url::classify(url)
    else {
        return Err(bad(
            "an object-store URL is s3://BUCKET/KEY, gs://BUCKET/KEY or az://CONTAINER/KEY".into(),
        ));
    };
    if key.contains(['?', '#']) {
        return Err(bad("query strings and fragments are not supported".into()));
    }
    if key.is_empty() {
        return Err(bad("no object key after the bucket".into()));
    }
    let path =
        ObjectPath::from_url_path(key).map_err(|e| bad(format!("invalid object key: {e}")))?;
    Ok((scheme, bucket.to_string(), path))
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
type StoreKey = (ObjectScheme, String, Duration, u32, Duration);

fn stores() -> &'static Mutex<HashMap<StoreKey, Arc<dyn ObjectStore>>> {
    static S: OnceLock<Mutex<HashMap<StoreKey, Arc<dyn ObjectStore>>>> = OnceLock::new();
    S.get_or_init(Default::default)
}

fn store_for(
    scheme: ObjectScheme,
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
    let url = format!("{}://{bucket}", scheme.as_str());
    let config_err = |e: object_store::Error| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{url}: cannot configure the object store client: {e}"),
        )
    };
    // Each builder, the store it builds, and whether requests are signed
    // (then credentials are looked up once here: see `check_credentials`).
    // The three builders share no trait, so one macro configures them alike.
    macro_rules! store {
        ($builder:ident, $key:ident) => {{
            let b = $builder::from_env()
                .with_url(&url)
                .with_retry(retry)
                .with_config($key::Client(ClientConfigKey::Timeout), &timeout)
                .with_config($key::Client(ClientConfigKey::ConnectTimeout), &connect);
            let signed = !b
                .get_config_value(&$key::SkipSignature)
                .is_some_and(|v| truthy(&v));
            let s = b.build().map_err(config_err)?;
            if signed {
                check_credentials(&url, s.credentials().get_credential())?;
            }
            Arc::new(s)
        }};
    }
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectScheme::S3 => {
            use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
            store!(AmazonS3Builder, AmazonS3ConfigKey)
        }
        ObjectScheme::Gcs => {
            use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
            store!(GoogleCloudStorageBuilder, GoogleConfigKey)
        }
        ObjectScheme::Azure => {
            use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
            store!(MicrosoftAzureBuilder, AzureConfigKey)
        }
    };
    if let Ok(mut m) = stores().lock() {
        m.insert(key, Arc::clone(&store));
    }
    Ok(store)
}

/// A boolean configuration value as object_store reads it.
fn truthy(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "1" | "true" | "on" | "yes" | "y"
    )
}

/// Looks the store's credentials up once, when it is built. object_store
/// would do it on the first request and report a failure as that request's
/// error; asking here tells "no credentials anywhere" (the provider chain
/// ended at the instance metadata service, which gave none) from a request
/// that failed, by which call failed rather than by its message. The
/// provider caches what it found, so the first request does not ask again.
fn check_credentials<C>(
    url: &str,
    lookup: impl std::future::Future<Output = object_store::Result<C>>,
) -> io::Result<()> {
    match block_on(lookup)? {
        Ok(_) => Ok(()),
        Err(e) => Err(io::Error::other(format!(
            "{url}: no credentials: none in the environment (AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, AWS_SKIP_SIGNATURE=true for a public bucket; GOOGLE_*; \
             AZURE_*) and the provider's fallbacks (web identity, container or instance \
             metadata) gave none ({e})"
        ))),
    }
}

/// Classifies an object_store error by its variant and, for `Generic`, by
/// the types in its source chain.
fn classify(e: object_store::Error) -> FetchError {
    use object_store::Error as E;
    match &e {
        E::NotFound { .. } => FetchError::Fatal(io::Error::new(io::ErrorKind::NotFound, e)),
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
            FetchError::Fatal(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "access denied ({e}); check the credentials in the environment (AWS_*, GOOGLE_*, AZURE_*)"
                ),
            ))
        }
        E::Precondition { .. } => FetchError::Changed(e.to_string()),
        E::Generic { source, .. } => {
            // object_store has already retried this request (5xx, 429,
            // timeouts, connection errors) up to `retries` times. A
            // transport failure (an `HttpError` in the chain) gets another
            // round of ours. Otherwise the server answered with a status
            // object_store gave up on — it does not say which, so for a
            // range request this is a refusal of the range: final, except
            // that an empty object (which has no range to give) opens.
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
            while let Some(c) = cause {
                if c.is::<object_store::client::HttpError>() {
                    return FetchError::Retry(e.to_string());
                }
                cause = c.source();
            }
            FetchError::Unsatisfiable {
                meta: None,
                error: io::Error::new(io::ErrorKind::InvalidData, e),
            }
        }
        _ => FetchError::Fatal(io::Error::other(e)),
    }
}

/// An object's body stream as a blocking reader.
struct StreamBody<S, B> {
    stream: S,
    chunk: Option<B>,
    pos: usize,
}

impl<S, B> Read for StreamBody<S, B>
where
    S: Stream<Item = object_store::Result<B>> + Unpin,
    B: AsRef<[u8]>,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(rest) = self.chunk.as_ref().and_then(|c| c.as_ref().get(self.pos..))
                && !rest.is_empty()
            {
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                self.pos += n;
                return Ok(n);
            }
            match block_on(self.stream.next())? {
                None => return Ok(0),
                Some(Ok(b)) => {
                    self.chunk = Some(b);
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(io::Error::other(e)),
            }
        }
    }
}

fn meta(m: &object_store::ObjectMeta) -> Meta {
    Meta {
        size: m.size,
        etag: m.e_tag.clone(),
        modified: Some(m.last_modified.to_rfc3339()),
    }
}

impl Transport for ObjectTransport {
    /// `url` is `s3://bucket/key`, `gs://bucket/key` or `az://container/key`.
    fn connect(url: &str, opts: &RemoteOptions) -> io::Result<ObjectTransport> {
        let (scheme, bucket, path) = parse(url)?;
        let store = store_for(scheme, &bucket, opts)?;
        Ok(ObjectTransport { store, path })
    }

    fn get(&self, range: Range<u64>, etag: Option<&str>) -> Result<Reply<'_>, FetchError> {
        let opts = GetOptions {
            range: Some(GetRange::Bounded(range)),
            if_match: etag.map(str::to_owned),
            ..Default::default()
        };
        let r = block_on(self.store.get_opts(&self.path, opts))
            .map_err(FetchError::Fatal)?
            .map_err(classify)?;
        let m = meta(&r.meta);
        Ok(Reply {
            served: Served::Range {
                start: r.range.start,
                end: r.range.end,
                total: Some(m.size),
            },
            etag: m.etag,
            modified: m.modified,
            body: Box::new(StreamBody {
                stream: r.into_stream(),
                chunk: None,
                pos: 0,
            }),
        })
    }

    fn stat(&self) -> Option<Result<Meta, FetchError>> {
        let head = GetOptions {
            head: true,
            ..Default::default()
        };
        Some(
            block_on(self.store.get_opts(&self.path, head))
                .map_err(FetchError::Fatal)
                .and_then(|r| r.map(|r| meta(&r.meta)).map_err(classify)),
        )
    }

    fn retries_itself(&self) -> bool {
        true
    }
}

/// The user-metadata key under which [`put_object`] records an object's
/// SHA-256 (hex): `x-amz-meta-sha256` on S3, the same metadata on GCS and
/// Azure.
pub const SHA256_METADATA: &str = "sha256";

/// What a store holds at a URL ([`head_object`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectHead {
    /// Size in bytes.
    pub size: u64,
    /// The SHA-256 (hex) recorded in its metadata by [`put_object`], if any.
    pub sha256: Option<String>,
}

fn object_io(url: &str, e: object_store::Error) -> io::Error {
    let kind = match &e {
        object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => io::ErrorKind::PermissionDenied,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, format!("{url}: {e}"))
}

/// The object at `url` (`s3://`, `gs://`, `az://`): its size and recorded
/// SHA-256, or `None` when there is none. One HEAD request.
pub fn head_object(url: &str, opts: &RemoteOptions) -> io::Result<Option<ObjectHead>> {
    let (scheme, bucket, path) = parse(url)?;
    let store = store_for(scheme, &bucket, opts)?;
    let head = GetOptions {
        head: true,
        ..Default::default()
    };
    match block_on(store.get_opts(&path, head))? {
        Ok(r) => Ok(Some(ObjectHead {
            size: r.meta.size,
            sha256: r
                .attributes
                .get(&object_store::Attribute::Metadata(SHA256_METADATA.into()))
                .map(|v| v.as_ref().to_string()),
        })),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(object_io(url, e)),
    }
}

/// Part size of [`put_object`]'s multipart uploads (objects larger than
/// this are uploaded in parts of this size, a few at once).
pub const PUT_PART: usize = 16 << 20;

/// Uploads `len` bytes read from `body` to `url` (`s3://`, `gs://`,
/// `az://`), recording `sha256` (hex) in the object's metadata
/// ([`SHA256_METADATA`]). One PUT up to [`PUT_PART`] bytes, else a
/// multipart upload (parts of [`PUT_PART`], memory bounded to a few
/// parts), which the store makes visible only once complete; a failed
/// upload is aborted. `progress` gets the bytes sent.
pub fn put_object(
    url: &str,
    body: &mut dyn Read,
    len: u64,
    sha256: &str,
    opts: &RemoteOptions,
    progress: &dyn Fn(u64),
) -> io::Result<()> {
    use object_store::{Attribute, Attributes, PutMultipartOptions, PutOptions, PutPayload};
    let (scheme, bucket, path) = parse(url)?;
    let store = store_for(scheme, &bucket, opts)?;
    let mut attributes = Attributes::new();
    attributes.insert(
        Attribute::Metadata(SHA256_METADATA.into()),
        sha256.to_string().into(),
    );
    let read_part = |body: &mut dyn Read, n: usize| -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; n];
        body.read_exact(&mut buf)?;
        Ok(buf)
    };
    if len <= PUT_PART as u64 {
        let buf = read_part(body, len as usize)?;
        let put = PutOptions {
            attributes,
            ..Default::default()
        };
        block_on(store.put_opts(&path, PutPayload::from(buf), put))?
            .map_err(|e| object_io(url, e))?;
        progress(len);
        return Ok(());
    }
    let mp = PutMultipartOptions {
        attributes,
        ..Default::default()
    };
    let upload = block_on(store.put_multipart_opts(&path, mp))?.map_err(|e| object_io(url, e))?;
    let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, PUT_PART);
    let mut left = len;
    let sent = (|| -> io::Result<()> {
        while left > 0 {
            let n = left.min(PUT_PART as u64) as usize;
            let buf = read_part(body, n)?;
            block_on(w.wait_for_capacity(4))?.map_err(|e| object_io(url, e))?;
            // `put` spawns the part's upload on the current runtime: enter
            // the shared one (outside it, tokio panics).
            let _rt = runtime()?.enter();
            w.put(buf.into());
            progress(n as u64);
            left -= n as u64;
        }
        Ok(())
    })();
    match sent {
        Ok(()) => {
            block_on(w.finish())?.map_err(|e| object_io(url, e))?;
            Ok(())
        }
        Err(e) => {
            let _ = block_on(w.abort());
            Err(e)
        }
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
            (ObjectScheme::S3, "bucket", "a/b/model.aeroset.json")
        );
        let (s, b, p) = parse("gs://b/x%20y.aero").unwrap();
        assert_eq!((s, b.as_str(), p.as_ref()), (ObjectScheme::Gcs, "b", "x y.aero"));
        assert_eq!(parse("az://c/k").unwrap().0, ObjectScheme::Azure);
        assert_eq!(parse("S3://b/k").unwrap().0, ObjectScheme::S3);
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
