//! `aerotensor push` and `pull` against the in-process S3 server (s3s-fs,
//! SigV4 checked; see `remote_s3.rs`): a set written by
//! `convert-safetensors-sharded` is pushed while another thread lists the
//! bucket as fast as it can, and the manifest never appears before every
//! file it names; pushing again skips every file; a `--like` revision
//! uploads only its changed files; `--base-url` rewrites the uploaded
//! manifest; pulling from `s3://` gives files byte-identical to the source
//! that validate, and pulling the revision over the first fetches only the
//! changed files.
#![cfg(feature = "s3")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use serde_json::Value;

use super::pull_nginx::{assert_identical, listing, write_revisions};
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
    let size: u64 = listing(&v1).iter().map(|(_, n)| n).sum();

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
