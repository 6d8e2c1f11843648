//! Object storage (issue 6, item 6): the golden files and a set written by
//! `convert-safetensors-sharded` are uploaded to an S3-compatible server that
//! checks SigV4 signatures, then read by the `aerotensor` CLI through
//! `s3://` URLs and compared with local reads: `list`, `validate --full`,
//! `extract` / `fetch-tensor` of every tensor, `inspect-set`. A wrong secret
//! key must fail with a clear error (the server checks signatures).
//!
//! The server is `s3s-fs` (the S3 service of the `s3s` crate over a
//! directory, with `SimpleAuth` checking signatures), started inside this
//! test process on 127.0.0.1 (a dev-dependency: nothing to install, no
//! script, no process to stop). `AERO_S3_ENDPOINT` (with
//! `AERO_S3_ACCESS_KEY` / `AERO_S3_SECRET_KEY`) points the tests at another
//! server instead — a real bucket service, or the parent's server in the
//! child process one test re-executes.
#![cfg(feature = "s3")]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use object_store::ObjectStoreExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::signer::{Method, Signer};
use serde_json::Value;

const DEFAULT_ACCESS_KEY: &str = "AEROTESTACCESSKEY01";
const DEFAULT_SECRET_KEY: &str = "aero-test-secret-key-not-for-production";

pub(crate) struct Server {
    pub(crate) endpoint: String,
    pub(crate) access_key: String,
    pub(crate) secret_key: String,
}

pub(crate) fn server() -> Server {
    let endpoint = match std::env::var("AERO_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => e,
        _ => {
            static STARTED: OnceLock<String> = OnceLock::new();
            STARTED.get_or_init(start_server).clone()
        }
    };
    Server {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        access_key: std::env::var("AERO_S3_ACCESS_KEY")
            .unwrap_or_else(|_| DEFAULT_ACCESS_KEY.into()),
        secret_key: std::env::var("AERO_S3_SECRET_KEY")
            .unwrap_or_else(|_| DEFAULT_SECRET_KEY.into()),
    }
}

/// Starts s3s-fs on 127.0.0.1 (a free port) over a fresh directory under
/// the test target's scratch space, on a runtime thread of its own that
/// lives as long as this process; returns its endpoint URL.
fn start_server() -> String {
    let root =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("s3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let fs = s3s_fs::FileSystem::new(&root).unwrap();
            let mut b = s3s::service::S3ServiceBuilder::new(fs);
            b.set_auth(s3s::auth::SimpleAuth::from_single(
                DEFAULT_ACCESS_KEY,
                DEFAULT_SECRET_KEY,
            ));
            let service = b.build();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let http =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = http
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
    });
    format!("http://{addr}")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn golden() -> PathBuf {
    repo().join("../shared/golden")
}

/// The CLI with only our AWS_* variables (none inherited from the caller).
pub(crate) fn bin(s: &Server, secret: &str, cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aerotensor"));
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("AWS_")) {
            c.env_remove(k);
        }
    }
    c.env("NO_COLOR", "1")
        .env("AWS_ENDPOINT", &s.endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", &s.access_key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AEROTENSOR_CACHE_DIR", cache);
    c
}

fn local_bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aerotensor"));
    c.env("NO_COLOR", "1");
    c
}

fn run(c: &mut Command) -> Output {
    c.output().unwrap()
}

fn ok(c: &mut Command) -> String {
    let o = run(c);
    assert!(
        o.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// JSON without the keys that name the location (`file`, `set`, `path`
/// of nested reports), so that a remote and a local report compare equal.
fn strip_locations(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("file");
            m.remove("set");
            for x in m.values_mut() {
                strip_locations(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_locations),
        _ => {}
    }
}

fn json(out: &[u8]) -> Value {
    let mut v: Value = serde_json::from_slice(out).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", String::from_utf8_lossy(out));
    });
    strip_locations(&mut v);
    v
}

