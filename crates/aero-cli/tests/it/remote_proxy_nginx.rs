//! End to end against a real nginx behind the latency/rate-limiting proxy
//! (`aero_test_support::netem`: 20 ms per request, 50 MB/s per connection,
//! like a CDN): a set written by `convert-safetensors-sharded` is validated
//! and read with several range requests in flight, each file crossing the
//! network once, and faults injected into single ranges while others are in
//! flight end in the right bytes or a clear error.
//!
//! Runs when `cargo xtask ci` has started nginx and set AERO_NGINX_URL and
//! AERO_NGINX_ROOT (a writable directory nginx serves); ignored otherwise:
//!
//! ```sh
//! cargo nextest run -p aero-cli --features aero-io/http --run-ignored only -E 'test(/^remote_proxy_nginx::/)'
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// Writes a set of 4 parts under `dir` (one shard of at most 8 MiB each, a
/// 16 MiB tensor in a part of its own).
fn write_set(dir: &Path) {
    let st = dir.join("st");
    std::fs::create_dir_all(&st).unwrap();
    let mut tensors = Vec::new();
    for t in 0..12 {
        tensors.push((
            format!("layers.{t:02}.weight"),
            Dtype::F32,
            vec![MIB / 2],
            aero_test_support::bytes(t, 2 * MIB),
        ));
    }
    tensors.push((
        "lm_head.weight".to_string(),
        Dtype::F32,
        vec![4 * MIB],
        aero_test_support::bytes(77, 16 * MIB),
    ));
    let mut weight_map = serde_json::Map::new();
    for (i, chunk) in tensors.chunks(5).enumerate() {
        let file = format!("model-{i}.safetensors");
        write_safetensors(&st.join(&file), chunk, None);
        for (n, ..) in chunk {
            weight_map.insert(n.clone(), file.clone().into());
        }
    }
    std::fs::write(
        st.join("model.safetensors.index.json"),
        serde_json::json!({"weight_map": weight_map}).to_string(),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(dir.join("set"));
    cli().ok(&[
        "convert-safetensors-sharded".as_ref(),
        st.as_os_str(),
        dir.join("set").as_os_str(),
        "--max-part-shards".as_ref(),
        "1".as_ref(),
        "--max-shard-bytes".as_ref(),
        "8M".as_ref(),
        "--no-fsync".as_ref(),
    ]);
}

fn files(dir: &Path) -> Vec<(String, u64)> {
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

#[test]
#[ignore = "needs nginx: run by cargo xtask ci"]
fn a_set_through_a_cdn_like_proxy_is_read_in_parallel_once_and_survives_faults() {
    let root = PathBuf::from(env("AERO_NGINX_ROOT")).join("proxy-set");
    std::fs::create_dir_all(&root).unwrap();
    write_set(&root);
    let set_dir = root.join("set");
    let proxy = Proxy::start(Config::new(
        &env("AERO_NGINX_URL"),
        Duration::from_millis(20),
        Some(50_000_000),
    ))
    .unwrap();
    let url = proxy.url("/proxy-set/set/model.aeroset.json");
    let tmp = tempfile::tempdir().unwrap();

    // Full validation: VALID, every file once, several requests in flight.
    let o = cli().run(&["validate", "--full", "--no-cache", "--json", &url]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(aero_test_support::json(&o)["verdict"], "valid");
    let list = files(&set_dir);
    // (The proxy counts bytes just after sending them: let the last count
    // settle.)
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(list.iter().filter(|(n, _)| n.starts_with("part-")).count() >= 4);
    for (name, size) in &list {
        let sent = proxy.path_stats(&format!("/proxy-set/set/{name}")).bytes;
        assert!(
            sent >= *size && sent < size + (64 << 10),
            "{name}: {sent} bytes for {size}"
        );
    }
    assert!(
        proxy.peak_in_flight() >= 4,
        "peak {}",
        proxy.peak_in_flight()
    );

    // The 16 MiB tensor, as a local read gives it.
    let local = tmp.path().join("local.bin");
    cli().ok(&[
        "fetch-tensor".as_ref(),
        set_dir.join("model.aeroset.json").as_os_str(),
        "lm_head.weight".as_ref(),
        local.as_os_str(),
    ]);
    let want = std::fs::read(&local).unwrap();
    let fetch = |extra: &[&str], out: &Path| {
        let mut c = cli().cmd();
        c.args(extra)
            .args(["fetch-tensor", &url, "lm_head.weight"])
            .arg(out);
        c.output().unwrap()
    };
    let part = list
        .iter()
        .rev()
        .find(|(n, s)| n.starts_with("part-") && *s > 16 * MIB as u64)
        .map(|(n, _)| format!("/proxy-set/set/{n}"))
        .expect("the part of the 16 MiB tensor");
    // One fault of each kind on one range among those in flight (16 MiB in
    // pieces of 1 MiB with the default 16 jobs, from a few KiB into the
    // part: `at(k)` is in the middle of the k-th 2 MiB, past the 64 KiB read
    // at open).
    let at = |k: u64| 4096 + k * 2 * MIB as u64 + MIB as u64;
    proxy.fault_at(part.as_str(), at(1), Fault::Fail503, 1);
    proxy.fault_at(part.as_str(), at(2), Fault::Short206, 1);
    proxy.fault_at(part.as_str(), at(3), Fault::DropBodyAfter(10_000), 1);
    proxy.fault_at(part.as_str(), at(4), Fault::IgnoreRange, 1);
    proxy.fault_at(part.as_str(), at(5), Fault::CorruptByte(at(5)), 1);
    let out = tmp.path().join("a.bin");
    let cache = tmp.path().join("cache");
    let o = fetch(&["--cache-dir", cache.to_str().unwrap()], &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), want);
    // The same from the cache alone, with every range of the tensor refused
    // (past the 64 KiB read at open, which must still answer).
    for k in 1..64 {
        let o = 4096 + k * (MIB as u64 / 4) + 1000;
        proxy.fault_at(part.as_str(), o, Fault::Fail503, 1000);
    }
    let o = fetch(&["--cache-dir", cache.to_str().unwrap()], &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), want);
    proxy.clear_faults();
    // A wrong Content-Range on one range: a clear error, no output.
    std::fs::remove_file(&out).unwrap();
    proxy.fault_at(part.as_str(), at(6), Fault::WrongContentRange(16), 1);
    let o = fetch(&["--no-cache"], &out);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Content-Range"), "{err}");
    assert!(!out.exists());
    // One job: the same bytes, one request at a time.
    proxy.reset();
    let o = fetch(&["--no-cache", "--jobs", "1"], &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), want);
    assert!(
        proxy.peak_in_flight() <= 2,
        "peak {}",
        proxy.peak_in_flight()
    );
}
