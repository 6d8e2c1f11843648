//! `aerotensor pull` against a real nginx behind the CDN-like proxy
//! (`aero_test_support::netem`: 20 ms per request, a rate cap per
//! connection), counting the bytes the server sent:
//!
//! - a 256 MiB set of 8 parts, pulled with SIGKILL at three points and
//!   rerun: at most 1.05 × the set's size crosses the proxy in total, and
//!   the result is byte-identical to the source and validates;
//! - a byte corrupted once in transit is fetched again, never kept; a
//!   byte corrupted on every fetch fails the pull (exit 1) and installs
//!   nothing;
//! - a revision written with `--like` is pulled over the first: only its
//!   changed files cross the network;
//! - a lone `.aero` file.
//!
//! Runs when `cargo xtask ci` has started nginx and set AERO_NGINX_URL and
//! AERO_NGINX_ROOT; `#[ignore]`d otherwise, and fails without them:
//!
//! ```sh
//! cargo nextest run --features aero-io/http --run-ignored only -E 'test(/^pull_nginx::/)'
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aero_test_support::netem::{Config, Fault, Proxy};
use aero_test_support::{Cli, safetensors::Dtype, write_safetensors};

const MIB: usize = 1 << 20;

fn cli() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_aerotensor"))
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: this test needs the nginx started by `cargo xtask ci`")
    })
}

/// Writes two revisions of a set of 8 parts of 32 MiB (two 16 MiB
/// tensors each, one shard per part, 1 MiB page hashes) under `dir`: `v1`,
/// and `v2` converted with `--like v1` after one tensor changed (so one
/// part, the index and the manifest differ). Returns both set directories.
pub(crate) fn write_revisions(dir: &Path, parts: usize, tensor_mib: usize) -> (PathBuf, PathBuf) {
    let mut out = Vec::new();
    for (rev, changed_seed) in [("v1", 0u64), ("v2", 999u64)] {
        let st = dir.join(format!("st-{rev}"));
        let _ = std::fs::remove_dir_all(&st);
        std::fs::create_dir_all(&st).unwrap();
        let mut weight_map = serde_json::Map::new();
        for p in 0..parts {
            let mut tensors = Vec::new();
            for t in 0..2 {
                let i = p * 2 + t;
                // Tensor 5 (in part 2) is the one v2 changes.
                let seed = if i == 5 && changed_seed != 0 {
                    changed_seed
                } else {
                    i as u64 + 1
                };
                tensors.push((
                    format!("layers.{i:02}.weight"),
                    Dtype::F32,
                    vec![tensor_mib * MIB / 4],
                    aero_test_support::bytes(seed, tensor_mib * MIB),
                ));
            }
            let file = format!("model-{p}.safetensors");
            write_safetensors(&st.join(&file), &tensors, None);
            for (n, ..) in &tensors {
                weight_map.insert(n.clone(), file.clone().into());
            }
        }
        std::fs::write(
            st.join("model.safetensors.index.json"),
            serde_json::json!({"weight_map": weight_map}).to_string(),
        )
        .unwrap();
        let set = dir.join(rev);
        let _ = std::fs::remove_dir_all(&set);
        let shard = format!("{}M", 2 * tensor_mib);
        let mut args: Vec<std::ffi::OsString> = vec![
            "convert-safetensors-sharded".into(),
            st.clone().into(),
            set.clone().into(),
            "--max-part-shards".into(),
            "1".into(),
            "--max-shard-bytes".into(),
            shard.into(),
            "--no-fsync".into(),
            "--model-name".into(),
            "pull-test".into(),
        ];
        if rev == "v2" {
            args.push("--like".into());
            args.push(dir.join("v1").into());
        }
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        cli().ok(&refs);
        std::fs::remove_dir_all(&st).unwrap();
        out.push(set);
    }
    (out.remove(0), out.remove(0))
}