fn tensor_names(list: &Value) -> Vec<String> {
    list["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// Creates the bucket with a presigned PUT (object_store has no
/// create-bucket call), sent over a plain TCP connection.
fn create_bucket(store: &AmazonS3, rt: &tokio::runtime::Runtime) {
    let url = rt
        .block_on(store.signed_url(Method::PUT, &ObjectPath::from(""), Duration::from_secs(300)))
        .unwrap();
    let host = format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port_or_known_default().unwrap()
    );
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut conn = std::net::TcpStream::connect(&host).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        conn,
        "PUT {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    let _ = conn.read_to_string(&mut resp);
    let status = resp.lines().next().unwrap_or_default().to_string();
    assert!(
        status.contains(" 200"),
        "CreateBucket via {url}: {status}\n{resp}"
    );
}

/// Uploads every file under `dir` (recursively) to `prefix/…`; returns the
/// relative paths.
fn upload_dir(
    store: &Arc<AmazonS3>,
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    prefix: &str,
    keep: &dyn Fn(&Path) -> bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if !keep(&p) {
                continue;
            }
            let rel = p
                .strip_prefix(dir)
                .unwrap()
                .to_str()
                .unwrap()
                .replace('\\', "/");
            let data = std::fs::read(&p).unwrap();
            rt.block_on(store.put(&ObjectPath::from(format!("{prefix}/{rel}")), data.into()))
                .unwrap();
            out.push(rel);
        }
    }
    out.sort();
    out
}

/// A runtime, a client for a fresh bucket (created), and its name.
pub(crate) fn setup(s: &Server) -> (tokio::runtime::Runtime, Arc<AmazonS3>, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let bucket = format!("aero-test-{}-{nanos}", std::process::id());
    let store = Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(&s.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(&bucket)
            .with_access_key_id(&s.access_key)
            .with_secret_access_key(&s.secret_key)
            .build()
            .unwrap(),
    );
    create_bucket(&store, &rt);
    (rt, store, bucket)
}

