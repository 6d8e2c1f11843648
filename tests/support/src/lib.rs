//! Helpers shared by the workspace's integration tests (not published).
//!
//! Fixtures are made here by code (safetensors files through the
//! `safetensors` crate, deterministic bytes) or taken from `../shared/golden`.

pub mod alloc;
pub mod netem;
pub mod origin;

pub use safetensors;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of the reference implementation's golden set (`../shared/golden`).
pub fn golden(name: &str) -> PathBuf {
    repo().join("../shared/golden").join(name)
}

/// One case of `tests/fixtures/open-table.json`: what every front end's
/// opener answers for one input.
#[derive(Clone, Debug)]
pub struct OpenCase {
    /// The input: a path under `../shared`, or a URL.
    pub input: String,
    /// What the caller accepts: `any`, `file` or `set`.
    pub expect: String,
    /// `file`, `set`, `wrong-kind`, `not-found` or `unsupported`.
    pub outcome: String,
    /// For `wrong-kind`: what the input is, as every message names it.
    pub found: Option<String>,
}

/// The cases of `tests/fixtures/open-table.json` (the table the CLI, C ABI
/// and Python opener tests share), inputs resolved to paths.
pub fn open_table() -> Vec<OpenCase> {
    let text = std::fs::read(repo().join("tests/fixtures/open-table.json"))
        .unwrap_or_else(|e| panic!("tests/fixtures/open-table.json: {e}"));
    let v: serde_json::Value = serde_json::from_slice(&text).expect("open-table.json is JSON");
    let s = |c: &serde_json::Value, k: &str| c[k].as_str().map(str::to_string);
    v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            let input = s(c, "input").expect("input");
            let input = if input.contains("://") {
                input
            } else {
                repo().join("../shared").join(input).display().to_string()
            };
            OpenCase {
                input,
                expect: s(c, "expect").expect("expect"),
                outcome: s(c, "outcome").expect("outcome"),
                found: s(c, "found"),
            }
        })
        .collect()
}

/// A deterministic xorshift64 generator: reproducible test data without a
/// dependency (the one generator of the workspace's tests).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value; zero is fine).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 24) as u8).collect()
    }
}

/// `n` deterministic pseudo-random bytes (an [`Rng`] from `seed`).
pub fn bytes(seed: u64, n: usize) -> Vec<u8> {
    Rng::new(seed).bytes(n)
}

/// One tensor read back by [`read_safetensors`].
#[derive(Clone, Debug, PartialEq)]
pub struct StRead {
    /// The dtype as safetensors names it (`F32`, `BF16`, ...).
    pub dtype: String,
    /// Dimensions.
    pub shape: Vec<u64>,
    /// The tensor's bytes.
    pub data: Vec<u8>,
}

/// Reads a safetensors file with the `safetensors` crate: every tensor by
/// name, and `__metadata__`. Panics (a test failure) if the crate refuses it.
pub fn read_safetensors(
    path: &Path,
) -> (
    std::collections::BTreeMap<String, StRead>,
    Option<HashMap<String, String>>,
) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (_, meta) = safetensors::SafeTensors::read_metadata(&b)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&b)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let tensors = st
        .iter()
        .map(|(name, t)| {
            (
                name.to_owned(),
                StRead {
                    dtype: t.dtype().to_string(),
                    shape: t.shape().iter().map(|&d| d as u64).collect(),
                    data: t.data().to_vec(),
                },
            )
        })
        .collect();
    (tensors, meta.metadata().clone())
}

/// Every tensor of every `*.safetensors` file in `dir` (a sharded
/// checkpoint), by name.
pub fn read_safetensors_dir(dir: &Path) -> std::collections::BTreeMap<String, StRead> {
    let mut out = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.expect("directory entry").path();
        if p.to_string_lossy().ends_with(".safetensors") {
            out.extend(read_safetensors(&p).0);
        }
    }
    out
}

/// A tensor for [`write_safetensors`]: name, dtype, shape, bytes.
pub type StTensor = (String, safetensors::Dtype, Vec<usize>, Vec<u8>);

/// Writes a safetensors file with the `safetensors` crate.
pub fn write_safetensors(path: &Path, tensors: &[StTensor], metadata: Option<&[(&str, &str)]>) {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).expect("consistent tensor"),
            )
        })
        .collect();
    let meta: Option<HashMap<String, String>> = metadata.map(|m| {
        m.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    });
    safetensors::serialize_to_file(views, meta, path).expect("write safetensors");
}

/// A small model of f32 tensors (`n` tensors, `elems` elements each).
pub fn f32_model(n: usize, elems: usize) -> Vec<StTensor> {
    (0..n)
        .map(|i| {
            (
                format!("layer.{i:03}.weight"),
                safetensors::Dtype::F32,
                vec![elems],
                bytes(i as u64 + 1, elems * 4),
            )
        })
        .collect()
}

/// Runs a command-line binary with colour off.
#[derive(Clone, Debug)]
pub struct Cli {
    bin: PathBuf,
}

impl Cli {
    /// The binary at `bin` (in a test: `env!("CARGO_BIN_EXE_aerotensor")`).
    pub fn new(bin: impl Into<PathBuf>) -> Cli {
        Cli { bin: bin.into() }
    }

    /// A command for the binary, colour off.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("NO_COLOR", "1");
        c
    }

    /// Runs with `args` and collects the output.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        self.cmd().args(args).output().expect("run the binary")
    }

    /// Runs with `args`, asserts success and returns stdout.
    pub fn ok<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "{:?} failed: {}",
            args.iter()
                .map(|a| a.as_ref().to_owned())
                .collect::<Vec<_>>(),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

/// stdout parsed as one JSON document.
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

/// Names in `dir` that are writers' temporaries (`*.aerotmp`).
pub fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".aerotmp") || n.contains(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}
