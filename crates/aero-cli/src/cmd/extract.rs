//! `extract`: one tensor's verified bytes (or values, `--as`), or an
//! attached file (`--file`), of a file or a set.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aero_io::TensorInfo;
use anyhow::bail;
use clap::Args;

use super::Run;
use super::common::args::{FloatArg, VerifyArgs};
use super::common::source::{Source, copy_options, is_set, output_dest, report_extracted};
use crate::out;
use crate::remote::Opener;

/// Write one tensor's raw bytes (or an attached file) to a file or stdout.
///
/// The bytes are checked against the file's hashes first (hash_b3, page
/// hashes or the shard hash); damaged bytes are refused (exit 1) and
/// nothing is written. `--file NAME` writes an attached file instead
/// (config.json, a tokenizer), checked against its hash the same way.
///
/// With --as f32|f16|bf16 the tensor's values are written instead, as
/// little-endian floats: packed GGUF tensors (Q4_K, IQ2_XS, …) are
/// dequantized bit for bit as gguf-py does, other dtypes converted
/// (f16/bf16 rounded to nearest even). The bytes are verified first all
/// the same.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  aerotensor extract model.aero lm_head.weight w.bin
  aerotensor extract model.aero lm_head.weight - | xxd | head
  aerotensor extract model.aero blk.0.attn_q.weight q.f32 --as f32    # Q4_K -> f32 values
  aerotensor extract ./model-set model.norm.weight norm.bin
  aerotensor extract minilm.aero --file config.json config.json      # an attached file")]
pub(crate) struct ExtractArgs {
    /// The .aero file, or an AEROSET (model.aeroset.json or its directory).
    pub(crate) file: PathBuf,
    /// Tensor name (with --file: the output).
    #[arg(required_unless_present = "attached")]
    pub(crate) tensor: Option<String>,
    /// Output file, or `-` for stdout (the default when stdout is not a terminal).
    pub(crate) out: Option<PathBuf>,
    /// Write the attached file NAME (`config.json`, `tokenizer.json`, as
    /// `inspect` lists them) instead of a tensor, verified: `extract MODEL
    /// --file config.json OUT`.
    #[arg(long = "file", value_name = "NAME", conflicts_with = "as_float")]
    pub(crate) attached: Option<String>,
    /// Write the values as little-endian floats of this type (dequantizing
    /// a packed tensor) instead of the stored bytes.
    #[arg(
        long = "as",
        value_enum,
        value_name = "TYPE",
        conflicts_with = "no_verify"
    )]
    pub(crate) as_float: Option<FloatArg>,
    #[command(flatten)]
    pub(crate) verify: VerifyArgs,
}

impl ExtractArgs {
    /// The tensor asked for (present unless `--file` was given).
    pub(crate) fn tensor_name(&self) -> &str {
        self.tensor.as_deref().unwrap_or_default()
    }
}

impl Run for ExtractArgs {
    fn run(self, opener: &Opener) -> anyhow::Result<ExitCode> {
        if self.attached.is_some() {
            extract_attached(self, opener)
        } else if self.as_float.is_some() {
            extract_floats(self, opener)
        } else if is_set(&self.file) {
            set_tensor(&self.file, self.tensor_name(), self.out.as_deref(), self.verify, opener)
        } else {
            extract(self, opener)
        }
    }
}

fn extract(a: ExtractArgs, opener: &Opener) -> anyhow::Result<ExitCode> {
    let f = opener.open_file(&a.file)?;
    let dest = output_dest(a.out.as_deref())?;
    let info = f.tensor_info(a.tensor_name())?;
    let pb = out::bytes_bar(info.data_len, "extracting");
    let n = aero_io::extract(&f, info, &dest, &copy_options(a.verify, true, &pb))?;
    pb.finish_and_clear();
    report_extracted(a.tensor_name(), n, &dest);
    Ok(ExitCode::SUCCESS)
}

/// Writes one tensor of a set to `out` (`-` or `None` for stdout).
pub(crate) fn set_tensor(
    set_path: &Path,
    tensor: &str,
    out_path: Option<&Path>,
    verify: VerifyArgs,
    opener: &Opener,
) -> anyhow::Result<ExitCode> {
    let set = opener.open_set(set_path)?;
    let dest = output_dest(out_path)?;
    let len = set.locate(tensor)?.global.data_len;
    let pb = out::bytes_bar(len, "extracting");
    let n = set.extract_to(tensor, &dest, &copy_options(verify, true, &pb))?;
    pb.finish_and_clear();
    report_extracted(tensor, n, &dest);
    Ok(ExitCode::SUCCESS)
}

/// `extract --as`: the tensor's values as floats, written atomically.
fn extract_floats(a: ExtractArgs, opener: &Opener) -> anyhow::Result<ExitCode> {
    let fmt: aero_convert::floats::FloatFormat = match a.as_float {
        Some(f) => f.into(),
        None => bail!("--as was not given"),
    };
    let src = Source::open(&a.file, opener)?;
    let dest = output_dest(a.out.as_deref())?;
    // Any file the input reads (a set's manifest, index and parts too).
    src.as_dyn().refuse_as_output(&dest)?;
    let elements = src
        .as_dyn()
        .tensor_index()
        .ok()
        .and_then(|i| i.get(a.tensor_name()).and_then(TensorInfo::elements))
        .unwrap_or(0);
    let pb = out::bytes_bar(elements.saturating_mul(fmt.size()), "converting");
    // Unspooled: the tensor is verified whole before the first value is
    // written, so a pipe or device gets the values as they are decoded
    // (a 7 GiB f32 output is not first copied to the temporary directory).
    let mut out = aero_io::output::Output::create_unspooled(&dest)?;
    let n = aero_convert::floats::write_tensor(
        src.as_dyn(),
        a.tensor_name(),
        fmt,
        out.file(),
        &dest,
        &|n| pb.inc(n),
    )
    .map_err(|e| anyhow::Error::new(e).context(a.file.display().to_string()))?;
    out.commit(true)?;
    pb.finish_and_clear();
    report_extracted(a.tensor_name(), n, &dest);
    Ok(ExitCode::SUCCESS)
}

/// `extract MODEL --file NAME [OUT]`: an attached file, verified, written
/// atomically (or to stdout).
fn extract_attached(
    a: ExtractArgs,
    opener: &Opener,
) -> anyhow::Result<ExitCode> {
    let name = a.attached.as_deref().unwrap_or_default();
    if a.tensor.is_some() && a.out.is_some() {
        bail!("with --file, give the model and the output only: `extract MODEL --file {name} OUT`");
    }
    let out_path = a.out.clone().or_else(|| a.tensor.as_ref().map(Into::into));
    let src = Source::open(&a.file, opener)?;
    let dest = output_dest(out_path.as_deref())?;
    src.as_dyn().refuse_as_output(&dest)?;
    let bytes = src.as_model()?.attached_bytes(name)?;
    let mut out = aero_io::output::Output::create(&dest)?;
    out.file()
        .write_all(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dest.display()))?;
    out.commit(true)?;
    report_extracted(name, bytes.len() as u64, &dest);
    Ok(ExitCode::SUCCESS)
}
