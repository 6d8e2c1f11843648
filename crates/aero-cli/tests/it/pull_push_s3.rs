//! `aerotensor push` and `pull` against the in-process S3 server (s3s-fs,
//! SigV4 checked; see `remote_s3.rs`): a set written by
//! `convert-safetensors-sharded` is pushed while another thread lists the
//! bucket as fast as it can, and the manifest never appears before every
//! file it names; pushing again skips every file; a `--like` revision
//! uploads only its changed files; `--base-url` rewrites the uploaded
//! manifest; pulling from `s3://` gives files byte-identical to the source
//! that validate, and pulling the revision over the first fetches only the
//! changed files. Through the CDN-like proxy (`aero_test_support::netem`)
//! in front of the server: a pull killed (SIGKILL) at three points and
//! rerun fetches at most 1.05 × the set's size in total and ends
//! byte-identical; a second pull into the same destination while one runs
//! is refused (exit 2, naming the lock) and the first is unharmed.
#![cfg(feature = "s3")]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aero_test_support::netem::{Config, Proxy};

use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use serde_json::Value;

use super::pull_nginx::{
    assert_identical, assert_resumed, kill_at_quarters, listing, set_size, settled, write_revisions,
};
use super::remote_s3::{bin, server, setup};

fn run_json(c: &mut std::process::Command) -> Value {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn states(j: &Value) -> Vec<(String, String)> {
    j["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn push_publishes_manifest_last_skips_unchanged_and_pull_reads_it_back() {
    let s = server();
    let (rt, store, bucket) = setup(&s);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (v1, v2) = write_revisions(tmp.path(), 4, 4);
    let names: Vec<String> = listing(&v1).into_iter().map(|(n, _)| n).collect();
    let size = set_size(&v1);

    // A reader listing the bucket throughout the push.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let store = Arc::clone(&store);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let prefix = ObjectPath::from("sets/m");
            let mut looks = 0u64;
            loop {
                let done = stop.load(Ordering::SeqCst);
                let l = rt
                    .block_on(store.list_with_delimiter(Some(&prefix)))
                    .unwrap();
                looks += 1;
                let seen: Vec<String> = l
                    .objects
                    .iter()
                    .map(|o| o.location.filename().unwrap().to_string())
                    .collect();
                if seen.iter().any(|n| n == "model.aeroset.json") {
                    return (looks, seen);
                }
                if done {
                    return (looks, seen);
                }
            }
        })
    };
    let j = run_json(bin(&s, &s.secret_key, &cache).args([
        "push",
        "--json",
        v1.to_str().unwrap(),
        &format!("s3://{bucket}/sets/m/"),
    ]));
    stop.store(true, Ordering::SeqCst);
    let (looks, first_seen) = watcher.join().unwrap();
    let mut first_seen = first_seen;
    first_seen.sort();
    assert_eq!(
        first_seen, names,
        "when the manifest first appeared (after {looks} listings) the bucket held only {first_seen:?}"
    );
    assert!(
        looks > 1,
        "the watcher never saw the bucket without the manifest"
    );
    let order = states(&j);
    assert_eq!(order.last().unwrap().0, "model.aeroset.json", "{j}");
    assert!(order.iter().all(|(_, st)| st == "uploaded"), "{j}");
    assert_eq!(j["bytes_uploaded"].as_u64().unwrap(), size, "{j}");

    // Again: every file is already there.
    let j = run_json(bin(&s, &s.secret_key, &cache).args([
        "push",
        "--json",
        v1.to_str().unwrap(),
        &format!("s3://{bucket}/sets/m/"),
    ]));
    for (name, st) in states(&j) {
        let want = if name == "model.aeroset.json" {
            "uploaded"
        } else {
            "skipped"
        };
        assert_eq!(st, want, "{name}: {j}");
    }

    // Pull v1 from the bucket: identical, valid.
    let dest = tmp.path().join("pulled");
    let url = format!("s3://{bucket}/sets/m/model.aeroset.json");
    let j = run_json(bin(&s, &s.secret_key, &cache).args([
        "pull",
        "--json",
        &url,
        dest.to_str().unwrap(),
    ]));
    assert_eq!(j["bytes_fetched"].as_u64().unwrap(), size, "{j}");
    assert_identical(&v1, &dest);

    // The revision: only its changed files go up, then come down.
    let changed: Vec<String> = listing(&v2)
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| std::fs::read(v1.join(n)).ok() != std::fs::read(v2.join(n)).ok())
        .collect();
    assert_eq!(
        changed,
        ["index.aero", "model.aeroset.json", "part-002.aero"]
    );
    let changed_bytes: u64 = changed
        .iter()
        .map(|n| std::fs::metadata(v2.join(n)).unwrap().len())
        .sum();
    let j = run_json(bin(&s, &s.secret_key, &cache).args([
        "push",
        "--json",
        v2.to_str().unwrap(),
        &format!("s3://{bucket}/sets/m/"),
    ]));
    for (name, st) in states(&j) {
        let want = if changed.contains(&name) {
            "uploaded"
        } else {
            "skipped"
        };
        assert_eq!(st, want, "{name}: {j}");
    }
    assert_eq!(j["bytes_uploaded"].as_u64().unwrap(), changed_bytes, "{j}");
    let j = run_json(bin(&s, &s.secret_key, &cache).args([
        "pull",
        "--json",
        &url,
        dest.to_str().unwrap(),
    ]));
    assert_eq!(j["bytes_fetched"].as_u64().unwrap(), changed_bytes, "{j}");
    assert_identical(&v2, &dest);
    let o = bin(&s, &s.secret_key, &cache)
        .args(["validate", "--full", dest.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

    // --base-url: the uploaded manifest names the CDN; the local one is
    // unchanged.
    run_json(bin(&s, &s.secret_key, &cache).args([
        "push",
        "--json",
        "--base-url",
        "https://cdn.example.com/m",
        v2.to_str().unwrap(),
        &format!("s3://{bucket}/cdn/m"),
    ]));
    let body = rt
        .block_on(async {
            store
                .get(&ObjectPath::from("cdn/m/model.aeroset.json"))
                .await
                .unwrap()
                .bytes()
                .await
        })
        .unwrap();
    let m: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(m["base_url"], "https://cdn.example.com/m", "{m}");
    assert_eq!(m["format"]["version"], serde_json::json!([0, 2]), "{m}");
    let local: Value =
        serde_json::from_slice(&std::fs::read(v2.join("model.aeroset.json")).unwrap()).unwrap();
    assert_eq!(m["parts"], local["parts"]);
    assert!(local.get("base_url").is_none());

    // A damaged local set is not published.
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    for (n, _) in listing(&v2) {
        std::fs::copy(v2.join(&n), bad.join(&n)).unwrap();
    }
    let p = bad.join("part-001.aero");
    let mut b = std::fs::read(&p).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    std::fs::write(&p, b).unwrap();
    let o = bin(&s, &s.secret_key, &cache)
        .args([
            "push",
            bad.to_str().unwrap(),
            &format!("s3://{bucket}/bad/m/"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("part-001.aero"), "{err}");
    let l = rt
        .block_on(store.list_with_delimiter(Some(&ObjectPath::from("bad/m"))))
        .unwrap();
    assert!(
        l.objects
            .iter()
            .all(|o| o.location.filename() != Some("model.aeroset.json")),
        "a manifest was published for a damaged set"
    );
}

/// Pushes `set` to `s3://BUCKET/PREFIX/` and returns a proxy in front of
/// the server (20 ms per request, `rate` bytes per second per connection),
/// so that the test counts the bytes a pull fetches and has time to act
/// while it runs.
fn behind_proxy(
    s: &super::remote_s3::Server,
    set: &std::path::Path,
    bucket: &str,
    prefix: &str,
    cache: &std::path::Path,
    rate: u64,
) -> Proxy {
    run_json(bin(s, &s.secret_key, cache).args([
        "push",
        "--json",
        set.to_str().unwrap(),
        &format!("s3://{bucket}/{prefix}/"),
    ]));
    Proxy::start(Config::new(
        &s.endpoint,
        Duration::from_millis(20),
        Some(rate),
    ))
    .unwrap()
}

/// `pull` from the S3 server, through `proxy` (its endpoint).
fn pull_via(
    s: &super::remote_s3::Server,
    proxy: &Proxy,
    cache: &std::path::Path,
    url: &str,
    dest: &std::path::Path,
) -> Command {
    let mut c = bin(s, &s.secret_key, cache);
    c.env("AWS_ENDPOINT", proxy.base_url())
        .args(["pull", "--no-cache", "--json", "--jobs", "4", url])
        .arg(dest);
    c
}

#[test]
fn pull_from_s3_resumes_after_kills_fetching_each_byte_about_once() {
    let s = server();
    let (_rt, _store, bucket) = setup(&s);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (v1, _) = write_revisions(tmp.path(), 8, 16);
    let size = set_size(&v1);
    let proxy = behind_proxy(&s, &v1, &bucket, "sets/k", &cache, 25_000_000);
    let url = format!("s3://{bucket}/sets/k/model.aeroset.json");
    let dest = tmp.path().join("model");
    let stage = tmp.path().join(".model.aero-pull");

    // SIGKILL at about a quarter, half and three quarters of the bytes.
    let pull = || pull_via(&s, &proxy, &cache, &url, &dest);
    kill_at_quarters(pull, &proxy, size, &dest, &stage);
    let j = run_json(&mut pull());
    assert_resumed("s3 pull", &proxy, size, &j, &v1, &dest, &stage);
    let o = bin(&s, &s.secret_key, &cache)
        .args(["validate", "--full", dest.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn a_second_pull_into_the_same_destination_is_refused_naming_the_lock() {
    let s = server();
    let (_rt, _store, bucket) = setup(&s);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (v1, _) = write_revisions(tmp.path(), 4, 4);
    let size = set_size(&v1);
    // Slow enough (2 MB/s per connection) that the first pull is still
    // running when the second starts.
    let proxy = behind_proxy(&s, &v1, &bucket, "sets/l", &cache, 2_000_000);
    let url = format!("s3://{bucket}/sets/l/model.aeroset.json");
    let dest = tmp.path().join("model");
    let first = pull_via(&s, &proxy, &cache, &url, &dest)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while proxy.total_bytes() < size / 8 {
        assert!(t0.elapsed() < Duration::from_secs(60), "first pull stalled");
        std::thread::sleep(Duration::from_millis(5));
    }
    let lock = tmp.path().join(".model.aero-pull.lock");
    assert!(lock.is_file(), "no lock file while pulling");
    let o = pull_via(&s, &proxy, &cache, &url, &dest).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("another pull is writing to it") && err.contains(".model.aero-pull.lock"),
        "{err}"
    );
    // The first is unharmed: it finishes with the source's bytes.
    let o = first.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_identical(&v1, &dest);
    assert!(!lock.exists(), "lock file left behind");
    // A pull after it (nothing left to fetch) takes the lock again.
    let j = run_json(&mut pull_via(&s, &proxy, &cache, &url, &dest));
    for (name, st) in states(&j) {
        if name != "model.aeroset.json" {
            assert_eq!(st, "unchanged", "{name}: {j}");
        }
    }
}

#[test]
fn an_attached_file_resumes_by_its_written_ranges_after_a_kill() {
    let s = server();
    let (_rt, _store, bucket) = setup(&s);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    // A sharded folder with a 24 MiB attached file: the set carries it in
    // the manifest's `files`, checked by its SHA-256 only.
    let src = tmp.path().join("folder");
    std::fs::create_dir_all(&src).unwrap();
    let mut weight_map = serde_json::Map::new();
    for p in 0..2usize {
        let name = format!("layers.{p}.weight");
        let file = format!("model-{p}.safetensors");
        aero_test_support::write_safetensors(
            &src.join(&file),
            &[(
                name.clone(),
                aero_test_support::safetensors::Dtype::F32,
                vec![1 << 20],
                aero_test_support::bytes(p as u64 + 7, 4 << 20),
            )],
            None,
        );
        weight_map.insert(name, file.into());
    }
    std::fs::write(
        src.join("model.safetensors.index.json"),
        serde_json::json!({"weight_map": weight_map}).to_string(),
    )
    .unwrap();
    std::fs::write(src.join("config.json"), r#"{"model_type": "test"}"#).unwrap();
    let extra = aero_test_support::bytes(99, 24 << 20);
    std::fs::write(src.join("tokenizer.model"), &extra).unwrap();
    let set = tmp.path().join("set");
    let o = super::remote_s3::bin(&s, &s.secret_key, &cache)
        .args([
            "convert-safetensors-sharded",
            src.to_str().unwrap(),
            set.to_str().unwrap(),
            "--no-fsync",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: Value =
        serde_json::from_slice(&std::fs::read(set.join("model.aeroset.json")).unwrap()).unwrap();
    assert!(
        m["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "tokenizer.model"),
        "{m}"
    );
    let proxy = behind_proxy(&s, &set, &bucket, "sets/a", &cache, 25_000_000);
    let url = format!("s3://{bucket}/sets/a/model.aeroset.json");
    let dest = tmp.path().join("model");
    let sent_for = |proxy: &Proxy| -> u64 {
        proxy
            .stats()
            .iter()
            .filter(|(p, _)| p.ends_with("/tokenizer.model"))
            .map(|(_, st)| st.bytes)
            .sum()
    };
    // Killed once three quarters of the attached file have crossed.
    let mut child = pull_via(&s, &proxy, &cache, &url, &dest)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while sent_for(&proxy) < extra.len() as u64 * 3 / 4 {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("pull ended ({st}) before the attached file was mostly sent");
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "pull stalled");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let j = run_json(&mut pull_via(&s, &proxy, &cache, &url, &dest));
    settled(&proxy);
    let sent = sent_for(&proxy);
    let f = j["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "tokenizer.model")
        .unwrap()
        .clone();
    println!(
        "attached file of {} bytes, killed once: {sent} bytes sent for it; the rerun {f}",
        extra.len()
    );
    assert_eq!(f["state"], "resumed", "{f}");
    // Three quarters had crossed; the 4 pieces in flight (1 MiB each) are
    // all the kill may have lost.
    assert!(
        f["reused"].as_u64().unwrap() >= extra.len() as u64 * 3 / 4 - (4 << 20),
        "{f}"
    );
    // What the kill lost is at most the 4 pieces (of 1 MiB) in flight.
    assert!(
        sent <= extra.len() as u64 + (4 << 20),
        "{sent} bytes sent for a {}-byte attached file",
        extra.len()
    );
    assert_identical(&set, &dest);
    assert_eq!(std::fs::read(dest.join("tokenizer.model")).unwrap(), extra);

    // A written range damaged on disk between the runs: the SHA-256
    // catches it, the unhashed ranges are fetched again, and the result is
    // still the source's bytes.
    let dest2 = tmp.path().join("again");
    let mut child = pull_via(&s, &proxy, &cache, &url, &dest2)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = tmp.path().join(".again.aero-pull/tokenizer.model.partial");
    let side = tmp
        .path()
        .join(".again.aero-pull/tokenizer.model.partial.json");
    let t0 = Instant::now();
    let written = loop {
        let w: Option<(u64, u64)> = std::fs::read(&side)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| {
                let r = v["written"].as_array()?.first()?.clone();
                Some((r[0].as_u64()?, r[1].as_u64()?))
            });
        if let Some((a, b)) = w.filter(|(a, b)| b - a >= 4 << 20) {
            break (a, b);
        }
        assert!(child.try_wait().unwrap().is_none(), "pull ended first");
        assert!(t0.elapsed() < Duration::from_secs(120), "pull stalled");
        std::thread::sleep(Duration::from_millis(2));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let at = (written.0 + written.1) / 2;
    let mut b = std::fs::read(&partial).unwrap();
    b[at as usize] ^= 0x20;
    std::fs::write(&partial, b).unwrap();
    let j = run_json(&mut pull_via(&s, &proxy, &cache, &url, &dest2));
    let f = j["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "tokenizer.model")
        .unwrap()
        .clone();
    assert!(
        f["fetched"].as_u64().unwrap() >= extra.len() as u64,
        "the damaged kept range was not fetched again: {f}"
    );
    assert_identical(&set, &dest2);
}
