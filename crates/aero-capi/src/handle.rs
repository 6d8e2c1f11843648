//! What a handle holds: an opened file or set, and the bytes handed out
//! through it, kept alive (and at a fixed address) until the handle closes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{OnceLock, RwLock};

use aero_convert::state_dict::{FloatData, StateDict, StateDictOptions, TensorSource};
use aero_io::{Mode, TensorIndex, TensorInfo, TensorView, Verdict};

use crate::error::aero_error_code_t as Code;
use crate::error::{CError, CResult};

/// How to open a path or URL (the C `aero_open_options`, decoded).
#[derive(Clone, Debug, Default)]
pub(crate) struct OpenOptions {
    /// A local AEROSET manifest may name remote parts (`--remote`).
    pub(crate) allow_remote_parts: bool,
    /// No remote range cache.
    pub(crate) no_cache: bool,
    /// Hash every weight shard once at open (`AeroFile::verify_all`).
    pub(crate) verify_all: bool,
    /// Cache directory instead of `$AEROTENSOR_CACHE_DIR` / `~/.cache/aerotensor`.
    pub(crate) cache_dir: Option<PathBuf>,
}

impl OpenOptions {
    /// The library opener's options ([`aero_set::Model::open`], which the
    /// CLI and Python use too).
    fn model(&self) -> aero_set::OpenOptions {
        use aero_set::model::{CacheChoice, RemoteSettings};
        aero_set::OpenOptions {
            allow_remote_parts: self.allow_remote_parts,
            remote: RemoteSettings {
                cache: match (&self.cache_dir, self.no_cache) {
                    (_, true) => CacheChoice::Off,
                    (Some(d), false) => CacheChoice::Dir(d.clone()),
                    (None, false) => CacheChoice::Default,
                },
                jobs: None,
            },
            verify_all: self.verify_all,
            ..aero_set::OpenOptions::default()
        }
    }
}

/// An opened `.aero` file or AEROSET.
pub(crate) struct Source(aero_set::Model);

impl Source {
    /// Opens what the CLI's read commands and Python open, by the same
    /// opener ([`aero_set::Model::open`]) under the same trust rules: a
    /// `.aero` path; an AEROSET manifest or its directory (remote parts
    /// only with `allow_remote_parts`); a URL of a file, or of a manifest
    /// (`….json`, or a directory URL ending in `/`).
    pub(crate) fn open(target: &Path, opts: &OpenOptions) -> CResult<Source> {
        Ok(Source(aero_set::Model::open(target, &opts.model())?))
    }

    pub(crate) fn index(&self) -> CResult<&TensorIndex> {
        Ok(self.0.index()?)
    }

    pub(crate) fn info(&self, name: &str) -> CResult<&TensorInfo> {
        Ok(self.0.info(name)?)
    }

    /// A tensor as C sees it: its entry, its row-major shape and its own
    /// byte length, whatever order and padding the file stores (aero-io's
    /// rule for reference GGUF-origin files, [`aero_io::ShapeOrder`]).
    pub(crate) fn described(&self, name: &str) -> CResult<(&TensorInfo, Vec<u64>, u64)> {
        Ok(self.0.described(name)?)
    }

    /// Hashes every weight shard once (every part of a set); afterwards
    /// verified reads of a local file hand out bytes without hashing again.
    pub(crate) fn verify_all(&self) -> CResult<()> {
        Ok(self.0.verify_all()?)
    }

    fn verified(&self, name: &str) -> CResult<TensorView<'_>> {
        Ok(self.0.tensor(name)?)
    }

    fn unverified(&self, name: &str) -> CResult<TensorView<'_>> {
        Ok(self.0.tensor_unverified(name)?)
    }

    /// Validates in `mode`: the verdict and the report as JSON (the
    /// schema of `aerotensor validate --json`).
    pub(crate) fn validate(&self, mode: Mode) -> CResult<(Verdict, String)> {
        let json = |e: serde_json::Error| CError::new(Code::AERO_E_IO, e.to_string());
        Ok(match &self.0 {
            aero_set::Model::File(f) => {
                let r = aero_io::validate(f, mode, &|_| {});
                (r.verdict, serde_json::to_string(&r).map_err(json)?)
            }
            aero_set::Model::Set(s) => {
                let r = aero_set::validate_set(s, mode, &|_| {});
                (r.verdict, serde_json::to_string(&r).map_err(json)?)
            }
        })
    }

    fn tensor_source(&self) -> &dyn TensorSource {
        &self.0
    }
}

