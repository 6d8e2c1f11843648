//! `diff`: two files or sets compared tensor by tensor.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::Run;
use super::common::source::Source;
use super::common::tables::shape_str;
use crate::out;
use crate::remote::Opener;

/// Compare two files or sets tensor by tensor.
///
/// A side is an AERO file, an AEROSET, a URL, or a safetensors or GGUF
/// file (read as convert would hold it, so a conversion can be checked).
/// Reports tensors only in one side, dtype (ggml type for packed GGUF
/// tensors) and shape changes, and whether each common tensor's bytes
/// are identical: both sides' bytes are verified against their hashes
/// first, then compared. --numeric adds, per differing tensor, the max
/// absolute and relative error and the cosine similarity of the values
/// (packed tensors dequantized). A different tensor order alone is
/// reported but is not a difference. Exit 0 identical, 1 different or
/// a side damaged (then an error naming file, tensor and offset, not a
/// report), 2 an input it cannot read.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  aerotensor diff a.aero b.aero                      # exit 0 identical, 1 different
  aerotensor diff model.safetensors dist/model.aero  # check a conversion
  aerotensor diff model-q8_0.aero model-q4_k.aero --numeric
  aerotensor diff ./set-v1 ./set-v2 --json | jq '.tensors[] | select(.identical | not) | .name'")]
pub(crate) struct DiffArgs {
    /// First file or set (.aero, AEROSET manifest or directory, URL).
    pub(crate) a: PathBuf,
    /// Second file or set.
    pub(crate) b: PathBuf,
    /// Also compare values: max abs/rel error and cosine similarity per
    /// differing tensor (packed tensors dequantized).
    #[arg(long)]
    pub(crate) numeric: bool,
    /// Machine-readable report.
    #[arg(long)]
    pub(crate) json: bool,
}

impl Run for DiffArgs {
    fn run(self, opener: &Opener) -> anyhow::Result<ExitCode> {
        diff(self, opener)
    }

    fn wants_json(&self) -> bool {
        self.json
    }
}

/// `diff A B`: exit 0 identical, 1 different.
fn diff(a: DiffArgs, opener: &Opener) -> anyhow::Result<ExitCode> {
    let (sa, sb) = (
        Source::open_for_diff(&a.a, opener)?,
        Source::open_for_diff(&a.b, opener)?,
    );
    let opts = aero_convert::diff::DiffOptions { numeric: a.numeric };
    let r = aero_convert::diff::diff(sa.as_dyn(), sb.as_dyn(), &opts)?;
    let identical = r.identical();
    if a.json {
        out::print_json(&json!({
            "a": a.a.display().to_string(),
            "b": a.b.display().to_string(),
            "identical": identical,
            "only_in_a": r.only_in_a,
            "only_in_b": r.only_in_b,
            "order_changed": r.order_changed,
            "tensors": r.tensors,
        }))?;
    } else {
        print_diff(&a, &r);
    }
    Ok(if identical {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_diff(a: &DiffArgs, r: &aero_convert::diff::DiffReport) {
    use aero_convert::diff::Numeric;
    let (na, nb) = (
        out::clean(&a.a.display().to_string()).into_owned(),
        out::clean(&a.b.display().to_string()).into_owned(),
    );
    println!("--- {na}\n+++ {nb}");
    for n in &r.only_in_a {
        println!("{} {}", out::red("only in A:"), out::clean(n));
    }
    for n in &r.only_in_b {
        println!("{} {}", out::red("only in B:"), out::clean(n));
    }
    let rows: Vec<Vec<String>> = r
        .changed()
        .map(|t| {
            let dtype = if t.dtype_changed {
                format!("{} -> {}", t.a.dtype, t.b.dtype)
            } else {
                t.a.dtype.clone()
            };
            let shape = if t.shape_changed {
                format!("{} -> {}", shape_str(&t.a.shape), shape_str(&t.b.shape))
            } else {
                shape_str(&t.a.shape)
            };
            let mut row = vec![out::clean(&t.name).into_owned(), dtype, shape];
            if a.numeric {
                row.extend(match &t.numeric {
                    Some(Numeric::Compared {
                        max_abs_err,
                        max_rel_err,
                        cosine,
                        ..
                    }) => vec![
                        format!("{max_abs_err:.3e}"),
                        format!("{max_rel_err:.3e}"),
                        cosine.map_or_else(|| "undefined".into(), |c| format!("{c:.6}")),
                    ],
                    Some(Numeric::ElementCountDiffers) => {
                        vec!["-".into(), "-".into(), "element counts differ".into()]
                    }
                    Some(Numeric::Unavailable { reason }) => {
                        vec!["-".into(), "-".into(), out::clean(reason).into_owned()]
                    }
                    None => vec!["-".into(), "-".into(), "-".into()],
                });
            }
            row
        })
        .collect();
    if !rows.is_empty() {
        let mut header = vec!["changed tensor", "dtype", "shape"];
        if a.numeric {
            header.extend(["max abs err", "max rel err", "cosine"]);
        }
        print!("{}", out::table(&header, &rows));
    }
    let same = r.tensors.iter().filter(|t| t.identical).count();
    let changed = r.tensors.len() - same;
    if r.order_changed {
        println!("tensor order differs");
    }
    println!(
        "{}: {same} identical, {changed} changed, {} only in A, {} only in B",
        if r.identical() {
            out::bold("identical")
        } else {
            out::red("different")
        },
        r.only_in_a.len(),
        r.only_in_b.len()
    );
}