/// Every file of a set directory, sorted, with its bytes' length.
pub(crate) fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Asserts two set directories hold the same files with the same bytes
/// (what `cmp` would say of each pair).
pub(crate) fn assert_identical(a: &Path, b: &Path) {
    let (la, lb) = (listing(a), listing(b));
    assert_eq!(la, lb, "{} vs {}", a.display(), b.display());
    for (name, _) in la {
        let st = Command::new("cmp")
            .arg(a.join(&name))
            .arg(b.join(&name))
            .status()
            .unwrap();
        assert!(st.success(), "cmp {name}: differs");
    }
}

pub(crate) fn set_size(dir: &Path) -> u64 {
    listing(dir).iter().map(|(_, n)| n).sum()
}

fn pull_cmd(url: &str, dest: &Path, jobs: usize) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aerotensor"));
    c.env("NO_COLOR", "1")
        .args([
            "pull",
            "--no-cache",
            "--json",
            "--jobs",
            &jobs.to_string(),
            url,
        ])
        .arg(dest);
    c
}

/// Waits (the proxy counts a body's bytes just after sending them) until
/// its total stops moving.
pub(crate) fn settled(proxy: &Proxy) -> u64 {
    let mut last = proxy.total_bytes();
    loop {
        std::thread::sleep(Duration::from_millis(150));
        let now = proxy.total_bytes();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Starts the pull `cmd` makes three times and kills it (SIGKILL) once
/// `proxy` has sent about a quarter, a half and three quarters of the
/// `size`-byte set; after each kill nothing is installed at `dest` and the
/// staging directory `stage` is kept.
pub(crate) fn kill_at_quarters(
    mut cmd: impl FnMut() -> Command,
    proxy: &Proxy,
    size: u64,
    dest: &Path,
    stage: &Path,
) {
    for frac in [0.25, 0.5, 0.75] {
        let mut child = cmd()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        let target = (size as f64 * frac) as u64;
        while proxy.total_bytes() < target {
            if let Some(st) = child.try_wait().unwrap() {
                panic!("pull ended ({st}) before {frac} of the set was sent");
            }
            assert!(t0.elapsed() < Duration::from_secs(120), "pull stalled");
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!dest.exists(), "a killed pull installed {}", dest.display());
        assert!(stage.is_dir(), "nothing kept after the kill at {frac}");
    }
}

/// After [`kill_at_quarters`] and a pull run to the end (its `--json`
/// summary `j`): the server sent at most 1.05 × the set's `size` in all,
/// the last run kept more than half from disk, the staging directory is
/// gone and `dest` is byte-identical to `src`. Prints the figures.
pub(crate) fn assert_resumed(
    what: &str,
    proxy: &Proxy,
    size: u64,
    j: &serde_json::Value,
    src: &Path,
    dest: &Path,
    stage: &Path,
) {
    let sent = settled(proxy);
    println!(
        "{what} of a {size}-byte set killed 3 times: the server sent {sent} bytes ({:.4}x); last run fetched {} and reused {}",
        sent as f64 / size as f64,
        j["bytes_fetched"],
        j["bytes_reused"]
    );
    assert!(
        j["bytes_reused"].as_u64().unwrap() > size / 2,
        "the last run kept too little: {j}"
    );
    assert!(
        sent as f64 <= 1.05 * size as f64,
        "{sent} bytes sent for a {size}-byte set"
    );
    assert!(!stage.exists(), "staging left behind");
    assert_identical(src, dest);
}

#[test]
#[ignore = "needs nginx: run by cargo xtask ci"]
fn pull_resumes_after_kills_refetches_damage_and_updates_part_by_part() {
    let root = PathBuf::from(env("AERO_NGINX_ROOT")).join("pull-set");
    std::fs::create_dir_all(&root).unwrap();
    let (v1, v2) = write_revisions(&root, 8, 16);
    let size = set_size(&v1);
    let proxy = Proxy::start(Config::new(
        &env("AERO_NGINX_URL"),
        Duration::from_millis(20),
        Some(25_000_000),
    ))
    .unwrap();
    let url = proxy.url("/pull-set/v1/model.aeroset.json");
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("model");
    let stage = tmp.path().join(".model.aero-pull");

    // Killed (SIGKILL) at about a quarter, half and three quarters of the
    // bytes, then run to the end.
    kill_at_quarters(|| pull_cmd(&url, &dest, 4), &proxy, size, &dest, &stage);
    let o = pull_cmd(&url, &dest, 4).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_resumed("pull", &proxy, size, &j, &v1, &dest, &stage);
    let v = cli().run(&["validate".as_ref(), "--full".as_ref(), dest.as_os_str()]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));

    // A byte corrupted once in transit: fetched again, never kept.
    proxy.reset();
    let part = "/pull-set/v1/part-003.aero";
    let part_len = std::fs::metadata(v1.join("part-003.aero")).unwrap().len();
    let bad_at = part_len / 2 + 12345;
    proxy.fault_at(part, bad_at, Fault::CorruptByte(bad_at), 1);
    let dest2 = tmp.path().join("again");
    let o = pull_cmd(&url, &dest2, 4).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = j["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "part-003.aero")
        .unwrap();
    assert!(f["refetched_units"].as_u64().unwrap() >= 1, "{f}");
    assert_identical(&v1, &dest2);
    let sent = settled(&proxy);
    println!("pull with one corrupted byte: the server sent {sent} bytes for {size}");
    assert!(sent <= size + 4 * MIB as u64, "{sent}");
    std::fs::remove_dir_all(&dest2).unwrap();

    // Corrupted on every fetch: exit 1, nothing installed, and the damaged
    // range is not recorded as verified.
    proxy.fault_at(part, bad_at, Fault::CorruptByte(bad_at), 100);
    let o = pull_cmd(&url, &dest2, 4).output().unwrap();
    proxy.clear_faults();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stdout);
    assert!(err.contains("part-003.aero"), "{err}");
    assert!(!dest2.exists());
    let side = tmp
        .path()
        .join(".again.aero-pull/part-003.aero.partial.json");
    let side: serde_json::Value = serde_json::from_slice(&std::fs::read(&side).unwrap()).unwrap();
    for r in side["verified"].as_array().unwrap() {
        let (a, b) = (r[0].as_u64().unwrap(), r[1].as_u64().unwrap());
        assert!(
            !(a <= bad_at && bad_at < b),
            "damaged byte recorded verified: {side}"
        );
    }

    // The next revision over the first: only what changed crosses.
    let changed: Vec<(String, u64)> = listing(&v2)
        .into_iter()
        .filter(|(n, _)| std::fs::read(v1.join(n)).ok() != std::fs::read(v2.join(n)).ok())
        .collect();
    let names: Vec<&str> = changed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["index.aero", "model.aeroset.json", "part-002.aero"],
        "--like changed other files"
    );
    let changed_bytes: u64 = changed.iter().map(|(_, n)| n).sum();
    proxy.reset();
    let url2 = proxy.url("/pull-set/v2/model.aeroset.json");
    let o = pull_cmd(&url2, &dest, 4).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sent = settled(&proxy);
    println!(
        "update to v2: {} files changed ({changed_bytes} bytes); the server sent {sent} bytes, pull fetched {}",
        changed.len(),
        j["bytes_fetched"]
    );
    assert_eq!(j["bytes_fetched"].as_u64().unwrap(), changed_bytes, "{j}");
    assert!(
        sent <= changed_bytes + (64 << 10),
        "{sent} sent for {changed_bytes}"
    );
    for f in j["files"].as_array().unwrap() {
        let changed_file = names.contains(&f["path"].as_str().unwrap());
        assert_eq!(f["state"] == "unchanged", !changed_file, "{f}");
    }
    assert_identical(&v2, &dest);
    let v = cli().run(&["validate".as_ref(), "--full".as_ref(), dest.as_os_str()]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));

    // A lone file.
    let one = tmp.path().join("one.aero");
    let o = pull_cmd(&proxy.url("/pull-set/v1/part-005.aero"), &one, 4)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(&one).unwrap(),
        std::fs::read(v1.join("part-005.aero")).unwrap()
    );
    std::fs::remove_dir_all(&root).unwrap();
}
