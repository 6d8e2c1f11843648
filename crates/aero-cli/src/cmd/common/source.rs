//! What a command reads and where it writes: sets and foreign files told
//! apart, files or sets opened for reading, the destination of an extraction.

use std::io::IsTerminal;
use std::path::Path;

use aero_convert::describe;
use aero_set::AeroSet;
use anyhow::bail;

use super::args::VerifyArgs;
use crate::out;
use crate::remote::Opener;

/// Whether a path given to `validate` / `list` / `extract` is an AEROSET.
pub(crate) fn is_set(path: &Path) -> bool {
    aero_set::model::Target::classify(path).is_set()
}

/// The part of `set` holding shard `shard_id`.
pub(crate) fn part_path(set: &AeroSet, shard_id: u64) -> Option<&str> {
    set.manifest()
        .part_for_shard(shard_id)
        .and_then(|i| set.manifest().parts.get(i))
        .map(|p| p.file.path.as_str())
}

/// A GGUF or safetensors file (by content), or `None` for anything else:
/// AERO files, sets, URLs and unreadable paths go the AERO way, whose
/// errors say what they are.
pub(crate) fn foreign(path: &Path) -> Option<describe::Format> {
    if crate::remote::is_url(path) || !path.is_file() {
        return None;
    }
    match aero_convert::detect(path).ok()? {
        aero_convert::InputKind::Gguf => Some(describe::Format::Gguf),
        aero_convert::InputKind::SafeTensors => Some(describe::Format::SafeTensors),
        _ => None,
    }
}

fn values(all: bool) -> describe::Values {
    if all {
        describe::Values::All
    } else {
        describe::Values::Summary
    }
}

/// A GGUF or safetensors file described (`all`: every value whole, as
/// `--all-values` asks).
pub(crate) fn describe_foreign(
    path: &Path,
    format: describe::Format,
    all: bool,
) -> anyhow::Result<describe::Model> {
    Ok(match format {
        describe::Format::SafeTensors => describe::describe_safetensors(path, values(all))?,
        _ => describe::describe_gguf(path, values(all))?,
    })
}

/// A file or a set, opened as `list` / `extract` open them; or, for
/// `diff`, a safetensors or GGUF file.
pub(crate) enum Source {
    /// An AERO file or set, local or remote.
    Model(Box<dyn aero_convert::hf::ModelSource>),
    /// A safetensors or GGUF file, read as `convert` would hold it.
    Foreign(Box<aero_convert::foreign::ForeignFile>),
}

impl Source {
    pub(crate) fn open(p: &std::path::Path, opener: &Opener) -> anyhow::Result<Source> {
        Ok(Source::Model(Box::new(opener.open(p)?)))
    }

    /// A side of `diff`: a set or a URL as [`Source::open`] opens them, or
    /// a local file recognised by its content — AERO, or safetensors / GGUF
    /// read as `convert` would hold them ([`aero_convert::foreign`]). An
    /// input that is none of these (a sharded checkpoint, an unrecognised
    /// or missing file, a URL that is not AERO) is exit 2, never 1: for
    /// `diff`, 1 means "different" or damaged content.
    pub(crate) fn open_for_diff(p: &std::path::Path, opener: &Opener) -> anyhow::Result<Source> {
        use aero_convert::InputKind;
        let not_aero = |e: anyhow::Error| match e.downcast_ref::<aero_io::Error>() {
            // Valid data of another kind, not damage: a usage error.
            Some(n @ aero_io::Error::NotAero { .. }) => anyhow::anyhow!("{n}"),
            _ => e,
        };
        if is_set(p) || crate::remote::is_url(p) {
            return Source::open(p, opener).map_err(not_aero);
        }
        match aero_convert::detect(p)? {
            InputKind::Aero => Source::open(p, opener),
            InputKind::SafeTensors | InputKind::Gguf => Ok(Source::Foreign(Box::new(
                aero_convert::foreign::ForeignFile::open(p)?,
            ))),
            other => bail!(
                "{}: is {} input; diff compares AERO files and sets, safetensors and GGUF files",
                p.display(),
                other.name()
            ),
        }
    }

    pub(crate) fn as_dyn(&self) -> &dyn aero_convert::state_dict::TensorSource {
        match self {
            Source::Model(m) => m.as_ref(),
            Source::Foreign(f) => f.as_ref(),
        }
    }

    /// The stored bytes of every tensor (0 when the index is unreadable:
    /// the read that follows says why), for a progress bar.
    pub(crate) fn tensor_bytes(&self) -> u64 {
        self.as_dyn()
            .tensor_index()
            .map(|i| i.tensors().iter().map(|t| t.data_len).sum())
            .unwrap_or(0)
    }

    /// The AERO file or set (a model has attached files and a recorded
    /// folder layout; safetensors and GGUF files have neither).
    pub(crate) fn as_model(&self) -> anyhow::Result<&dyn aero_convert::hf::ModelSource> {
        match self {
            Source::Model(m) => Ok(m.as_ref()),
            Source::Foreign(f) => bail!("{}: is not an AERO file or set", f.path().display()),
        }
    }
}

/// Where `extract` / `fetch-tensor` write: the path given, or `-` (stdout)
/// when none is given and stdout is not a terminal.
pub(crate) fn output_dest(out: Option<&std::path::Path>) -> anyhow::Result<std::path::PathBuf> {
    let dest = match out {
        Some(p) => p.to_path_buf(),
        None => "-".into(),
    };
    if aero_io::output::is_stdout(&dest) && std::io::stdout().is_terminal() {
        bail!(
            "refusing to write binary tensor bytes to a terminal; give an output path or `-` with a redirect"
        );
    }
    Ok(dest)
}

/// Copy options from the common flags, counting progress on `pb`.
pub(crate) fn copy_options<'p>(
    v: VerifyArgs,
    durable: bool,
    pb: &'p indicatif::ProgressBar,
) -> aero_io::CopyOptions<'p> {
    if v.no_verify {
        eprintln!(
            "aerotensor: warning: --no-verify: tensor bytes are written without checking them"
        );
    }
    aero_io::CopyOptions {
        verify: !v.no_verify,
        durable,
        progress: Box::new(move |n| pb.inc(n)),
    }
}

/// The one-line report of an extraction (nothing when the bytes went to stdout).
pub(crate) fn report_extracted(tensor: &str, n: u64, dest: &std::path::Path) {
    if !aero_io::output::is_stdout(dest) {
        eprintln!(
            "wrote {n} bytes of '{}' to {}",
            out::clean(tensor),
            out::clean(&dest.display().to_string())
        );
    }
}
