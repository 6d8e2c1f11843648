//! What a conversion writes, chosen by the output's name: the one rule
//! `aerotensor convert`, the explicit converters and Python's `convert()`
//! share.
//!
//! `convert IN OUT` ([`route`]):
//!
//! | OUT | IN: safetensors | IN: GGUF | IN: AERO |
//! |---|---|---|---|
//! | `*.aero`, or any other name | AERO | AERO | AERO (repack) |
//! | `*.safetensors` | refused | refused | safetensors (export) |
//! | `*.gguf` | refused | refused | GGUF (export) |
//! | a directory (existing, or ending in `/`) | `DIR/<IN stem>.aero` | same | same |
//!
//! Extensions compare case-insensitively. A safetensors or GGUF input with
//! a `.safetensors` or `.gguf` output is refused with the two commands that
//! do it through AERO (there is no direct path between the two formats,
//! and a same-format "conversion" would only copy the file). A sharded
//! safetensors checkpoint (`*.safetensors.index.json` or its directory)
//! becomes an AEROSET, which is a directory: OUT is that directory whether
//! it exists, ends in `/` or is a new name without one of the three
//! extensions; a name with one of them is refused (an AEROSET is not a
//! `.aero` file). A Hugging Face model folder becomes one AERO file carrying
//! its other files (a directory output: `DIR/<folder name>.aero`), or, when
//! its weights are sharded and the output is not named `.aero`, an AEROSET
//! directory; a `.safetensors` or `.gguf` output is refused (`export-hf`
//! turns the result back into a folder). An AEROSET input is refused: there
//! is nothing to convert.
//!
//! The explicit commands ([`check_output`]) write one format each and
//! refuse an output whose extension names another, with the command that
//! writes it; a directory output gets `DIR/<IN stem>.<their extension>`.
//! Every refusal is [`ConvertError::WrongOutput`], a usage error.

use std::path::{Path, PathBuf};

use crate::{ConvertError, InputKind, Result};

/// A format an output's extension names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `.aero`
    Aero,
    /// `.safetensors`
    SafeTensors,
    /// `.gguf`
    Gguf,
}

impl Format {
    /// The format `path`'s extension names (case-insensitive), if any.
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "aero" => Format::Aero,
            "safetensors" => Format::SafeTensors,
            "gguf" => Format::Gguf,
            _ => return None,
        })
    }

    /// The extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Aero => "aero",
            Format::SafeTensors => "safetensors",
            Format::Gguf => "gguf",
        }
    }

    /// What users call it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Aero => "AERO",
            Format::SafeTensors => "safetensors",
            Format::Gguf => "GGUF",
        }
    }

    /// "an AERO", "a GGUF", "a safetensors" (followed by "file").
    fn a_name(self) -> &'static str {
        match self {
            Format::Aero => "an AERO",
            Format::SafeTensors => "a safetensors",
            Format::Gguf => "a GGUF",
        }
    }
}

/// What a conversion does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conversion {
    /// safetensors → AERO ([`crate::safetensors::import`]).
    ImportSafeTensors,
    /// GGUF → AERO ([`crate::gguf_convert::import`]).
    ImportGguf,
    /// AERO → AERO, rewritten ([`aero_io::repack`]).
    Repack,
    /// AERO → safetensors ([`crate::safetensors::export`]).
    ExportSafeTensors,
    /// AERO → GGUF ([`crate::gguf_convert::export`]).
    ExportGguf,
    /// Sharded safetensors → an AEROSET directory ([`crate::sharded::import`]).
    ShardedToSet,
    /// A Hugging Face model folder → one AERO file carrying its other files
    /// ([`crate::hf::Folder::write_file`]).
    FolderToFile,
    /// A sharded Hugging Face model folder → an AEROSET directory with its
    /// other files beside the manifest ([`crate::hf::Folder::write_set`]).
    FolderToSet,
}

impl Conversion {
    /// The explicit `aerotensor` command doing this conversion.
    pub fn command(self) -> &'static str {
        match self {
            Conversion::ImportSafeTensors => "convert-safetensors",
            Conversion::ImportGguf => "convert-gguf",
            Conversion::Repack => "repack",
            Conversion::ExportSafeTensors => "export-safetensors",
            Conversion::ExportGguf => "export-gguf",
            Conversion::ShardedToSet | Conversion::FolderToSet => "convert-safetensors-sharded",
            Conversion::FolderToFile => "convert",
        }
    }

    /// The file format it writes (`None`: an AEROSET directory).
    pub fn writes(self) -> Option<Format> {
        match self {
            Conversion::ImportSafeTensors
            | Conversion::ImportGguf
            | Conversion::Repack
            | Conversion::FolderToFile => Some(Format::Aero),
            Conversion::ExportSafeTensors => Some(Format::SafeTensors),
            Conversion::ExportGguf => Some(Format::Gguf),
            Conversion::ShardedToSet | Conversion::FolderToSet => None,
        }
    }
}