#[test]
fn golden_files_and_a_converted_set_read_through_s3_urls() {
    let s = server();
    let (rt, store, bucket) = setup(&s);

    // Fixtures: the golden files, and a set converted from sharded safetensors.
    let tmp = tempfile::tempdir().unwrap();
    let golden = golden();
    let golden_objects = upload_dir(&store, &rt, &golden, "golden", &|p| {
        p.extension().is_some_and(|x| x == "aero" || x == "json")
    });
    assert!(
        golden_objects
            .iter()
            .any(|o| o == "aeroset-local/model.aeroset.json")
    );
    let src = tmp.path().join("sharded-src");
    let o = Command::new("python3")
        .arg(repo().join("tests/fixtures/gen_sharded.py"))
        .arg(&src)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let set_dir = tmp.path().join("sharded");
    ok(local_bin()
        .args(["convert-safetensors-sharded"])
        .arg(&src)
        .arg(&set_dir)
        .args([
            "--max-shard-bytes",
            "2K",
            "--max-part-shards",
            "2",
            "--tensor-hash",
        ]));
    let set_objects = upload_dir(&store, &rt, &set_dir, "sharded", &|_| true);
    assert!(set_objects.len() > 3, "{set_objects:?}");
    let base = format!("s3://{bucket}");
    let cache = tmp.path().join("cache");
    let cli = || bin(&s, &s.secret_key, &cache);
    let out_remote = tmp.path().join("remote.bin");
    let out_local = tmp.path().join("local.bin");
    let started = Instant::now();

    // Single files: list, validate --full and every tensor, as read locally.
    let mut files = 0;
    for rel in golden_objects
        .iter()
        .filter(|o| o.ends_with(".aero") && !o.contains('/'))
    {
        let url = format!("{base}/golden/{rel}");
        let local = golden.join(rel);
        let r = run(cli().args(["list", "--json", &url]));
        let l = run(local_bin().arg("list").arg("--json").arg(&local));
        assert!(
            l.status.success() && r.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let list = without_input(json(&l.stdout));
        assert_eq!(without_input(json(&r.stdout)), list, "{url}: list");
        let r = run(cli().args(["validate", "--full", "--json", &url]));
        let l = run(local_bin()
            .args(["validate", "--full", "--json"])
            .arg(&local));
        assert_eq!(
            r.status.code(),
            l.status.code(),
            "{url}: validate exit code"
        );
        assert_eq!(
            without_input(json(&r.stdout)),
            without_input(json(&l.stdout)),
            "{url}: validate report"
        );
        for t in tensor_names(&list) {
            let _ = std::fs::remove_file(&out_remote);
            let _ = std::fs::remove_file(&out_local);
            let r = run(cli().args(["extract", &url, &t]).arg(&out_remote));
            let l = run(local_bin()
                .arg("extract")
                .arg(&local)
                .arg(&t)
                .arg(&out_local));
            assert_eq!(
                r.status.code(),
                l.status.code(),
                "{url} {t}: {} / {}",
                String::from_utf8_lossy(&r.stderr),
                String::from_utf8_lossy(&l.stderr)
            );
            if l.status.success() {
                assert_eq!(
                    std::fs::read(&out_remote).unwrap(),
                    std::fs::read(&out_local).unwrap(),
                    "{url} {t}"
                );
            }
        }
        files += 1;
    }
    assert!(files >= 6, "golden .aero files read: {files}");

    // Sets: the golden three-part set and the converted one (relative part
    // paths resolve against the manifest's own s3 "directory").
    let sets = [
        (
            format!("{base}/golden/aeroset-local/model.aeroset.json"),
            golden.join("aeroset-local"),
        ),
        (
            format!("{base}/sharded/model.aeroset.json"),
            set_dir.clone(),
        ),
        // A directory URL gets model.aeroset.json appended.
        (format!("{base}/sharded/"), set_dir.clone()),
    ];
    for (url, local) in &sets {
        let r = run(cli().args(["list", "--json", url]));
        let l = run(local_bin().arg("list").arg("--json").arg(local));
        assert!(
            r.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let list = without_input(json(&l.stdout));
        assert_eq!(without_input(json(&r.stdout)), list, "{url}: list");
        let names = tensor_names(&list);
        assert!(names.len() >= 10, "{url}: {names:?}");
        ok(cli().args(["inspect-set", url]));
        let r = run(cli().args(["validate", "--full", "--json", url]));
        assert!(
            r.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert_eq!(json(&r.stdout)["verdict"], "valid", "{url}");
        // Twice: cold, then from the warm range cache.
        for pass in ["cold", "warm"] {
            for t in &names {
                ok(cli().args(["fetch-tensor", url, t]).arg(&out_remote));
                ok(local_bin()
                    .arg("fetch-tensor")
                    .arg(local)
                    .arg(t)
                    .arg(&out_local));
                assert_eq!(
                    std::fs::read(&out_remote).unwrap(),
                    std::fs::read(&out_local).unwrap(),
                    "{url} {t} ({pass})"
                );
            }
        }
    }

    // Trust rules: a local manifest naming s3:// parts needs --remote.
    let mut m: Value =
        serde_json::from_slice(&std::fs::read(set_dir.join("model.aeroset.json")).unwrap())
            .unwrap();
    for p in m["parts"].as_array_mut().unwrap() {
        let rel = p["path"].as_str().unwrap().to_string();
        p["path"] = Value::from(format!("{base}/sharded/{rel}"));
    }
    let rel = m["global_tidx"]["path"].as_str().unwrap().to_string();
    m["global_tidx"]["path"] = Value::from(format!("{base}/sharded/{rel}"));
    let local_manifest = tmp.path().join("pointing-at-s3");
    std::fs::create_dir(&local_manifest).unwrap();
    std::fs::write(
        local_manifest.join("model.aeroset.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
    let r = run(cli().arg("list").arg(&local_manifest));
    assert!(
        !r.status.success(),
        "a local manifest opened s3:// parts without --remote"
    );
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("global_tidx") || err.contains("parts["),
        "{err}"
    );
    let r = run(cli()
        .args(["list", "--json", "--remote"])
        .arg(&local_manifest));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(
        tensor_names(&json(&r.stdout)),
        tensor_names(&json(
            &ok(local_bin().args(["list", "--json"]).arg(&set_dir)).into_bytes()
        ))
    );

    // A missing object is a clear error.
    let r = run(cli().args(["list", &format!("{base}/golden/no-such.aero")]));
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr).to_lowercase();
    assert!(err.contains("not found"), "{err}");

    // The server checks signatures: a wrong secret is refused, quickly.
    let t = Instant::now();
    let url = format!("{base}/golden/test-vector.aero");
    let r = run(bin(&s, "wrong-secret-key", &cache).args(["list", &url]));
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "wrong secret accepted: {err}");
    assert!(err.contains("access denied"), "{err}");
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    eprintln!("wrong secret key: {}", err.trim());
    eprintln!(
        "s3: {files} golden files and {} sets read through s3:// in {:.1?}",
        sets.len(),
        started.elapsed()
    );
}

/// `ObjectSource` itself, with options the CLI does not expose: a small
/// `prefix_guess` (reads beyond the prefix), `max_request` splitting, the
/// `max_read` cap, the range cache and `invalidate`, a replaced object, an
/// empty object, a missing one. Runs in a child process (this test binary
/// re-executed) so that the AWS_* variables object_store reads are set
/// without touching this process's environment.
#[test]
fn object_source_ranges_cache_and_limits() {
    const NAME: &str = "remote_s3::object_source_ranges_cache_and_limits";
    if std::env::var_os("AERO_S3_CHILD").is_some() {
        return object_source_child();
    }
    let s = server();
    let (rt, store, bucket) = setup(&s);
    let blob = blob();
    rt.block_on(store.put(&ObjectPath::from("blob.bin"), blob.into()))
        .unwrap();
    rt.block_on(store.put(&ObjectPath::from("empty.bin"), Vec::new().into()))
        .unwrap();
    let multi = std::fs::read(golden().join("mixed-multishard.aero")).unwrap();
    rt.block_on(store.put(&ObjectPath::from("mixed-multishard.aero"), multi.into()))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Command::new(std::env::current_exe().unwrap());
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("AWS_")) {
            c.env_remove(k);
        }
    }
    let o = c
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env("AERO_S3_CHILD", "1")
        .env("AERO_S3_ENDPOINT", &s.endpoint)
        .env("AERO_S3_BUCKET", &bucket)
        .env("AERO_S3_CACHE", tmp.path())
        .env("AWS_ENDPOINT", &s.endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", &s.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &s.secret_key)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "child failed:\n{text}");
    assert!(text.contains("object source checks passed"), "{text}");
    for l in text.lines().filter(|l| l.contains("object source")) {
        eprintln!("{}", l.rsplit(" ... ").next().unwrap_or(l));
    }
}

/// 300 KB of deterministic bytes.
fn blob() -> Vec<u8> {
    aero_test_support::bytes(0x9e37_79b9, 300_000)
}

fn object_source_child() {
    use aero_io::ByteSource;
    use aero_io::remote::{ObjectSource, RangeCache, RemoteOptions};

    let bucket = std::env::var("AERO_S3_BUCKET").unwrap();
    let cache = RangeCache::new(std::env::var("AERO_S3_CACHE").unwrap(), 1 << 30).unwrap();
    let opts = RemoteOptions {
        prefix_guess: 1024,
        max_request: 1000,
        max_read: 8192,
        retries: 1,
        cache: Some(cache),
        ..RemoteOptions::default()
    };
    let url = format!("s3://{bucket}/blob.bin");
    let want = blob();

    // Opening is one ranged GET; the prefix is served from memory.
    let src = ObjectSource::open(&url, opts.clone()).unwrap();
    assert_eq!(src.len(), want.len() as u64);
    assert_eq!(src.stats().requests, 1, "{:?}", src.stats());
    assert_eq!(&*src.bytes(10, 1000).unwrap(), &want[10..1010]);
    assert_eq!(src.stats().requests, 1);

    // 5000 bytes past the prefix: five requests of at most max_request.
    let r = 100_000..105_000usize;
    assert_eq!(&*src.bytes(r.start as u64, 5000).unwrap(), &want[r.clone()]);
    assert_eq!(src.stats().requests, 6, "{:?}", src.stats());
    assert_eq!(src.stats().bytes, 1024 + 5000);
    // Again: from the cache, no request.
    assert_eq!(&*src.bytes(r.start as u64, 5000).unwrap(), &want[r.clone()]);
    assert_eq!(src.stats().requests, 6);
    // A second source shares the cache (same URL and ETag).
    let again = ObjectSource::open(&url, opts.clone()).unwrap();
    assert_eq!(
        &*again.bytes(r.start as u64, 5000).unwrap(),
        &want[r.clone()]
    );
    assert_eq!(again.stats().requests, 1, "{:?}", again.stats());
    // invalidate() drops the entry: the next read fetches again.
    assert!(src.invalidate(r.start as u64, 5000));
    assert_eq!(&*src.bytes(r.start as u64, 5000).unwrap(), &want[r.clone()]);
    assert_eq!(src.stats().requests, 11);
    // The tail, up to the last byte; past the end is an error.
    let n = want.len() as u64;
    assert_eq!(&*src.bytes(n - 10, 10).unwrap(), &want[want.len() - 10..]);
    let e = src.bytes(n - 10, 11).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
    // The per-read cap.
    let e = src.bytes(50_000, 9000).unwrap_err();
    assert!(e.to_string().contains("per-read cap"), "{e}");

    // An AERO file with a tiny prefix guess: TOC, string table and TIDX
    // read as separate ranges; every tensor equals the local bytes.
    let local = aero_io::AeroFile::open(golden().join("mixed-multishard.aero")).unwrap();
    let remote = aero_io::AeroFile::open_url(
        &format!("s3://{bucket}/mixed-multishard.aero"),
        RemoteOptions {
            prefix_guess: 128,
            cache: None,
            ..RemoteOptions::default()
        },
    )
    .unwrap();
    let names: Vec<String> = local
        .index()
        .unwrap()
        .tensors()
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert!(names.len() >= 10);
    for t in &names {
        assert_eq!(
            remote.tensor(t).unwrap().bytes(),
            local.tensor(t).unwrap().bytes(),
            "{t}"
        );
    }

    // An empty object opens (its size comes from a HEAD).
    let empty = ObjectSource::open(&format!("s3://{bucket}/empty.bin"), opts.clone()).unwrap();
    assert_eq!(empty.len(), 0);
    // A missing object: NotFound, without retries.
    let e = ObjectSource::open(&format!("s3://{bucket}/missing.bin"), opts.clone()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
    // A URL of another scheme is refused by the dispatcher, not taken for a path.
    let Err(e) = aero_io::remote::open_source("ftp://h/x.aero", opts.clone()) else {
        panic!("ftp:// opened");
    };
    assert!(e.to_string().contains("unsupported URL scheme"), "{e}");

    // The object is replaced: the old source refuses to mix versions; a new
    // source (new ETag, new cache keys) reads the new bytes.
    let fresh: Vec<u8> = want.iter().map(|b| b ^ 0xff).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .build()
        .unwrap();
    rt.block_on(store.put(&ObjectPath::from("blob.bin"), fresh.clone().into()))
        .unwrap();
    let e = src.bytes(200_000, 3000).unwrap_err();
    assert!(e.to_string().contains("changed since it was opened"), "{e}");
    let new = ObjectSource::open(&url, opts).unwrap();
    assert_eq!(&*new.bytes(r.start as u64, 5000).unwrap(), &fresh[r]);
    println!(
        "object source checks passed (open: 1 request; 5000 bytes past the prefix: 5 requests; warm: 0)"
    );
}

/// A `--json` document without `input`: the path or URL as given, which
/// differs between a local file and its copy behind a URL.
fn without_input(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(m) = v.as_object_mut() {
        m.remove("input");
    }
    v
}
