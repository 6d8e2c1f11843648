//! Remote reads through the `aerotensor` binary with several range requests
//! in flight: a set written by `convert-safetensors-sharded` from files the
//! `safetensors` crate wrote, served by the static test origin behind the
//! latency/rate-limiting proxy (`aero_test_support::{origin, netem}`).
//! Whole-set validation reads every file once, the parts concurrently;
//! `--jobs` / `AEROTENSOR_REMOTE_JOBS` bound the requests in flight and bad
//! values are refused; Ctrl-C leaves nothing half-written in the cache.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aero_test_support::netem::{Config, Fault, Proxy};
use aero_test_support::origin::Origin;
use aero_test_support::{Cli, safetensors::Dtype, write_safetensors};

fn cli() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_aerotensor"))
}

const MIB: usize = 1 << 20;

/// A set in `root/set` of one shard per part, at most 4 MiB per shard: 12
/// tensors of 1 MiB (three per shard) and one of 24 MiB (a shard of its
/// own), so 5 parts. Returns the tensor names.
fn write_set(root: &Path) -> Vec<String> {
    let st = root.join("st");
    std::fs::create_dir_all(&st).unwrap();
    let mut weight_map = serde_json::Map::new();
    let mut names = Vec::new();
    for p in 0..4 {
        let mut tensors = Vec::new();
        for t in 0..3 {
            let name = format!("layers.{p}.w{t}");
            tensors.push((
                name.clone(),
                Dtype::F32,
                vec![MIB / 4],
                aero_test_support::bytes((p * 10 + t) as u64, MIB),
            ));
            names.push(name);
        }
        if p == 3 {
            let name = "lm_head.weight".to_string();
            tensors.push((
                name.clone(),
                Dtype::F32,
                vec![6 * MIB],
                aero_test_support::bytes(99, 24 * MIB),
            ));
            names.push(name);
        }
        let file = format!("model-{p}.safetensors");
        write_safetensors(&st.join(&file), &tensors, None);
        for (n, ..) in &tensors {
            weight_map.insert(n.clone(), file.clone().into());
        }
    }
    std::fs::write(
        st.join("model.safetensors.index.json"),
        serde_json::json!({"metadata": {}, "weight_map": weight_map}).to_string(),
    )
    .unwrap();
    cli().ok(&[
        "convert-safetensors-sharded".as_ref(),
        st.as_os_str(),
        root.join("set").as_os_str(),
        "--max-part-shards".as_ref(),
        "1".as_ref(),
        "--max-shard-bytes".as_ref(),
        "4M".as_ref(),
        "--no-fsync".as_ref(),
    ]);
    names
}

struct Served {
    dir: tempfile::TempDir,
    _origin: Origin,
    proxy: Proxy,
}

impl Served {
    fn set_url(&self) -> String {
        self.proxy.url("/set/model.aeroset.json")
    }
    fn set_dir(&self) -> PathBuf {
        self.dir.path().join("set")
    }
}

fn serve(delay: Duration, rate: Option<u64>) -> (Served, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let names = write_set(dir.path());
    let origin = Origin::serve(dir.path()).unwrap();
    let proxy = Proxy::start(Config::new(&origin.base_url(), delay, rate)).unwrap();
    (
        Served {
            dir,
            _origin: origin,
            proxy,
        },
        names,
    )
}

