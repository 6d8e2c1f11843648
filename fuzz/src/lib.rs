//! Helpers shared by the fuzz targets: a scratch directory on tmpfs for the
//! entry points that still take paths (the exporters), and deterministic
//! writer options. (The JSON `list --json` prints is
//! `aero_io::TensorInfo::to_json`.)

use std::path::{Path, PathBuf};
use std::sync::OnceLock;


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

/// Writer options that make outputs deterministic and skip fsync.
pub fn write_options() -> aero_io::stream::WriteOptions {
    aero_io::stream::WriteOptions {
        uuid: Some([0x11; 16]),
        durable: false,
        ..Default::default()
    }
}
