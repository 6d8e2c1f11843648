//! Helpers shared by the fuzz targets: a scratch directory on tmpfs for the
//! entry points that still take paths (the exporters), and the JSON
//! rendering `aerotensor list --json` does.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aero_io::TensorInfo;
use serde_json::{Value, json};

/// A per-process scratch directory (under /dev/shm when it exists).
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let b = tempfile::Builder::new()
            .prefix("aero-fuzz-")
            .tempdir_in(if shm.is_dir() { shm } else { Path::new(".") });
        b.or_else(|_| tempfile::tempdir())
            .expect("scratch directory")
    })
    .path()
}

/// `scratch()/name`.
pub fn scratch_file(name: &str) -> PathBuf {
    scratch().join(name)
}

/// What `list --json` prints for one tensor (aero-cli's `tensor_json`).
pub fn tensor_json(t: &TensorInfo) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("name".into(), json!(t.name));
    m.insert("dtype".into(), json!(t.dtype.to_string()));
    m.insert("dtype_code".into(), json!(t.dtype.code()));
    m.insert("shape".into(), json!(t.shape));
    m.insert("shard_id".into(), json!(t.shard_id));
    m.insert("data_off".into(), json!(t.data_off));
    m.insert("data_len".into(), json!(t.data_len));
    if let Some(h) = &t.hash_b3 {
        m.insert("hash_b3".into(), json!(hex::encode(h)));
    }
    if !t.extras.is_empty() {
        m.insert("extra".into(), Value::Object(t.extras_json()));
    }
    Value::Object(m)
}

/// Writer options that make outputs deterministic and skip fsync.
pub fn write_options() -> aero_io::stream::WriteOptions {
    aero_io::stream::WriteOptions {
        uuid: Some([0x11; 16]),
        durable: false,
        ..Default::default()
    }
}