/// A conversion and the output it writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// What is done.
    pub conversion: Conversion,
    /// Where it is written: the output as given, or `DIR/<input stem>.<ext>`
    /// for a directory (an AEROSET's directory for
    /// [`Conversion::ShardedToSet`]).
    pub output: PathBuf,
}

/// Whether `path` names a directory: an existing one, or a path ending in
/// `/` (which names a directory whether it exists or not).
pub fn names_directory(path: &Path) -> bool {
    path.as_os_str().as_encoded_bytes().ends_with(b"/") || path.is_dir()
}

/// `dir/<input's file stem>.<ext>`, as `cp` names a file copied into a
/// directory (`model.Q4_K_M.gguf` → `model.Q4_K_M.aero`).
fn into_directory(input: &Path, dir: &Path, ext: &str) -> PathBuf {
    // The stem of the input as named (a trailing `/` on it is ignored).
    let stem = input
        .file_stem()
        .map(|s| s.to_os_string())
        .unwrap_or_else(|| "model".into());
    let mut name = stem;
    name.push(".");
    name.push(ext);
    dir.join(name)
}

fn wrong(output: &Path, reason: String) -> ConvertError {
    ConvertError::WrongOutput {
        output: output.to_path_buf(),
        reason,
    }
}

/// What `convert INPUT OUTPUT` does for an input of `kind` (see the module
/// docs): the conversion, and the output resolved for a directory.
pub fn route(input: &Path, kind: InputKind, output: &Path) -> Result<Route> {
    let conversion = match kind {
        InputKind::AeroSet => {
            return Err(ConvertError::unsupported(
                input,
                None,
                "is an AEROSET; nothing to convert (export it as floats with `aerotensor \
                 export-safetensors SET OUT --dequantize f16|bf16|f32`)",
            ));
        }
        InputKind::ShardedSafeTensors => {
            if !names_directory(output)
                && let Some(f) = Format::of(output)
            {
                return Err(wrong(
                    output,
                    format!(
                        "names {} file, but a sharded safetensors checkpoint converts to an \
                         AEROSET, which is a directory: name a directory (e.g. dist/model/)",
                        f.a_name()
                    ),
                ));
            }
            return Ok(Route {
                conversion: Conversion::ShardedToSet,
                output: output.to_path_buf(),
            });
        }
        InputKind::HfFolder => {
            // A sharded folder becomes an AEROSET (a directory) unless the
            // output is named .aero; a single-file folder becomes one file.
            let sharded = !crate::hf::index_files(input).is_empty();
            let named = (!names_directory(output))
                .then(|| Format::of(output))
                .flatten();
            match named {
                Some(f @ (Format::SafeTensors | Format::Gguf)) => {
                    return Err(wrong(
                        output,
                        format!(
                            "names {} file; a model folder converts to AERO (`aerotensor convert \
                             {} MODEL.aero`), and back to a folder with `aerotensor export-hf`",
                            f.a_name(),
                            input.display()
                        ),
                    ));
                }
                Some(Format::Aero) => Conversion::FolderToFile,
                None if sharded => {
                    return Ok(Route {
                        conversion: Conversion::FolderToSet,
                        output: output.to_path_buf(),
                    });
                }
                None => Conversion::FolderToFile,
            }
        }
        InputKind::SafeTensors => Conversion::ImportSafeTensors,
        InputKind::Gguf => Conversion::ImportGguf,
        InputKind::Aero => Conversion::Repack,
    };
    let output = if names_directory(output) {
        into_directory(input, output, Format::Aero.extension())
    } else {
        output.to_path_buf()
    };
    let conversion = match (conversion, Format::of(&output)) {
        (Conversion::Repack, Some(Format::SafeTensors)) => Conversion::ExportSafeTensors,
        (Conversion::Repack, Some(Format::Gguf)) => Conversion::ExportGguf,
        (c, None | Some(Format::Aero)) => c,
        (_, Some(f)) => {
            let from = kind.name();
            let reason = if Some(f) == format_of(kind) {
                format!(
                    "the input is already {from}: nothing to convert (name the output .aero to \
                     convert it to AERO)"
                )
            } else {
                format!(
                    "names {} file; {from} converts to {} through AERO: `aerotensor convert \
                     {} MODEL.aero`, then `aerotensor export-{} MODEL.aero {}`",
                    f.a_name(),
                    f.name(),
                    input.display(),
                    f.extension(),
                    output.display()
                )
            };
            return Err(wrong(&output, reason));
        }
    };
    Ok(Route { conversion, output })
}