/// Bytes handed out to C: `ptr..ptr+len` stays valid and unchanged while
/// this value lives. It points into the file's memory map (which lives as
/// long as the handle's `Source`) or into `owned`, whose heap buffer does
/// not move when a `Held` is moved.
pub(crate) struct Held {
    ptr: *const u8,
    len: usize,
    /// The buffer `ptr` points into, when it is not the mapping.
    _owned: Option<Box<dyn std::any::Any + Send + Sync>>,
}

// SAFETY: `Held` is a read-only view of bytes that are never written after
// it is made (a read-only file mapping, or buffers it owns and never hands
// out mutably); sharing or sending such a pointer between threads is as
// safe as sharing a `&[u8]`.
unsafe impl Send for Held {}
// SAFETY: as above: nothing mutates the bytes behind `ptr`.
unsafe impl Sync for Held {}

/// A valid, non-null address for empty tensors.
static EMPTY: [u8; 8] = [0; 8];

impl Held {
    /// Keeps a view's bytes: its address when the view borrows the file's
    /// mapping (zero-copy), else a copy the `Held` owns.
    fn from_view(v: &TensorView<'_>) -> Held {
        if v.is_zero_copy() {
            Held {
                ptr: v.bytes().as_ptr(),
                len: v.bytes().len(),
                _owned: None,
            }
        } else {
            Self::owning(v.bytes().to_vec())
        }
    }

    /// Owns `v`; its heap buffer stays where it is when the `Vec` moves.
    fn owning<T: Send + Sync + 'static>(v: Vec<T>) -> Held {
        Held {
            ptr: v.as_ptr().cast(),
            len: std::mem::size_of_val(v.as_slice()),
            _owned: Some(Box::new(v)),
        }
    }

    fn from_float(d: FloatData<'_>) -> Held {
        match d {
            FloatData::Stored(v) => Self::from_view(&v),
            FloatData::F32(v) => Self::owning(v),
            FloatData::F16(v) => Self::owning(v),
        }
    }

    /// The address to hand out (never null) and the length.
    pub(crate) fn raw(&self) -> (*const u8, usize) {
        if self.len == 0 {
            (EMPTY.as_ptr(), 0)
        } else {
            (self.ptr, self.len)
        }
    }

    /// The bytes, for a verified copy.
    pub(crate) fn with_bytes<T>(&self, f: impl FnOnce(&[u8]) -> T) -> T {
        if self.len == 0 {
            return f(&[]);
        }
        // SAFETY: `ptr..ptr+len` is valid for reads and unchanged while
        // `self` lives (see the type's invariant), and `self` outlives `f`.
        f(unsafe { std::slice::from_raw_parts(self.ptr, self.len) })
    }
}

/// Tells a live handle of ours from a stray pointer of another type
/// (best effort: a freed or foreign pointer cannot be detected reliably).
pub(crate) const HANDLE_MAGIC: u64 = 0x4145_524f_4841_4e44; // "AEROHAND"
pub(crate) const STATE_DICT_MAGIC: u64 = 0x4145_524f_5344_4943; // "AEROSDIC"

/// The state behind an `aero_handle_t`.
pub(crate) struct Handle {
    pub(crate) source: Source,
    /// Bytes handed out by verified calls, by tensor name.
    verified: RwLock<HashMap<String, Held>>,
    /// Bytes handed out by `aero_tensor_ptr_unverified` (non-mapped sources).
    unverified: RwLock<HashMap<String, Held>>,
}

impl Handle {
    pub(crate) fn new(source: Source) -> Handle {
        Handle {
            source,
            verified: RwLock::new(HashMap::new()),
            unverified: RwLock::new(HashMap::new()),
        }
    }

