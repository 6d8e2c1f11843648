//! # aero-convert
//!
//! Lossless conversion between AERO and safetensors / GGUF, streaming tensor
//! bytes with bounded memory.
//!
//! - [`safetensors::import`] / [`safetensors::export`]
//! - [`gguf_convert::import`] / [`gguf_convert::export`]
//! - [`hf::Folder`] / [`hf::export`]: a Hugging Face model folder (weights,
//!   configuration, tokenizer) into one AERO file or set, and back.
//! - [`detect`] recognises an input by its content; [`route`] chooses what
//!   a conversion writes from the output's name.
//! - [`describe`]: what a GGUF, safetensors or AERO file holds (key/values,
//!   tensor types, bits per weight), read-only, for `inspect` and `list`.
//! - [`foreign`]: a safetensors or GGUF file read as the converter would
//!   hold it, so [`diff`] can compare it with an AERO file.
//! - [`state_dict`]: every tensor as floats, llama-family GGUF names mapped
//!   to Hugging Face names (what the C ABI's state-dict calls hand out).
//!
//! Conventions for what AERO v0.1 cannot express natively (FP8/FP6/FP4
//! safetensors dtypes, GGUF key/values) are documented in `docs/CONVERSION.md`.
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

/// A converter module's `import` and `import_with` and its [`ImportInput`]
/// impl, from its `Input` (with `open`, `options`, `specs` and
/// `check_import`): every converter's entry points are these, written once.
macro_rules! import_entry_points {
    ($what:literal) => {
        #[doc = concat!("Converts a ", $what, " file to AERO. `base` carries the layout, UUID,")]
        /// shard size and integrity options; model name and metadata come
        /// from the input.
        pub fn import(input: &Path, output: &Path, base: &WriteOptions) -> Result<WriteSummary> {
            import_with(&Input::open(input)?, output, base, &|_| {})
        }

        /// [`import`] with a wrapper around every tensor reader (e.g. for progress).
        pub fn import_with(
            inp: &Input,
            output: &Path,
            base: &WriteOptions,
            progress: &crate::Progress<'_>,
        ) -> Result<WriteSummary> {
            crate::import_input(inp, output, base, &crate::Identity::default(), progress)
        }

        /// [`import_with`], the model name and architecture given by the
        /// caller where `identity` has them (over what the input says).
        pub fn import_as(
            inp: &Input,
            output: &Path,
            base: &WriteOptions,
            identity: &crate::Identity,
            progress: &crate::Progress<'_>,
        ) -> Result<WriteSummary> {
            crate::import_input(inp, output, base, identity, progress)
        }

        impl crate::ImportInput for Input {
            fn check(&self, base: &WriteOptions) -> Result<()> {
                Input::check_import(self, base)
            }
            fn path(&self) -> &std::path::Path {
                &self.path
            }
            fn options(&self, base: &WriteOptions) -> WriteOptions {
                Input::options(self, base)
            }
            fn specs<'s>(
                &'s self,
                progress: &'s crate::Progress<'s>,
            ) -> Result<Vec<TensorSpec<'s>>> {
                Input::specs(self, progress)
            }
        }
    };
}

/// A converter module's `export` and `export_with`, from its
/// `check_exportable` and `export_checked` (which writes an input already
/// opened by [`open_export_input`]): written once for every exporter.
macro_rules! export_entry_points {
    ($(#[$doc:meta])*) => {
        $(#[$doc])*
        pub fn export(input: &Path, output: &Path) -> Result<u64> {
            export_with(input, output, &aero_io::CopyOptions::default())
        }

        /// [`export`] with options: verification (on unless explicitly turned
        /// off), durability of the output, progress.
        pub fn export_with(
            input: &Path,
            output: &Path,
            opts: &aero_io::CopyOptions<'_>,
        ) -> Result<u64> {
            let f = crate::open_export_input(input, output, check_exportable)?;
            export_checked(f, input, output, opts)
        }
    };
}

// The layout says what the crate holds: converters (`convert/`), the GGUF
// codec (`gguf/`), what a file holds (`describe.rs`), the state dict
// (`state_dict/`) and comparison (`diff/`, with `foreign` inputs).
mod convert;
pub mod describe;
pub mod diff;
mod error;
pub mod gguf;
pub mod state_dict;

pub use convert::detect::{InputKind, detect};
pub use convert::{floats, gguf_convert, hf, route, safetensors, sharded};
pub use diff::foreign;
pub use error::{ConvertError, Result};

/// A reader of tensor bytes, as the streaming writer consumes them.
pub type TensorReader<'a> = Box<dyn std::io::Read + Send + 'a>;

/// Told how many tensor bytes were streamed (for a progress bar).
pub type Progress<'w> = dyn Fn(u64) + Sync + 'w;

/// Calls a [`Progress`] callback for every block the writer streams.
struct ProgressObserver<'a>(&'a Progress<'a>);

impl aero_io::write::Observer for ProgressObserver<'_> {
    fn bytes(&mut self, block: &[u8]) -> std::io::Result<()> {
        (self.0)(block.len() as u64);
        Ok(())
    }
}

/// Counts bytes read through it.
struct Counting<'a> {
    inner: TensorReader<'a>,
    progress: &'a Progress<'a>,
}

impl std::io::Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

