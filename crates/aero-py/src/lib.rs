//! `aerotensor._aerotensor`: the native half of the `aerotensor` Python
//! package (its Python half, `python/aerotensor/`, is a thin layer over
//! this module; see docs/PYTHON.md).
//!
//! Everything is done by the project's crates: `aero-io` opens, verifies
//! and validates files and writes them, `aero-set` reads AEROSETs,
//! `aero-convert` converts, `aero-quant` dequantizes. This crate turns
//! their results into Python objects and their errors into exceptions,
//! and releases the GIL while they work.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod buffer;
mod cli;
mod dtypes;
mod errors;
mod handle;
mod msgpack;
mod write;

use aero_io::Report;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors::{Failure, IntoPyResult};
use crate::handle::{Backing, RemoteArgs, parse_mode};

/// Validates a file or set (path or URL) and returns the report as JSON,
/// the schema of the CLI's `validate --json`. A file that cannot be opened
/// gives a report with an `error` field (verdict `invalid` when its content
/// is damaged, `error` when it cannot be read at all).
#[pyfunction]
#[pyo3(signature = (path, mode = "full", allow_remote = false, cache = true, cache_dir = None))]
fn validate(
    py: Python<'_>,
    path: String,
    mode: &str,
    allow_remote: bool,
    cache: bool,
    cache_dir: Option<String>,
) -> PyResult<String> {
    let mode = parse_mode(mode)?;
    let remote = RemoteArgs {
        allow_remote,
        cache,
        cache_dir,
    };
    let json = py.detach(|| {
        let report = match Backing::open(&path, "auto", &remote) {
            Ok(Backing::File(f)) => serde_json::to_string(&aero_io::validate(&f, mode, &|_| {})),
            Ok(Backing::Set(s)) => {
                serde_json::to_string(&aero_set::validate_set(&s, mode, &|_| {}))
            }
            Err(e) => {
                let (msg, invalid) = match &e {
                    Failure::Raised(r) => (r.message.clone(), true),
                    Failure::Os { path, source } => (
                        format!("{path}: {source}"),
                        source.kind() == std::io::ErrorKind::InvalidData,
                    ),
                    Failure::Py(p) => (p.to_string(), false),
                };
                serde_json::to_string(&Report::unreadable(&path, mode, &msg, invalid))
            }
        };
        report.map_err(|e| e.to_string())
    });
    json.map_err(pyo3::exceptions::PyValueError::new_err)
}

/// Writes `tensors` — (name, element type name, shape, contiguous
/// little-endian array, byte length) — to `path`; `st_metadata` is the
/// safetensors `__metadata__` to keep (pairs in order). Returns (file size,
/// shards, uuid).
#[pyfunction]
#[pyo3(signature = (path, tensors, model_name = None, architecture = None, extra_meta_json = None, uuid = None, layout = "aligned", max_shard_bytes = None, tensor_hash = None, page_hashes = None, control_integrity = false, st_metadata = None, durable = true))]
#[allow(clippy::too_many_arguments)]
fn save<'py>(
    py: Python<'py>,
    path: String,
    tensors: Vec<write::PyTensor>,
    model_name: Option<String>,
    architecture: Option<String>,
    extra_meta_json: Option<String>,
    uuid: Option<Vec<u8>>,
    layout: &str,
    max_shard_bytes: Option<u64>,
    tensor_hash: Option<bool>,
    page_hashes: Option<u64>,
    control_integrity: bool,
    st_metadata: Option<Vec<(String, String)>>,
    durable: bool,
) -> PyResult<(u64, usize, Bound<'py, PyBytes>)> {
    let opts = write::Options {
        model_name,
        architecture,
        extra_meta_json,
        uuid,
        layout: layout.to_string(),
        max_shard_bytes,
        tensor_hash,
        page_hashes,
        control_integrity,
        st_metadata,
        durable,
    };
    let s = write::save(py, &path, tensors, &opts)?;
    Ok((s.file_size, s.shards, PyBytes::new(py, &s.uuid)))
}

/// Converts `src` into `dst` (see `aerotensor.convert`); returns a summary.
#[pyfunction]
#[pyo3(signature = (src, dst, layout = "aligned", uuid = None, max_shard_bytes = None, tensor_hash = None, page_hashes = None, control_integrity = false, like = None))]
#[allow(clippy::too_many_arguments)]
fn convert<'py>(
    py: Python<'py>,
    src: String,
    dst: String,
    layout: &str,
    uuid: Option<Vec<u8>>,
    max_shard_bytes: Option<u64>,
    tensor_hash: Option<bool>,
    page_hashes: Option<u64>,
    control_integrity: bool,
    like: Option<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let opts = write::Options {
        model_name: None,
        architecture: None,
        extra_meta_json: None,
        uuid,
        layout: layout.to_string(),
        max_shard_bytes,
        tensor_hash,
        page_hashes,
        control_integrity,
        st_metadata: None,
        durable: true,
    }
    .to_write_options()?;
    // What the caller set that only an AERO output takes.
    let mut aero_only = Vec::new();
    for (set, name) in [
        (layout != "aligned", "layout"),
        (max_shard_bytes.is_some(), "max_shard_bytes"),
        (tensor_hash.is_some(), "tensor_hash"),
        (page_hashes.is_some(), "page_hashes"),
        (control_integrity, "control_integrity"),
    ] {
        if set {
            aero_only.push(name);
        }
    }
    if opts.uuid.is_some() {
        aero_only.push("uuid");
    }
    let c = py
        .detach(|| write::convert(&src, &dst, &opts, &aero_only, like.as_deref()))
        .py(py)?;
    let d = PyDict::new(py);
    d.set_item("input_kind", c.kind)?;
    d.set_item("output", c.output)?;
    d.set_item("size", c.file_size)?;
    d.set_item("tensors", c.tensors)?;
    d.set_item("shards", c.shards)?;
    if let Some(parts) = c.identical_parts {
        d.set_item("identical_parts", parts)?;
    }
    Ok(d)
}

/// Whether a path or URL names an AEROSET (manifest or directory).
#[pyfunction]
fn is_set(py: Python<'_>, path: String) -> bool {
    py.detach(|| handle::is_set(&path))
}

/// Whether a string is a URL (`scheme://…`) rather than a local path.
#[pyfunction]
fn is_url(path: &str) -> bool {
    handle::url_syntax(path)
}

/// Every AERO dtype code → (numpy type string, `ml_dtypes` name to view
/// it as or None): the table `aerotensor.NUMPY_DTYPES` is built from.
#[pyfunction]
fn _numpy_dtypes() -> Vec<(u16, &'static str, Option<&'static str>)> {
    dtypes::numpy_table()
}

/// The native module.
#[pymodule]
fn _aerotensor(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<handle::Handle>()?;
    m.add_class::<buffer::Buffer>()?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    m.add_function(wrap_pyfunction!(save, m)?)?;
    m.add_function(wrap_pyfunction!(convert, m)?)?;
    m.add_function(wrap_pyfunction!(is_set, m)?)?;
    m.add_function(wrap_pyfunction!(is_url, m)?)?;
    m.add_function(wrap_pyfunction!(_numpy_dtypes, m)?)?;
    m.add_function(wrap_pyfunction!(cli::cli_main, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