    fn cached(map: &RwLock<HashMap<String, Held>>, name: &str) -> Option<(*const u8, usize)> {
        map.read().ok()?.get(name).map(Held::raw)
    }

    fn keep(map: &RwLock<HashMap<String, Held>>, name: &str, held: Held) -> (*const u8, usize) {
        match map.write() {
            // Two threads may have verified the same tensor: the first kept
            // copy wins and both return it.
            Ok(mut m) => m.entry(name.to_owned()).or_insert(held).raw(),
            Err(poisoned) => poisoned
                .into_inner()
                .entry(name.to_owned())
                .or_insert(held)
                .raw(),
        }
    }

    /// The verified bytes of a tensor, kept until the handle closes:
    /// checked once against the strongest hash the file records for them
    /// (zero-copy from a local file's mapping).
    pub(crate) fn verified_ptr(&self, name: &str) -> CResult<(*const u8, usize)> {
        if let Some(p) = Self::cached(&self.verified, name) {
            return Ok(p);
        }
        let view = self.source.verified(name)?;
        Ok(Self::keep(&self.verified, name, Held::from_view(&view)))
    }

    /// The bytes of a tensor, NOT verified (unless they already were).
    pub(crate) fn unverified_ptr(&self, name: &str) -> CResult<(*const u8, usize)> {
        if let Some(p) = Self::cached(&self.verified, name) {
            return Ok(p);
        }
        if let Some(p) = Self::cached(&self.unverified, name) {
            return Ok(p);
        }
        let view = self.source.unverified(name)?;
        Ok(Self::keep(&self.unverified, name, Held::from_view(&view)))
    }

    /// Copies a tensor's verified bytes into `out` (exactly its length),
    /// without keeping a copy.
    pub(crate) fn copy_verified(&self, name: &str, out: &mut [u8]) -> CResult<usize> {
        let have = out.len();
        let copy = |b: &[u8]| -> CResult<usize> {
            let dst = out
                .get_mut(..b.len())
                .ok_or_else(|| too_small(b.len(), have))?;
            dst.copy_from_slice(b);
            Ok(b.len())
        };
        if let Ok(m) = self.verified.read()
            && let Some(h) = m.get(name)
        {
            return h.with_bytes(copy);
        }
        let view = self.source.verified(name)?;
        let mut copy = copy;
        copy(view.bytes())
    }
}

pub(crate) fn too_small(need: usize, have: usize) -> CError {
    CError::new(
        Code::AERO_E_BUFFER_TOO_SMALL,
        format!("the buffer holds {have} bytes, {need} are needed"),
    )
}

/// The state behind an `aero_state_dict_handle_t`.
pub(crate) struct StateHandle {
    source: Source,
    pub(crate) plan: StateDict,
    data: Vec<OnceLock<Held>>,
}

impl StateHandle {
    pub(crate) fn open(path: &Path, gguf_name_mapping: bool) -> CResult<StateHandle> {
        let source = Source::open(path, &OpenOptions::default())?;
        let plan = StateDict::plan(
            source.tensor_source(),
            &StateDictOptions { gguf_name_mapping },
        )?;
        let data = plan.entries().iter().map(|_| OnceLock::new()).collect();
        Ok(StateHandle { source, plan, data })
    }

    /// Tensor `i` as floats, made (verified, converted) on first use and
    /// kept until the state dict is freed.
    pub(crate) fn tensor(&self, i: usize) -> CResult<(*const u8, usize)> {
        let cell = self
            .data
            .get(i)
            .ok_or_else(|| CError::new(Code::AERO_E_NOT_FOUND, format!("no tensor {i}")))?;
        if let Some(h) = cell.get() {
            return Ok(h.raw());
        }
        let d = self.plan.load(self.source.tensor_source(), i)?;
        let held = Held::from_float(d);
        // Another thread may have stored it first: both hand out that one.
        Ok(cell.get_or_init(|| held).raw())
    }
}

/// Compile-time check of the header's promise: handles may be used from
/// several threads at once.
const _: fn() = || {
    fn sync_send<T: Sync + Send>() {}
    sync_send::<Handle>();
    sync_send::<StateHandle>();
};