/// The format of a single-file input kind.
fn format_of(kind: InputKind) -> Option<Format> {
    match kind {
        InputKind::SafeTensors => Some(Format::SafeTensors),
        InputKind::Gguf => Some(Format::Gguf),
        InputKind::Aero => Some(Format::Aero),
        InputKind::ShardedSafeTensors | InputKind::AeroSet | InputKind::HfFolder => None,
    }
}

/// The output an explicit command writes, checked against its name (see
/// the module docs): `DIR/<input stem>.<ext>` for a directory (for
/// [`Conversion::ShardedToSet`], the directory itself), the output as
/// given otherwise; [`ConvertError::WrongOutput`] naming the command to
/// use when the extension names another format.
pub fn check_output(conversion: Conversion, input: &Path, output: &Path) -> Result<PathBuf> {
    let Some(writes) = conversion.writes() else {
        // An AEROSET directory.
        if !names_directory(output)
            && let Some(f) = Format::of(output)
        {
            return Err(wrong(
                output,
                format!(
                    "names {} file, but `aerotensor {}` writes an AEROSET, which is a \
                     directory: name a directory (e.g. dist/model/)",
                    f.a_name(),
                    conversion.command()
                ),
            ));
        }
        return Ok(output.to_path_buf());
    };
    if names_directory(output) {
        return Ok(into_directory(input, output, writes.extension()));
    }
    match Format::of(output) {
        Some(f) if f != writes => {
            let hint = match f {
                Format::Aero => "use `aerotensor repack` (or `aerotensor convert`)".to_owned(),
                Format::SafeTensors | Format::Gguf
                    if conversion != Conversion::Repack && writes == Format::Aero =>
                {
                    format!(
                        "name it .aero; to get {}, then run `aerotensor export-{} MODEL.aero {}`",
                        f.name(),
                        f.extension(),
                        output.display()
                    )
                }
                f => format!(
                    "use `aerotensor export-{}` (or `aerotensor convert`)",
                    f.extension()
                ),
            };
            Err(wrong(
                output,
                format!(
                    "names {} file, but `aerotensor {}` writes {}: {hint}",
                    f.a_name(),
                    conversion.command(),
                    writes.name()
                ),
            ))
        }
        _ => Ok(output.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(kind: InputKind, out: &str) -> Result<Route> {
        route(Path::new("in/model.x"), kind, Path::new(out))
    }

    #[test]
    fn convert_chooses_by_the_output() {
        use Conversion::*;
        let c = |kind, out| r(kind, out).map(|r| (r.conversion, r.output));
        assert_eq!(
            c(InputKind::SafeTensors, "a.aero").unwrap(),
            (ImportSafeTensors, "a.aero".into())
        );
        assert_eq!(c(InputKind::Gguf, "a.bin").unwrap().0, ImportGguf);
        assert_eq!(c(InputKind::Aero, "a.AERO").unwrap().0, Repack);
        assert_eq!(
            c(InputKind::Aero, "b.safetensors").unwrap().0,
            ExportSafeTensors
        );
        assert_eq!(c(InputKind::Aero, "b.GGUF").unwrap().0, ExportGguf);
        assert_eq!(
            c(InputKind::Gguf, "dist/").unwrap(),
            (ImportGguf, "dist/model.aero".into())
        );
        for (k, out) in [
            (InputKind::SafeTensors, "b.safetensors"),
            (InputKind::SafeTensors, "b.gguf"),
            (InputKind::Gguf, "b.safetensors"),
            (InputKind::ShardedSafeTensors, "b.aero"),
        ] {
            assert!(
                matches!(r(k, out), Err(ConvertError::WrongOutput { .. })),
                "{k:?} -> {out}"
            );
        }
        assert_eq!(
            c(InputKind::ShardedSafeTensors, "dist/set").unwrap().0,
            ShardedToSet
        );
        assert!(r(InputKind::AeroSet, "x").is_err());
    }

    #[test]
    fn explicit_commands_refuse_another_format() {
        let chk = |c, out| check_output(c, Path::new("m.gguf"), Path::new(out));
        assert!(chk(Conversion::ImportGguf, "m.safetensors").is_err());
        assert!(chk(Conversion::ExportGguf, "m.safetensors").is_err());
        assert!(chk(Conversion::ExportSafeTensors, "m.aero").is_err());
        assert!(chk(Conversion::ShardedToSet, "m.aero").is_err());
        assert_eq!(
            chk(Conversion::ImportGguf, "m.bin").unwrap(),
            Path::new("m.bin")
        );
        assert_eq!(chk(Conversion::ExportGguf, "-").unwrap(), Path::new("-"));
        assert_eq!(
            chk(Conversion::ExportGguf, "d/").unwrap(),
            Path::new("d/m.gguf")
        );
    }
}
