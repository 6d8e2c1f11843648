//! The writers `convert` and `convert-safetensors-sharded` share: a
//! sharded checkpoint as an AEROSET ([`write_set`]) and a Hugging Face
//! model folder as one file or a set ([`convert_folder`]).

use std::path::Path;
use std::process::ExitCode;

use aero_convert::sharded::ShardedSafetensors;
use aero_set::SetWriteOptions;
use anyhow::{Context, bail};

use super::args::ConvertArgs;
use super::like::LikeArgs;
use super::written::{report_set_written, report_written_with};
use crate::out;
use crate::remote::Opener;

/// The AEROSET options of a conversion that writes one.
pub(crate) struct SetParams {
    /// `--max-part-shards`.
    pub(crate) max_part_shards: usize,
    /// `--base-url`.
    pub(crate) base_url: Option<String>,
    /// `--like`.
    pub(crate) like: LikeArgs,
}

impl Default for SetParams {
    /// What `convert` writes: the default part size, no base URL, no `--like`.
    fn default() -> Self {
        SetParams {
            max_part_shards: aero_set::writer::DEFAULT_MAX_PART_SHARDS,
            base_url: None,
            like: LikeArgs::default(),
        }
    }
}

/// A sharded safetensors checkpoint, already recognised as one, written as
/// an AEROSET at an output already checked (this command, and `convert`).
pub(crate) fn write_set(
    a: ConvertArgs,
    set: SetParams,
    opener: &Opener,
) -> anyhow::Result<ExitCode> {
    let mut inp = ShardedSafetensors::open(&a.input)?;
    inp.identity = a.identity.identity();
    let index_dir = inp.index_path().parent().map(Path::to_path_buf);
    if let (Some(d), Ok(o)) = (index_dir, a.output.canonicalize())
        && d.canonicalize().is_ok_and(|d| d == o)
    {
        bail!(
            "{}: the output directory is the input's directory",
            a.output.display()
        );
    }
    let base = SetWriteOptions {
        file: a.writer.options(),
        max_part_shards: set.max_part_shards,
        // Like the single-file converters, which write over an existing
        // output: an existing AEROSET (and nothing else) is replaced.
        replace: true,
        base_url: set.base_url,
        manifest_extra: Default::default(),
        like: set.like.plan(opener)?,
    };
    let pb = out::bytes_bar(inp.data_len(), "converting");
    let bar = pb.clone();
    let s = inp
        .write(&a.output, &base, &move |n| bar.inc(n))
        .with_context(|| format!("converting {}", a.input.display()))?;
    pb.finish_and_clear();
    let mut extra = serde_json::Map::new();
    set.like.json(&s, &mut extra);
    report_set_written(&a.output, &s, a.json, extra)?;
    if !a.json {
        set.like.print(&s);
    }
    Ok(ExitCode::SUCCESS)
}

/// `convert` of a Hugging Face model folder: one .aero file, or, with
/// `set`, an AEROSET (`convert-safetensors-sharded`, or `convert` of a
/// sharded folder whose output does not end in `.aero`, as
/// [`aero_convert::route`] decided).
pub(crate) fn convert_folder(
    a: ConvertArgs,
    set: Option<SetParams>,
    opener: &Opener,
) -> anyhow::Result<ExitCode> {
    let mut folder = aero_convert::hf::Folder::open(&a.input)?;
    folder.identity = a.identity.identity();
    if let (Ok(o), Ok(d)) = (std::path::absolute(&a.output), a.input.canonicalize()) {
        let o = o
            .parent()
            .and_then(|p| p.canonicalize().ok())
            .map(|p| p.join(o.file_name().unwrap_or_default()))
            .unwrap_or(o);
        if o.starts_with(&d) {
            bail!(
                "{}: is inside the input folder {}; write the output elsewhere",
                a.output.display(),
                a.input.display()
            );
        }
    }
    for l in folder.left_out() {
        eprintln!(
            "aerotensor: note: {}: left out {} ({})",
            out::clean(&a.input.display().to_string()),
            out::clean(&l.name),
            l.reason
        );
    }
    let (name, arch) = folder.identity();
    let mut extra = serde_json::Map::new();
    extra.insert(
        "model".into(),
        serde_json::json!({"name": name, "architecture": arch}),
    );
    extra.insert(
        "attached_files".into(),
        serde_json::json!(folder.files().iter().map(|f| &f.name).collect::<Vec<_>>()),
    );
    extra.insert(
        "left_out".into(),
        serde_json::json!(
            folder
                .left_out()
                .iter()
                .map(|l| serde_json::json!({"name": l.name, "reason": l.reason}))
                .collect::<Vec<_>>()
        ),
    );
    let pb = out::bytes_bar(folder.data_len(), "converting");
    let bar = pb.clone();
    if let Some(p) = set {
        let base = aero_set::SetWriteOptions {
            file: a.writer.options(),
            max_part_shards: p.max_part_shards,
            replace: true,
            base_url: p.base_url,
            manifest_extra: Default::default(),
            like: p.like.plan(opener)?,
        };
        let s = folder
            .write_set(&a.output, &base, &move |n| bar.inc(n))
            .with_context(|| format!("converting {}", a.input.display()))?;
        pb.finish_and_clear();
        p.like.json(&s, &mut extra);
        report_set_written(&a.output, &s, a.json, extra)?;
        if !a.json {
            p.like.print(&s);
        }
    } else {
        let s = folder
            .write_file(&a.output, &a.writer.options(), &move |n| bar.inc(n))
            .with_context(|| format!("converting {}", a.input.display()))?;
        pb.finish_and_clear();
        if !a.json {
            eprintln!(
                "{}: model {}, architecture {}; {} attached file{}",
                out::clean(&a.input.display().to_string()),
                out::clean(&name),
                out::clean(&arch),
                folder.files().len(),
                if folder.files().len() == 1 { "" } else { "s" }
            );
        }
        report_written_with(&a.output, &s, a.json, extra)?;
    }
    Ok(ExitCode::SUCCESS)
}