/// The bytes `offset..offset+len` of an input for the streaming writer: the
/// file range itself when the input is a local file (the writer reads it
/// with positioned reads on its reading thread), else a positioned reader.
/// Writer specs for `infos` (entries whose `data_off` is an absolute
/// offset in `src`), in the order given, each reading straight from the
/// input (its mapping when local): what every converter of a mapped input
/// hands the writer. Errors name `path`.
pub(crate) fn mapped_specs<'a>(
    src: aero_io::SourceRef<'a>,
    path: &std::path::Path,
    infos: Vec<aero_io::TensorInfo>,
    progress: &'a Progress<'a>,
) -> Result<Vec<aero_io::write::TensorSpec<'a>>> {
    infos
        .into_iter()
        .map(|t| {
            let bytes = input_bytes(src, t.data_off, t.data_len, progress)
                .map_err(|e| ConvertError::io(path, e))?;
            Ok(aero_io::write::TensorSpec {
                name: t.name,
                dtype: t.dtype,
                shape: t.shape,
                data_len: t.data_len,
                extras: t.extras,
                bytes,
            })
        })
        .collect()
}

pub(crate) fn input_bytes<'a>(
    src: aero_io::SourceRef<'a>,
    offset: u64,
    len: u64,
    progress: &'a Progress<'a>,
) -> std::io::Result<aero_io::write::TensorBytes<'a>> {
    use aero_io::write::TensorBytes;
    if let Some(file) = src.local_file() {
        if offset
            .checked_add(len)
            .is_none_or(|e| e > src.bytes().len())
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "tensor range past the end of the input",
            ));
        }
        let observers: Vec<Box<dyn aero_io::write::Observer + 'a>> =
            vec![Box::new(ProgressObserver(progress))];
        return Ok(TensorBytes::File(aero_io::write::FileRange {
            file,
            offset,
            observers,
            chunk: None,
        }));
    }
    let inner = aero_io::range_reader(src, offset, len)?;
    Ok(TensorBytes::Reader(Box::new(Counting { inner, progress })))
}

/// What one import routine ([`import_input`]) needs of a converter's parsed
/// input: the checks made before anything is written, the writer options
/// and the tensors. A new converter implements it for its `Input` and its
/// `import`/`import_with` are then one call each.
pub(crate) trait ImportInput {
    /// Refuses an input that must not reach the writer (no tensors, a
    /// layout the converter cannot honour for it).
    fn check(&self, base: &aero_io::write::WriteOptions) -> Result<()>;
    /// The input file, named in errors.
    fn path(&self) -> &std::path::Path;
    /// Writer options (model name, MJSN extras) on top of `base`.
    fn options(&self, base: &aero_io::write::WriteOptions) -> aero_io::write::WriteOptions;
    /// Every tensor, its bytes streamed from the input.
    fn specs<'s>(
        &'s self,
        progress: &'s Progress<'s>,
    ) -> Result<Vec<aero_io::write::TensorSpec<'s>>>;
}

/// A model name and architecture given by the caller (`--model-name`,
/// `--architecture`), over what a converter reads from its input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// The model name, when given.
    pub model_name: Option<String>,
    /// The architecture, when given.
    pub architecture: Option<String>,
}

impl Identity {
    /// Sets what is given on `o`.
    pub fn apply(&self, o: &mut aero_io::write::WriteOptions) {
        if let Some(n) = &self.model_name {
            o.model_name = n.clone();
        }
        if let Some(a) = &self.architecture {
            o.architecture = a.clone();
        }
    }

    /// Whether nothing is given.
    pub fn is_empty(&self) -> bool {
        self.model_name.is_none() && self.architecture.is_none()
    }
}

/// Checks `inp` and writes it to `output` as AERO (atomically).
pub(crate) fn import_input(
    inp: &impl ImportInput,
    output: &std::path::Path,
    base: &aero_io::write::WriteOptions,
    identity: &Identity,
    progress: &Progress<'_>,
) -> Result<aero_io::write::WriteSummary> {
    inp.check(base)?;
    let mut opts = inp.options(base);
    identity.apply(&mut opts);
    aero_io::write::write_model(output, inp.specs(progress)?, &opts)
        .map_err(|e| e.in_input(inp.path()).into())
}

/// Maps an I/O or parse failure of a source file into a [`ConvertError`].
pub(crate) fn open_source(path: &std::path::Path) -> Result<aero_io::LocalSource> {
    aero_io::LocalSource::open(path).map_err(|e| ConvertError::io(path, e))
}

/// An exporter's input: refused when it is the output, opened with its
/// metadata checked ([`open_aero_checked`]), then checked by the exporter's
/// own `exportable` rule.
pub(crate) fn open_export_input(
    input: &std::path::Path,
    output: &std::path::Path,
    exportable: impl FnOnce(&aero_io::AeroFile) -> Result<()>,
) -> Result<aero_io::AeroFile> {
    aero_io::output::refuse_same_file(output, input)?;
    let f = open_aero_checked(input)?;
    exportable(&f)?;
    Ok(f)
}

/// Opens an AERO input of an exporter and checks its metadata (quick
/// validation: header, TOC, metadata chunk hashes, tensor table); tensor
/// bytes are verified as they are copied.
pub(crate) fn open_aero_checked(input: &std::path::Path) -> Result<aero_io::AeroFile> {
    let f = aero_io::AeroFile::open(input)?;
    let r = aero_io::validate(&f, aero_io::Mode::Quick, &|_| {});
    if r.verdict == aero_io::Verdict::Invalid {
        return Err(aero_io::Error::input_damaged_by(&f, &r).into());
    }
    Ok(f)
}