#[test]
fn validating_a_remote_set_reads_each_file_once_and_the_parts_together() {
    let (s, _) = serve(Duration::from_millis(20), None);
    let o = cli().run(&["validate", "--full", "--no-cache", "--json", &s.set_url()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = aero_test_support::json(&o);
    assert_eq!(r["verdict"], "valid", "{r}");
    // Every file crossed the network once: its size, plus the few KiB of
    // metadata chunks read again by their own checks.
    // (The proxy counts bytes just after sending them: let the last count
    // settle.)
    std::thread::sleep(std::time::Duration::from_millis(200));
    for e in std::fs::read_dir(s.set_dir()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let size = std::fs::metadata(&p).unwrap().len();
        let sent = s.proxy.path_stats(&format!("/set/{name}")).bytes;
        assert!(
            sent >= size && sent < size + (64 << 10),
            "{name}: {sent} bytes sent for a {size}-byte file"
        );
    }
    let parts = std::fs::read_dir(s.set_dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("part-")
        })
        .count();
    assert!(parts >= 4, "{parts} parts");
    assert!(
        s.proxy.peak_in_flight() >= 4,
        "peak {}",
        s.proxy.peak_in_flight()
    );
    // Damage in transit on one part: INVALID (exit 1), naming the part.
    s.proxy
        .fault("/set/part-002.aero", Fault::CorruptByte(3 * MIB as u64 / 2));
    let o = cli().run(&["validate", "--full", "--no-cache", &s.set_url()]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("part-002.aero"), "{out}");
    assert!(out.contains("SHA-256 mismatch"), "{out}");
}

#[test]
fn jobs_bound_the_requests_in_flight_and_bad_values_are_refused() {
    let (s, names) = serve(Duration::from_millis(30), None);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lm_head.bin");
    let local = dir.path().join("local.bin");
    cli().ok(&[
        "fetch-tensor".as_ref(),
        s.set_dir().join("model.aeroset.json").as_os_str(),
        "lm_head.weight".as_ref(),
        local.as_os_str(),
    ]);
    for (jobs, env) in [(Some("2"), None), (None, Some("3")), (None, None)] {
        s.proxy.reset();
        let mut c = cli().cmd();
        c.args(["fetch-tensor", "--no-cache"]);
        if let Some(j) = jobs {
            c.args(["--jobs", j]);
        }
        if let Some(e) = env {
            c.env("AEROTENSOR_REMOTE_JOBS", e);
        } else {
            c.env_remove("AEROTENSOR_REMOTE_JOBS");
        }
        c.args([&s.set_url(), "lm_head.weight"]).arg(&out);
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&local).unwrap());
        let peak = s.proxy.peak_in_flight();
        // (The proxy counts a request until its last byte is sent, so the
        // next one may be counted a moment early: one more.)
        match (jobs, env) {
            (Some(_), _) => assert!(peak <= 3, "--jobs 2: peak {peak}"),
            (_, Some(_)) => assert!(peak <= 4, "AEROTENSOR_REMOTE_JOBS=3: peak {peak}"),
            _ => assert!(peak >= 9, "default 16: peak {peak}"),
        }
    }
    // Refused: by flag (usage error) and by environment (named).
    let o = cli().run(&["list", "--jobs", "0", &s.set_url()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--jobs"));
    let o = cli()
        .cmd()
        .env("AEROTENSOR_REMOTE_JOBS", "many")
        .args(["list", &s.set_url()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("AEROTENSOR_REMOTE_JOBS"), "{err}");
    assert!(err.starts_with("aerotensor: error:"), "{err}");
    assert!(!names.is_empty());
}

#[test]
#[cfg(unix)]
fn ctrl_c_leaves_nothing_half_written_in_the_cache() {
    // 8 MB/s per connection: the 24 MiB tensor takes about half a second
    // on 8 connections, so the interrupt lands while pieces are arriving
    // and being written to the cache.
    let (s, _) = serve(Duration::from_millis(20), Some(8_000_000));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("out.bin");
    let mut interrupted = 0;
    for delay in [150u64, 300] {
        let mut child = cli()
            .cmd()
            .arg("--cache-dir")
            .arg(&cache)
            .args(["fetch-tensor", &s.set_url(), "lm_head.weight"])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let started = Instant::now();
        let killed = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        if status.success() {
            // Finished before the signal: nothing to check this round.
            std::fs::remove_file(&out).unwrap();
            continue;
        }
        assert_eq!(status.code(), Some(130), "{status:?}");
        interrupted += 1;
        assert!(!out.exists(), "no output from an interrupted fetch");
        assert!(aero_test_support::leftovers(dir.path()).is_empty());
        check_cache(&cache);
    }
    assert!(interrupted > 0, "no fetch was interrupted");
    // The cache left behind serves a complete, verified fetch.
    cli().ok(&[
        "--cache-dir".as_ref(),
        cache.as_os_str(),
        "fetch-tensor".as_ref(),
        s.set_url().as_ref(),
        "lm_head.weight".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 24 * MIB as u64);
    check_cache(&cache);
}

/// Every cache entry is whole (its bytes match the BLAKE3 stored after
/// them) and no temporary file is left.
fn check_cache(dir: &Path) {
    let Ok(subs) = std::fs::read_dir(dir) else {
        return;
    };
    for sub in subs {
        let sub = sub.unwrap().path();
        if !sub.is_dir() {
            continue;
        }
        for e in std::fs::read_dir(&sub).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.ends_with(".bin"), "half-written cache file {name}");
            let data = std::fs::read(&p).unwrap();
            assert!(data.len() >= 32, "{name}");
            let (body, tail) = data.split_at(data.len() - 32);
            assert_eq!(blake3::hash(body).as_bytes(), tail, "{name} is not whole");
        }
    }
}
