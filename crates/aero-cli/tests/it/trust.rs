//! Trust by default, tried from outside as a user meets it: damaged bytes are
//! never handed out, outputs are never destroyed or left half-written, and
//! nothing from a file reaches the terminal raw.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aero_test_support::{
    Cli, StTensor, bytes, f32_model, json, leftovers, safetensors, write_safetensors,
};

const UUID: &str = "0123456789abcdef0123456789abcdef";

fn cli() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_aerotensor"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Flips one byte in the middle of tensor `name`'s stored bytes.
fn flip_tensor_byte(file: &Path, name: &str) -> u64 {
    let f = aero_io::AeroFile::open(file).unwrap();
    let t = f.tensor_info(name).unwrap().clone();
    let (off, len) = f.tensor_range(&t).unwrap();
    drop(f);
    let at = off + len / 2;
    let mut b = std::fs::read(file).unwrap();
    b[at as usize] ^= 0x20;
    std::fs::write(file, b).unwrap();
    at
}

/// A directory with a safetensors model and AERO files converted from it
/// with each kind of protection.
struct Models {
    dir: tempfile::TempDir,
}

impl Models {
    fn new() -> Models {
        let dir = tempfile::tempdir().unwrap();
        let st = dir.path().join("model.safetensors");
        write_safetensors(&st, &f32_model(8, 4096), None);
        let m = Models { dir };
        let conv = |out: &str, extra: &[&str]| {
            let mut a = vec![
                "convert",
                s(&st),
                out,
                "--uuid",
                UUID,
                "--max-shard-bytes",
                "40K",
            ];
            a.extend_from_slice(extra);
            cli().ok(&a);
        };
        conv(s(&m.p("hashes.aero")), &[]);
        conv(
            s(&m.p("pages.aero")),
            &["--no-tensor-hash", "--page-hashes=4K"],
        );
        conv(
            s(&m.p("shard.aero")),
            &["--no-tensor-hash", "--no-page-hashes"],
        );
        m
    }

    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn shard_start(file: &Path, name: &str) -> u64 {
    let f = aero_io::AeroFile::open(file).unwrap();
    let t = f.tensor_info(name).unwrap();
    f.shard(t.shard_id).unwrap().offset
}

#[test]
fn one_flipped_weight_byte_is_refused_by_every_reader() {
    let m = Models::new();
    let victim = "layer.003.weight";
    for kind in ["shard", "pages", "hashes"] {
        let file = m.p(&format!("{kind}-bad.aero"));
        std::fs::copy(m.p(&format!("{kind}.aero")), &file).unwrap();
        let at = flip_tensor_byte(&file, victim);
        // The library's verified read.
        let f = aero_io::AeroFile::open(&file).unwrap();
        let e = f.tensor(victim).unwrap_err();
        assert!(matches!(e, aero_io::Error::Corrupt { .. }), "{kind}: {e}");
        // Other tensors of a file with finer hashes still read.
        if kind != "shard" {
            f.tensor("layer.000.weight").unwrap();
        }
        drop(f);
        let out = m.p(&format!("{kind}-out"));
        let readers: Vec<Vec<&str>> = vec![
            vec!["extract", s(&file), victim, s(&out)],
            vec!["export-safetensors", s(&file), s(&out)],
            vec!["export-gguf", s(&file), s(&out)],
            vec!["convert", s(&file), s(&out)],
            vec!["repack", s(&file), s(&out)],
        ];
        for args in readers {
            let o = cli().run(&args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{kind} {args:?}: {err}");
            assert!(!out.exists(), "{kind} {args:?}: output written");
            assert!(leftovers(m.dir.path()).is_empty(), "{kind} {args:?}");
            assert!(
                err.contains(s(&file)) && err.contains("corrupt"),
                "{kind} {args:?}: {err}"
            );
            assert_eq!(err.lines().count(), 1, "{err}");
        }
        // The error names the file, the shard, the tensor and an offset.
        let o = cli().run(&["extract", s(&file), victim, "-"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(o.stdout.is_empty(), "{kind}: bytes reached stdout");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(victim) && err.contains("weights.shard") && err.contains("offset"),
            "{kind}: {err}"
        );
        let check = match kind {
            "hashes" => "hash_b3".to_string(),
            "pages" => "PHSH page".to_string(),
            _ => "BLAKE3".to_string(),
        };
        assert!(err.contains(&check), "{kind}: {err}");
        if kind == "pages" {
            // The page holding the flipped byte is named by its offset.
            let page_at = at - (at - shard_start(&file, victim)) % 4096;
            assert!(err.contains(&format!("offset {page_at}")), "{err}");
        }
        // Quick validation says what it did not check; full validation fails.
        let o = cli().run(&["validate", s(&file)]);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("weight bytes NOT checked"),
            "{kind}"
        );
        assert_eq!(
            cli().run(&["validate", "--full", s(&file)]).status.code(),
            Some(1)
        );
        // Explicitly unverified access still works, and says so.
        let o = cli().run(&["extract", "--no-verify", s(&file), victim, s(&out)]);
        assert!(o.status.success());
        assert!(String::from_utf8_lossy(&o.stderr).contains("--no-verify"));
        std::fs::remove_file(&out).unwrap();
    }
}

/// A two-file sharded safetensors checkpoint.
fn sharded_input(dir: &Path) -> PathBuf {
    let inp = dir.join("sharded");
    std::fs::create_dir_all(&inp).unwrap();
    let model = f32_model(6, 2048);
    let (a, b) = model.split_at(3);
    write_safetensors(&inp.join("model-00001-of-00002.safetensors"), a, None);
    write_safetensors(&inp.join("model-00002-of-00002.safetensors"), b, None);
    let mut map = serde_json::Map::new();
    for (i, (n, ..)) in model.iter().enumerate() {
        let file = if i < 3 {
            "model-00001-of-00002.safetensors"
        } else {
            "model-00002-of-00002.safetensors"
        };
        map.insert(n.clone(), file.into());
    }
    std::fs::write(
        inp.join("model.safetensors.index.json"),
        serde_json::to_vec(&serde_json::json!({"metadata": {}, "weight_map": map})).unwrap(),
    )
    .unwrap();
    inp
}

#[test]
fn a_damaged_set_part_is_refused_by_fetch_tensor_and_extract() {
    let d = tempfile::tempdir().unwrap();
    let inp = sharded_input(d.path());
    let set = d.path().join("set");
    cli().ok(&[
        "convert-safetensors-sharded",
        s(&inp),
        s(&set),
        "--no-tensor-hash",
        "--no-page-hashes",
        "--max-shard-bytes",
        "16K",
        "--max-part-shards",
        "1",
    ]);
    let aset = aero_set::AeroSet::open(&set).unwrap();
    let (loc, ..) = aset.resolve_tensor("layer.004.weight").unwrap();
    let part = set.join(&aset.manifest().parts[loc.part].file.path);
    drop(aset);
    flip_tensor_byte(&part, "layer.004.weight");
    let out = d.path().join("t.bin");
    for args in [
        vec!["fetch-tensor", s(&set), "layer.004.weight", s(&out)],
        vec!["extract", s(&set), "layer.004.weight", s(&out)],
    ] {
        let o = cli().run(&args);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!out.exists());
    }
    // An undamaged tensor of another part still reads.
    cli().ok(&["fetch-tensor", s(&set), "layer.000.weight", s(&out)]);
    assert_eq!(std::fs::read(&out).unwrap(), bytes(1, 2048 * 4));
}

fn mkfifo(p: &Path) {
    let st = Command::new("mkfifo").arg(p).status().unwrap();
    assert!(st.success(), "mkfifo");
}

/// Reads a FIFO to the end on another thread.
fn drain(p: &Path) -> std::thread::JoinHandle<Vec<u8>> {
    let p = p.to_path_buf();
    std::thread::spawn(move || std::fs::read(p).unwrap())
}

#[test]
fn special_outputs_are_written_through_and_never_replaced() {
    let m = Models::new();
    let d = m.dir.path();
    let st = m.p("model.safetensors");
    let aero = m.p("hashes.aero");
    cli().ok(&["export-gguf", s(&aero), s(&m.p("model.gguf"))]);
    let set = m.p("set");
    cli().ok(&["convert-safetensors-sharded", s(&sharded_input(d)), s(&set)]);
    // A character device: a real node where we may create one (root),
    // always a symlink to /dev/null.
    let node = m.p("null-node");
    let made_node = Command::new("mknod")
        .args([s(&node), "c", "1", "3"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|st| st.success());
    if !made_node {
        eprintln!("note: mknod not permitted here; testing a symlink to /dev/null only");
    }
    let link = m.p("null-link");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    type Writer<'a> = (&'a str, Box<dyn Fn(&str) -> Vec<String> + 'a>);
    let v = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let writers: Vec<Writer<'_>> = vec![
        (
            "convert-safetensors",
            Box::new(|o| v(&["convert-safetensors", s(&st), o, "--uuid", UUID])),
        ),
        (
            "convert-gguf",
            Box::new(|o| v(&["convert-gguf", s(&m.p("model.gguf")), o, "--uuid", UUID])),
        ),
        (
            "convert",
            Box::new(|o| v(&["convert", s(&st), o, "--uuid", UUID])),
        ),
        (
            "repack",
            Box::new(|o| v(&["repack", s(&aero), o, "--uuid", UUID])),
        ),
        (
            "export-safetensors",
            Box::new(|o| v(&["export-safetensors", s(&aero), o])),
        ),
        (
            "export-gguf",
            Box::new(|o| v(&["export-gguf", s(&aero), o])),
        ),
        (
            "extract",
            Box::new(|o| v(&["extract", s(&aero), "layer.002.weight", o])),
        ),
        (
            "fetch-tensor",
            Box::new(|o| v(&["fetch-tensor", s(&set), "layer.002.weight", o])),
        ),
        (
            "make-test-vector",
            Box::new(|o| v(&["make-test-vector", o])),
        ),
    ];
    for (name, args) in &writers {
        // The bytes a regular file gets.
        let reg = m.p(&format!("{name}.regular"));
        cli().ok(&args(s(&reg)));
        let want = std::fs::read(&reg).unwrap();
        // Device nodes stay device nodes.
        let mut devices = vec![link.clone()];
        if made_node {
            devices.push(node.clone());
        }
        for dev in &devices {
            cli().ok(&args(s(dev)));
            let ft = std::fs::metadata(dev).unwrap().file_type();
            assert!(ft.is_char_device(), "{name}: {} replaced", dev.display());
        }
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        // A FIFO gets exactly the bytes, and stays a FIFO.
        let fifo = m.p(&format!("{name}.fifo"));
        mkfifo(&fifo);
        let reader = drain(&fifo);
        cli().ok(&args(s(&fifo)));
        assert_eq!(reader.join().unwrap(), want, "{name}: FIFO bytes");
        assert!(
            std::fs::metadata(&fifo).unwrap().file_type().is_fifo(),
            "{name}"
        );
        assert!(leftovers(d).is_empty(), "{name}: {:?}", leftovers(d));
    }
    // The set converter writes a directory: a device or FIFO is refused, untouched.
    let fifo = m.p("set.fifo");
    mkfifo(&fifo);
    let o = cli().run(&[
        "convert-safetensors-sharded",
        s(&sharded_input(d)),
        s(&fifo),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

#[test]
fn an_output_that_is_an_input_is_refused_and_untouched() {
    let m = Models::new();
    let aero = m.p("hashes.aero");
    let before = std::fs::read(&aero).unwrap();
    let hard = m.p("hard.aero");
    std::fs::hard_link(&aero, &hard).unwrap();
    let sym = m.p("sym.aero");
    std::os::unix::fs::symlink(&aero, &sym).unwrap();
    for out in [&aero, &hard, &sym] {
        for args in [
            vec!["extract", s(&aero), "layer.001.weight", s(out)],
            vec!["repack", s(&aero), s(out)],
            vec!["convert", s(&aero), s(out)],
            vec!["export-safetensors", s(&aero), s(out)],
            vec!["export-gguf", s(&aero), s(out)],
        ] {
            let o = cli().run(&args);
            assert_eq!(o.status.code(), Some(2), "{args:?}");
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("refusing to overwrite an input"),
                "{args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert_eq!(std::fs::read(&aero).unwrap(), before, "{args:?}");
        }
    }
    // fetch-tensor into one of the set's own files.
    let set = m.p("set");
    cli().ok(&[
        "convert-safetensors-sharded",
        s(&sharded_input(m.dir.path())),
        s(&set),
    ]);
    for f in ["part-000.aero", "index.aero", "model.aeroset.json"] {
        let target = set.join(f);
        let before = std::fs::read(&target).unwrap();
        let o = cli().run(&["fetch-tensor", s(&set), "layer.000.weight", s(&target)]);
        assert_eq!(o.status.code(), Some(2), "{f}");
        assert_eq!(std::fs::read(&target).unwrap(), before, "{f}");
    }
}

#[test]
fn control_bytes_in_names_never_reach_the_terminal_raw() {
    let d = tempfile::tempdir().unwrap();
    let st = d.path().join("evil.safetensors");
    let evil: Vec<StTensor> = vec![
        (
            "a\x1b[2J\x1b]0;pwned\x07".into(),
            safetensors::Dtype::U8,
            vec![4],
            vec![1; 4],
        ),
        (
            "b\nFAKE LINE\rX".into(),
            safetensors::Dtype::U8,
            vec![4],
            vec![2; 4],
        ),
        (
            "c\u{202e}txt.exe".into(),
            safetensors::Dtype::U8,
            vec![4],
            vec![3; 4],
        ),
        (
            "d\x00\x7f\u{9b}".into(),
            safetensors::Dtype::U8,
            vec![4],
            vec![4; 4],
        ),
    ];
    write_safetensors(
        &st,
        &evil,
        Some(&[("model_name", "x\x1b[31mred"), ("architecture", "y\x07")]),
    );
    let aero = d.path().join("evil.aero");
    let o = cli().run(&["convert", s(&st), s(&aero)]);
    assert!(o.status.success());
    let mut outputs = vec![o];
    for args in [
        vec!["list", s(&aero)],
        vec!["inspect", s(&aero)],
        vec!["validate", "--full", s(&aero)],
        vec!["extract", s(&aero), "nope\x1b[2J", "-"],
    ] {
        outputs.push(cli().run(&args));
    }
    // A damaged copy: its errors quote tensor names too.
    let bad = d.path().join("bad.aero");
    std::fs::copy(&aero, &bad).unwrap();
    flip_tensor_byte(&bad, "b\nFAKE LINE\rX");
    outputs.push(cli().run(&["validate", "--full", s(&bad)]));
    outputs.push(cli().run(&["extract", s(&bad), "b\nFAKE LINE\rX", "-"]));
    for o in &outputs {
        for stream in [&o.stdout, &o.stderr] {
            let text = String::from_utf8_lossy(stream);
            for line in text.split('\n') {
                assert!(
                    !line.chars().any(|c| c.is_control() || c == '\u{202e}'),
                    "raw control character in {line:?}"
                );
            }
        }
    }
    let listing = String::from_utf8_lossy(&outputs[1].stdout).into_owned();
    assert!(listing.contains("a\\x1b[2J"), "{listing}");
    assert!(listing.contains("b\\nFAKE LINE\\rX"), "{listing}");
    // JSON escapes them and keeps the real names.
    let j = json(&cli().run(&["list", "--json", s(&aero)]));
    assert_eq!(j["tensors"][1]["name"], "b\nFAKE LINE\rX");
}

/// A safetensors file of `n` zero bytes in one tensor, written sparse.
fn big_input(path: &Path, n: u64) {
    let mut h = serde_json::to_vec(
        &serde_json::json!({"t": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}),
    )
    .unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut b = (h.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(&h);
    std::fs::write(path, &b).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(b.len() as u64 + n).unwrap();
}

fn wait_for_temp(dir: &Path, child: &mut std::process::Child) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        if !leftovers(dir).is_empty() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

#[test]
fn a_signal_mid_write_removes_the_temporary_and_keeps_the_old_file() {
    let d = tempfile::tempdir().unwrap();
    let inp = d.path().join("big.safetensors");
    big_input(&inp, 2 << 30);
    let out_dir = d.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let dest = out_dir.join("m.aero");
    std::fs::write(&dest, b"the previous file").unwrap();
    for (sig, code) in [("INT", 130), ("TERM", 143)] {
        let mut child = cli()
            .cmd()
            .args(["convert", s(&inp), s(&dest), "--no-fsync"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            wait_for_temp(&out_dir, &mut child),
            "SIG{sig}: the write never started"
        );
        std::thread::sleep(Duration::from_millis(50));
        Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .status()
            .unwrap();
        let st = child.wait().unwrap();
        assert_eq!(st.code(), Some(code), "SIG{sig}");
        assert!(
            leftovers(&out_dir).is_empty(),
            "SIG{sig}: {:?}",
            leftovers(&out_dir)
        );
        assert_eq!(std::fs::read(&dest).unwrap(), b"the previous file");
    }
    // The set converter's temporary directory goes too.
    let sharded = sharded_input(d.path());
    let big_part = sharded.join("model-00001-of-00002.safetensors");
    big_input(&big_part, 1 << 30);
    let mut idx: serde_json::Value = serde_json::from_slice(
        &std::fs::read(sharded.join("model.safetensors.index.json")).unwrap(),
    )
    .unwrap();
    let map = idx["weight_map"].as_object_mut().unwrap();
    map.retain(|_, f| f != "model-00001-of-00002.safetensors");
    map.insert("t".into(), "model-00001-of-00002.safetensors".into());
    std::fs::write(
        sharded.join("model.safetensors.index.json"),
        serde_json::to_vec(&idx).unwrap(),
    )
    .unwrap();
    let set = out_dir.join("set");
    let mut child = cli()
        .cmd()
        .args([
            "convert-safetensors-sharded",
            s(&sharded),
            s(&set),
            "--no-fsync",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for_temp(&out_dir, &mut child),
        "set write never started"
    );
    std::thread::sleep(Duration::from_millis(100));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(143));
    assert!(leftovers(&out_dir).is_empty(), "{:?}", leftovers(&out_dir));
    assert!(!set.exists());
}

#[test]
fn leftovers_of_a_killed_writer_are_swept_by_the_next_write() {
    let d = tempfile::tempdir().unwrap();
    let inp = d.path().join("big.safetensors");
    big_input(&inp, 2 << 30);
    let dest = d.path().join("m.aero");
    let mut child = cli()
        .cmd()
        .args(["convert", s(&inp), s(&dest), "--no-fsync"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for_temp(d.path(), &mut child));
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let left = leftovers(d.path());
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].starts_with(".m.aero.") && left[0].ends_with(".aerotmp"),
        "{left:?}"
    );
    // Never read as an output: the destination does not exist.
    assert!(!dest.exists());
    let small = d.path().join("small.safetensors");
    write_safetensors(&small, &f32_model(2, 16), None);
    cli().ok(&["convert", s(&small), s(&dest)]);
    assert!(leftovers(d.path()).is_empty(), "{:?}", leftovers(d.path()));
    cli().ok(&["validate", "--full", s(&dest)]);
}

#[test]
fn four_writers_of_one_destination_all_succeed_and_the_last_rename_wins() {
    let d = tempfile::tempdir().unwrap();
    let st = d.path().join("model.safetensors");
    write_safetensors(&st, &f32_model(16, 256 << 10), None);
    let dest = d.path().join("c.aero");
    let uuids: Vec<String> = (0..4).map(|i| format!("{:032x}", i + 1)).collect();
    let children: Vec<_> = uuids
        .iter()
        .map(|u| {
            cli()
                .cmd()
                .args(["convert", s(&st), s(&dest), "--uuid", u])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert!(leftovers(d.path()).is_empty(), "{:?}", leftovers(d.path()));
    let r = json(&cli().run(&["validate", "--full", "--json", s(&dest)]));
    assert_eq!(r["verdict"], "valid", "{r}");
    // The file is exactly one writer's output.
    let got = std::fs::read(&dest).unwrap();
    let matches = uuids
        .iter()
        .filter(|u| {
            let one = d.path().join(format!("{u}.aero"));
            cli().ok(&["convert", s(&st), s(&one), "--uuid", u]);
            std::fs::read(&one).unwrap() == got
        })
        .count();
    assert_eq!(matches, 1);
}

#[test]
fn the_adoption_guide_commands_work_in_a_fresh_directory() {
    let d = tempfile::tempdir().unwrap();
    let tiny = aero_test_support::repo().join("examples/tiny/tiny-llama.safetensors");
    std::fs::copy(tiny, d.path().join("model.safetensors")).unwrap();
    let run = |args: &[&str]| {
        let o = cli()
            .cmd()
            .current_dir(d.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(&[
        "convert-safetensors",
        "model.safetensors",
        "dist/model.aero",
    ]);
    run(&["validate", "--full", "dist/model.aero"]);
    run(&["inspect", "dist/model.aero"]);
    // Defaults: every tensor carries hash_b3, every shard page hashes.
    let f = aero_io::AeroFile::open(d.path().join("dist/model.aero")).unwrap();
    assert!(
        f.index()
            .unwrap()
            .tensors()
            .iter()
            .all(|t| t.hash_b3.is_some())
    );
    assert!(f.first(aero_io::FourCc::PHSH).is_some());
}

#[test]
fn reference_layout_drops_pytorch_metadata_with_a_warning_and_stays_byte_identical() {
    let d = tempfile::tempdir().unwrap();
    let model = f32_model(3, 64);
    let with = d.path().join("pt.safetensors");
    write_safetensors(&with, &model, Some(&[("format", "pt")]));
    let without = d.path().join("plain.safetensors");
    write_safetensors(&without, &model, None);
    let a = d.path().join("a.aero");
    let b = d.path().join("b.aero");
    let o = cli().run(&[
        "convert",
        s(&with),
        s(&a),
        "--layout",
        "reference",
        "--uuid",
        UUID,
    ]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("warning") && err.contains("format"), "{err}");
    cli().ok(&[
        "convert",
        s(&without),
        s(&b),
        "--layout",
        "reference",
        "--uuid",
        UUID,
    ]);
    // The reference converter drops __metadata__ (bar model_name and
    // architecture): with and without it, the same bytes — and those of
    // an input without metadata are the reference's (golden test).
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // Types the reference cannot write are refused, not approximated.
    let u32s = d.path().join("u32.safetensors");
    write_safetensors(
        &u32s,
        &[("x".into(), safetensors::Dtype::U32, vec![2], vec![0; 8])],
        None,
    );
    let o = cli().run(&["convert", s(&u32s), s(&a), "--layout", "reference"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("reference converter cannot write"));
    // The default layout keeps everything.
    let c = d.path().join("c.aero");
    cli().ok(&["convert", s(&with), s(&c)]);
    let back = d.path().join("back.safetensors");
    cli().ok(&["export-safetensors", s(&c), s(&back)]);
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&with).unwrap());
}

#[test]
fn damage_anywhere_exits_1_with_a_report_and_io_errors_exit_2() {
    let m = Models::new();
    let good = std::fs::read(m.p("hashes.aero")).unwrap();
    let f = aero_io::AeroFile::open(m.p("hashes.aero")).unwrap();
    let tidx = f.first(aero_io::FourCc::TIDX).unwrap().clone();
    drop(f);
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    let mut b = good.clone();
    b[6] = 2; // version_minor
    cases.push(("header", b, "unsupported version"));
    let mut b = good.clone();
    b[96 + 16 + 8] ^= 0x40; // the first TOC entry's chunk_offset
    cases.push(("toc", b, "chunk"));
    let mut b = good.clone();
    b[tidx.offset as usize + 3] ^= 1;
    cases.push(("tidx", b, "TIDX"));
    let half = good.len() / 2;
    cases.push(("truncated", good[..half].to_vec(), "truncated"));
    cases.push((
        "tiny",
        good[..40].to_vec(),
        "truncated: the header needs at least 96 bytes, the file has 40",
    ));
    for (what, bytes, needle) in cases {
        let p = m.p(&format!("{what}.aero"));
        std::fs::write(&p, &bytes).unwrap();
        let o = cli().run(&["validate", s(&p)]);
        assert_eq!(o.status.code(), Some(1), "{what}");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("INVALID") && out.contains(needle),
            "{what}: {out}"
        );
        assert_eq!(
            out.matches(s(&p)).count(),
            1,
            "{what}: path printed once: {out}"
        );
        let o = cli().run(&["validate", "--json", "--full", s(&p)]);
        assert_eq!(o.status.code(), Some(1), "{what}");
        let r = json(&o); // exactly one JSON document
        assert_eq!(r["valid"], false, "{what}: {r}");
        assert_eq!(r["verdict"], "invalid", "{what}: {r}");
        assert!(r.to_string().contains(needle), "{what}: {r}");
        // inspect shows what it can and exits 1 too.
        let o = cli().run(&["inspect", s(&p)]);
        assert_eq!(o.status.code(), Some(1), "{what} inspect");
    }
    if half > 0 {
        let o = cli().run(&["validate", s(&m.p("truncated.aero"))]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains(&format!("the file has {half}")),
            "the truncation names both sizes: {out}"
        );
    }
    // A missing file is an I/O error: exit 2, and still one JSON document.
    let o = cli().run(&["validate", "--json", s(&m.p("missing.aero"))]);
    assert_eq!(o.status.code(), Some(2));
    let r = json(&o);
    assert_eq!(r["verdict"], "error");
    assert!(r["error"].as_str().unwrap().contains("No such file"), "{r}");
    // Other formats are named, with what to do (`inspect` and `list` read
    // them; `extract` reads AERO files and sets only): a usage error, exit 2.
    let gguf = m.p("model.gguf");
    cli().ok(&["export-gguf", s(&m.p("hashes.aero")), s(&gguf)]);
    for (file, kind) in [(&gguf, "GGUF"), (&m.p("model.safetensors"), "safetensors")] {
        let o = cli().run(&["inspect", s(file)]);
        assert_eq!(o.status.code(), Some(0), "inspect reads {kind}");
        let o = cli().run(&["extract", s(file), "x", s(&m.p("x.bin"))]);
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("is a {kind} file, not an AERO file"))
                && err.contains("aerotensor convert"),
            "{err}"
        );
        assert_eq!(err.matches(s(file)).count(), 1, "{err}");
    }
    // Converter errors name the input once.
    let junk = m.p("junk.gguf");
    std::fs::write(&junk, b"GGUF\x03\x00\x00\x00 and then nothing useful").unwrap();
    let o = cli().run(&["convert-gguf", s(&junk), s(&m.p("x.aero"))]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches(s(&junk)).count(), 1, "{err}");
}

#[test]
fn json_mode_prints_one_document_even_on_errors() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("missing.aero");
    let junk = d.path().join("junk.aero");
    std::fs::write(&junk, b"GGUF not really").unwrap();
    for args in [
        vec!["inspect", "--json", s(&missing)],
        vec!["list", "--json", s(&junk)],
        vec!["inspect", "--json", s(&junk)],
        vec![
            "convert",
            "--json",
            s(&missing),
            s(&d.path().join("o.aero")),
        ],
    ] {
        let o = cli().run(&args);
        assert!(!o.status.success(), "{args:?}");
        let r = json(&o);
        assert!(r["error"].is_string(), "{args:?}: {r}");
        assert_eq!(r["exit_code"], o.status.code().unwrap(), "{args:?}");
    }
}
