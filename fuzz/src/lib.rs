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
pub fn write_options() -> aero_io::write::WriteOptions {
    aero_io::write::WriteOptions {
        uuid: Some([0x11; 16]),
        durable: false,
        ..Default::default()
    }
}

/// Copy options for the exporters: not durable (the scratch files are
/// thrown away), everything else as the CLI's defaults.
pub fn copy_options() -> aero_io::CopyOptions<'static> {
    aero_io::CopyOptions {
        durable: false,
        ..Default::default()
    }
}

/// Whether a converter's error is the writer refusing an input the parser
/// accepted (no tensors, an unusable tensor such as an empty name, a format
/// limit): an error, never a panic, is what the round-trip targets require.
pub fn writer_refused(e: &aero_convert::ConvertError) -> bool {
    matches!(e, aero_convert::ConvertError::NoTensors { .. })
        || matches!(
            e,
            aero_convert::ConvertError::Aero(
                aero_io::Error::Invalid(_)
                    | aero_io::Error::NoTensors
                    | aero_io::Error::BadTensor { .. }
                    | aero_io::Error::LimitExceeded { .. }
            )
        )
}
