//! [`AeroSet`]: an opened AEROSET.

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use aero_io::{AeroFile, TensorIndex, TensorInfo, TensorView};

use crate::error::{Result, SetError};
use crate::manifest::{MANIFEST_NAME, MAX_MANIFEST_LEN, PartEntry, SetManifest, manifest_path};
use crate::resolve::{LocalStorage, Location, PartStorage, SetBase, SetOptions, resolve};

/// An opened AEROSET: the manifest, the index file (global TIDX) and parts
/// that are opened on first use and then kept open (memory-mapped when local).
///
/// A tensor is located through the global TIDX (its `shard_id`), then the
/// part whose `shards` list that id, then **by name** through the part's own
/// TIDX: this reads sets whose parts number shards locally (as the reference
/// writer does) and sets whose parts use global shard ids alike.
///
/// ```no_run
/// let set = aero_set::AeroSet::open("model-dir")?;      // or .../model.aeroset.json
/// for t in set.index()?.tensors() {
///     let v = set.tensor(&t.name)?;                     // zero-copy from the part's mapping
///     println!("{} {:?} {} bytes", t.name, t.shape, v.bytes().len());
/// }
/// # Ok::<(), aero_set::SetError>(())
/// ```
pub struct AeroSet {
    manifest_path: PathBuf,
    base: SetBase,
    manifest: SetManifest,
    opts: SetOptions,
    storage: Arc<dyn PartStorage>,
    index: OnceLock<AeroFile>,
    parts: Vec<OnceLock<AeroFile>>,
}

impl std::fmt::Debug for AeroSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AeroSet")
            .field("manifest", &self.manifest_path)
            .field("parts", &self.parts.len())
            .finish()
    }
}

/// Where a tensor lives.
#[derive(Clone, Copy, Debug)]
pub struct Located<'a> {
    /// The global TIDX entry.
    pub global: &'a TensorInfo,
    /// Index of the part in [`SetManifest::parts`].
    pub part: usize,
}

impl AeroSet {
    /// Opens a local set: `path` is `model.aeroset.json` (or any manifest
    /// file) or a directory holding one. The manifest and the index file are
    /// read and checked; parts open on first use. Remote parts are refused.
    pub fn open(path: impl AsRef<Path>) -> Result<AeroSet> {
        Self::open_with(path, &SetOptions::default())
    }

    /// [`AeroSet::open`] with options.
    pub fn open_with(path: impl AsRef<Path>, opts: &SetOptions) -> Result<AeroSet> {
        let set = Self::load(path.as_ref(), opts, Arc::new(LocalStorage))?;
        set.index()?;
        Ok(set)
    }

    /// Parses and checks the manifest only; the index and parts open on first
    /// use. Validators use this to report on sets whose index is damaged.
    pub fn load(path: &Path, opts: &SetOptions, storage: Arc<dyn PartStorage>) -> Result<AeroSet> {
        let mpath = manifest_path(path);
        let manifest = SetManifest::load(&mpath)?;
        let dir = match mpath.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = dir.canonicalize().map_err(|e| SetError::io(&dir, e))?;
        Self::from_manifest(mpath, SetBase::Dir(dir), manifest, opts, storage)
    }

    /// A set from an already-parsed manifest. `base` is where relative paths
    /// resolve (a canonical local directory, or a remote manifest's URL
    /// directory); `storage` opens the resolved locations. Every path is
    /// checked lexically here, so unsafe paths fail before anything opens.
    pub fn from_manifest(
        label: PathBuf,
        base: SetBase,
        manifest: SetManifest,
        opts: &SetOptions,
        storage: Arc<dyn PartStorage>,
    ) -> Result<AeroSet> {
        let check = |field: String, raw: &str| -> Result<()> {
            let remote = crate::resolve::check_lexical(&label, &field, raw)?;
            if remote && matches!(base, SetBase::Dir(_)) && !opts.allow_remote {
                return Err(SetError::RemoteNotAllowed {
                    path: label.clone(),
                    field,
                    url: raw.to_string(),
                });
            }
            Ok(())
        };
        check("global_tidx.path".into(), &manifest.global_tidx.path)?;
        for (i, p) in manifest.parts.iter().enumerate() {
            check(format!("parts[{i}].path"), &p.file.path)?;
        }
        for (i, f) in manifest.files.iter().enumerate() {
            check(format!("files[{i}].path"), &f.path)?;
        }
        let parts = manifest.parts.iter().map(|_| OnceLock::new()).collect();
        Ok(AeroSet {
            manifest_path: label,
            base,
            manifest,
            opts: *opts,
            storage,
            index: OnceLock::new(),
            parts,
        })
    }

    /// The manifest path (or label).
    pub fn path(&self) -> &Path {
        &self.manifest_path
    }

    /// Where relative paths resolve.
    pub fn base(&self) -> &SetBase {
        &self.base
    }

    /// The parsed manifest.
    pub fn manifest(&self) -> &SetManifest {
        &self.manifest
    }

    /// Resolves a manifest path field (`global_tidx.path`, `parts[i].path`).
    fn resolve_field(&self, field: &str, raw: &str) -> Result<Location> {
        resolve(
            &self.manifest_path,
            &self.base,
            self.manifest.base_url.as_deref(),
            field,
            raw,
            &self.opts,
        )
    }

    /// Where the index file resolves to.
    pub fn index_location(&self) -> Result<Location> {
        self.resolve_field("global_tidx.path", &self.manifest.global_tidx.path)
    }

    /// Where part `i` resolves to (after the path-safety checks).
    pub fn part_location(&self, i: usize) -> Result<Location> {
        let p = self.part_entry(i)?;
        self.resolve_field(&format!("parts[{i}].path"), &p.file.path)
    }

    fn part_entry(&self, i: usize) -> Result<&PartEntry> {
        self.manifest.parts.get(i).ok_or_else(|| self.no_part(i))
    }

    fn no_part(&self, index: usize) -> SetError {
        SetError::NoSuchPart {
            set: self.manifest_path.clone(),
            index,
        }
    }

    /// When any file of the set is remote: how many files whole-set
    /// operations read at once, a quarter of the range requests its storage
    /// keeps in flight (rounded up; the files share those requests, and
    /// each keeps one piece and one hashing window of its own in memory).
    /// `None` for a set of local files.
    pub fn remote_files_at_once(&self) -> Option<usize> {
        let remote = std::iter::once(self.index_location())
            .chain((0..self.parts.len()).map(|i| self.part_location(i)))
            .chain((0..self.manifest.files.len()).map(|i| self.file_location(i)))
            .any(|l| matches!(l, Ok(Location::Remote(_))));
        if remote {
            self.storage.remote_jobs().map(|j| j.div_ceil(4))
        } else {
            None
        }
    }

    /// Opens a resolved location through the set's storage, as raw bytes.
    pub fn open_source(&self, loc: &Location) -> Result<aero_io::Source> {
        self.storage.open(loc)
    }

    /// Opens a location as an AERO file, checking its size against the manifest.
    fn open_file(&self, loc: &Location, label: &str, size: u64) -> Result<AeroFile> {
        let name = match loc {
            Location::Local(p) => p.clone(),
            Location::Remote(u) => PathBuf::from(u),
        };
        let check_len = |len: u64| {
            if len == size {
                return Ok(());
            }
            Err(SetError::File {
                path: name.clone(),
                reason: format!("{label} is {len} bytes but the manifest says size_bytes {size}"),
            })
        };
        self.storage.open_file(loc, name.clone(), &check_len)
    }

    /// The index file (`global_tidx`), opened on first use.
    pub fn index_file(&self) -> Result<&AeroFile> {
        if let Some(f) = self.index.get() {
            return Ok(f);
        }
        let loc = self.index_location()?;
        let f = self.open_file(&loc, "global_tidx", self.manifest.global_tidx.size_bytes)?;
        Ok(self.index.get_or_init(|| f))
    }

    /// The global TIDX.
    pub fn index(&self) -> Result<&TensorIndex> {
        Ok(self.index_file()?.index()?)
    }

    /// Part `i`, opened on first use and kept open.
    pub fn part(&self, i: usize) -> Result<&AeroFile> {
        let slot = self.parts.get(i).ok_or_else(|| self.no_part(i))?;
        if let Some(f) = slot.get() {
            return Ok(f);
        }
        let loc = self.part_location(i)?;
        let size = self.part_entry(i)?.file.size_bytes;
        let f = self.open_file(&loc, &format!("parts[{i}]"), size)?;
        // Two threads may race to open; the first stored file wins.
        Ok(slot.get_or_init(|| f))
    }

    /// Number of parts.
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }

    /// Whether part `i` has been opened.
    pub fn part_is_open(&self, i: usize) -> bool {
        self.parts.get(i).is_some_and(|s| s.get().is_some())
    }

    /// Finds a tensor's global entry and the part holding it.
    pub fn locate(&self, name: &str) -> Result<Located<'_>> {
        let index = self.index()?;
        let global = index.get(name).ok_or_else(|| SetError::NoSuchTensor {
            set: self.manifest_path.clone(),
            name: name.to_string(),
            suggestions: aero_io::names::nearest(name, index.tensors().iter().map(|t| &*t.name)),
        })?;
        let part = self
            .manifest
            .part_for_shard(global.shard_id)
            .ok_or_else(|| {
                self.tensor_err(
                    name,
                    format!(
                        "its shard_id {} is not listed in the `shards` of any part",
                        global.shard_id
                    ),
                )
            })?;
        Ok(Located { global, part })
    }

    fn tensor_err(&self, name: &str, reason: String) -> SetError {
        SetError::Tensor {
            set: self.manifest_path.clone(),
            name: name.to_string(),
            reason,
        }
    }

    /// The part file and the part's own TIDX entry for a tensor, after
    /// checking that it agrees with the global entry.
    pub fn resolve_tensor(&self, name: &str) -> Result<(Located<'_>, &AeroFile, &TensorInfo)> {
        let loc = self.locate(name)?;
        let f = self.part(loc.part)?;
        let entry = f.index()?.get(name).ok_or_else(|| {
            self.tensor_err(
                name,
                format!(
                    "the global TIDX places it in shard {} (part {}), but that part has no tensor of this name",
                    loc.global.shard_id,
                    self.manifest.parts[loc.part].file.path
                ),
            )
        })?;
        if let Some(d) = disagreement(loc.global, entry) {
            return Err(self.tensor_err(
                name,
                format!("{} (part {})", d, self.manifest.parts[loc.part].file.path),
            ));
        }
        Ok((loc, f, entry))
    }

    /// A tensor's bytes: zero-copy from the part's mapping when local,
    /// verified against the strongest hash recorded for them — the part's
    /// `hash_b3`, else the global one, else the part's page or shard hashes
    /// ([`AeroFile::view`]): damaged bytes are never returned. The view's
    /// [`TensorView::info`] is the part's own TIDX entry.
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>> {
        let (loc, f, entry) = self.resolve_tensor(name)?;
        match (entry.hash_b3, loc.global.hash_b3) {
            // Only the index records the tensor's hash: it is the strongest
            // check there is for these bytes.
            (None, Some(h)) => {
                let view = f.tensor_unverified(entry)?;
                if *aero_io::verify::hash(view.bytes()).as_bytes() != h {
                    return Err(self.tensor_err(
                        name,
                        "bytes do not match the global TIDX hash_b3 (corrupt)".into(),
                    ));
                }
                Ok(view)
            }
            _ => Ok(f.view(entry)?),
        }
    }

    /// A streaming reader over a tensor's bytes, **without verification**
    /// (for callers that verify while copying, or accept unverified data).
    pub fn tensor_reader_unverified(&self, name: &str) -> Result<Box<dyn Read + Send + '_>> {
        let (_, f, entry) = self.resolve_tensor(name)?;
        Ok(f.tensor_reader_unverified(entry)?)
    }

    /// The part holding a tensor and the entry to read it through: the
    /// part's own TIDX entry, carrying the global `hash_b3` when only the
    /// index records one (so a verified read checks it).
    pub fn tensor_source(&self, name: &str) -> Result<(&AeroFile, Cow<'_, TensorInfo>)> {
        let (loc, f, entry) = self.resolve_tensor(name)?;
        if entry.hash_b3.is_none() && loc.global.hash_b3.is_some() {
            let mut e = entry.clone();
            e.hash_b3 = loc.global.hash_b3;
            return Ok((f, Cow::Owned(e)));
        }
        Ok((f, Cow::Borrowed(entry)))
    }

    /// The verified bytes of the tensors `names`, handed to `each(i, bytes)`
    /// (`i` indexes `names`) as each is complete: the whole-set load
    /// (`load_file`, a state dict) in one call. Each part's tensors go
    /// through [`AeroFile::verified_tensors`] (a remote part streams them
    /// with several range requests in flight); the parts of a set with
    /// remote files are read concurrently
    /// ([`AeroSet::remote_files_at_once`]), sharing one budget of requests
    /// in flight. `each` may be called from several threads. The first
    /// error is returned.
    pub fn verified_tensors<'a>(
        &'a self,
        names: &[&str],
        each: &(dyn Fn(usize, Cow<'a, [u8]>) -> Result<()> + Sync),
    ) -> Result<()> {
        // Group by the file holding each tensor, in first-seen order: the
        // file and its tensors (their index in `names`, their entry).
        type Group<'a> = (&'a AeroFile, Vec<(usize, Cow<'a, TensorInfo>)>);
        let mut groups: Vec<Group<'a>> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let (f, entry) = self.tensor_source(name)?;
            match groups.iter_mut().find(|(g, _)| std::ptr::eq(*g, f)) {
                Some((_, v)) => v.push((i, entry)),
                None => groups.push((f, vec![(i, entry)])),
            }
        }
        let read =
            |(f, entries): &(&'a AeroFile, Vec<(usize, Cow<'a, TensorInfo>)>)| -> Result<()> {
                let infos: Vec<&TensorInfo> = entries.iter().map(|(_, e)| e.as_ref()).collect();
                let mut inner: Option<SetError> = None;
                let r = f.verified_tensors(&infos, &mut |k, bytes| {
                    each(entries[k].0, bytes).map_err(|e| {
                        inner = Some(e);
                        aero_io::Error::Cancelled {
                            what: "set tensor read",
                        }
                    })
                });
                match (inner, r) {
                    (Some(e), _) => Err(e),
                    (None, r) => Ok(r?),
                }
            };
        let Some(n) = self.remote_files_at_once() else {
            return groups.iter().try_for_each(read);
        };
        let next = std::sync::atomic::AtomicUsize::new(0);
        let first_error: std::sync::Mutex<Option<SetError>> = std::sync::Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..n.clamp(1, groups.len().max(1)) {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(g) = groups.get(i) else { break };
                        if let Err(e) = read(g) {
                            if let Ok(mut slot) = first_error.lock() {
                                slot.get_or_insert(e);
                            }
                            // Later groups are not started.
                            next.store(groups.len(), std::sync::atomic::Ordering::Relaxed);
                            break;
                        }
                    }
                });
            }
        });
        match first_error.into_inner().ok().flatten() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Local files of the set: the manifest, the index and every part that
    /// resolves to a local path (an output must never be one of them).
    pub fn local_files(&self) -> Vec<PathBuf> {
        let mut v = vec![self.manifest_path.clone()];
        if let Ok(Location::Local(p)) = self.index_location() {
            v.push(p);
        }
        for i in 0..self.parts.len() {
            if let Ok(Location::Local(p)) = self.part_location(i) {
                v.push(p);
            }
        }
        for i in 0..self.manifest.files.len() {
            if let Ok(Location::Local(p)) = self.file_location(i) {
                v.push(p);
            }
        }
        v
    }

    /// Writes one tensor's verified bytes to `dest` (a file, atomically; `-`;
    /// a device or FIFO), refusing a `dest` that is any file of the set.
    /// Returns the number of bytes.
    pub fn extract_to(
        &self,
        name: &str,
        dest: &Path,
        opts: &aero_io::CopyOptions<'_>,
    ) -> Result<u64> {
        for p in self.local_files() {
            aero_io::output::refuse_same_file(dest, &p)?;
        }
        let (f, entry) = self.tensor_source(name)?;
        Ok(aero_io::extract(f, &entry, dest, opts)?)
    }

    /// The `hash_b3` to check a tensor against: the part's, else the index's.
    pub fn expected_hash(&self, name: &str) -> Result<Option<[u8; 32]>> {
        let (loc, _, entry) = self.resolve_tensor(name)?;
        Ok(entry.hash_b3.or(loc.global.hash_b3))
    }

    /// Total size of the set's files (index, parts, attached files)
    /// according to the manifest.
    pub fn total_size(&self) -> u64 {
        self.manifest
            .parts
            .iter()
            .map(|p| p.file.size_bytes)
            .chain(self.manifest.files.iter().map(|f| f.size_bytes))
            .fold(self.manifest.global_tidx.size_bytes, u64::saturating_add)
    }

    /// Where attached file `i` (`files[i]` of the manifest) resolves to.
    pub fn file_location(&self, i: usize) -> Result<Location> {
        let f = self
            .manifest
            .files
            .get(i)
            .ok_or_else(|| SetError::NoSuchFile {
                set: self.manifest_path.clone(),
                name: format!("files[{i}]"),
            })?;
        self.resolve_field(&format!("files[{i}].path"), &f.path)
    }

    /// The bytes of the attached file `name` (a `files[].path` of the
    /// manifest), checked against the manifest's size and SHA-256: a file
    /// that differs is [`SetError::File`] naming it, and no byte of it is
    /// returned.
    pub fn attached_file(&self, name: &str) -> Result<Vec<u8>> {
        let i = self
            .manifest
            .files
            .iter()
            .position(|f| f.path == name)
            .ok_or_else(|| SetError::NoSuchFile {
                set: self.manifest_path.clone(),
                name: name.to_string(),
            })?;
        let entry = &self.manifest.files[i];
        let loc = self.file_location(i)?;
        let shown = match &loc {
            Location::Local(p) => p.clone(),
            Location::Remote(u) => PathBuf::from(u),
        };
        let src = self.storage.open(&loc)?;
        let src = src.as_source_ref().bytes();
        let len = src.len();
        if len != entry.size_bytes {
            return Err(SetError::File {
                path: shown,
                reason: format!(
                    "is {len} bytes but the manifest says size_bytes {} (files[{i}])",
                    entry.size_bytes
                ),
            });
        }
        if len > aero_io::attached::MAX_FILE_LEN {
            return Err(SetError::File {
                path: shown,
                reason: format!(
                    "{len} bytes exceed the cap of {} bytes per attached file",
                    aero_io::attached::MAX_FILE_LEN
                ),
            });
        }
        let bytes = src
            .bytes(0, len)
            .map_err(|e| SetError::io(&shown, e))?
            .into_owned();
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(&bytes).into();
        if digest != entry.sha256 {
            return Err(SetError::File {
                path: shown,
                reason: format!(
                    "SHA-256 does not match the manifest (files[{i}]): the file is damaged or was changed"
                ),
            });
        }
        Ok(bytes)
    }

    /// The directory of a local set.
    pub fn dir(&self) -> Option<&Path> {
        match &self.base {
            SetBase::Dir(d) => Some(d),
            SetBase::Url(_) => None,
        }
    }
}

/// How a part's TIDX entry disagrees with the global one, if it does
/// (dtype, shape, data_len, and hash_b3 when both record it).
pub fn disagreement(global: &TensorInfo, part: &TensorInfo) -> Option<String> {
    if global.dtype != part.dtype {
        return Some(format!(
            "dtype is {} in the global TIDX but {} in the part",
            global.dtype, part.dtype
        ));
    }
    if global.shape != part.shape {
        return Some(format!(
            "shape is {:?} in the global TIDX but {:?} in the part",
            global.shape, part.shape
        ));
    }
    if global.data_len != part.data_len {
        return Some(format!(
            "data_len is {} in the global TIDX but {} in the part",
            global.data_len, part.data_len
        ));
    }
    if let (Some(g), Some(p)) = (global.hash_b3, part.hash_b3)
        && g != p
    {
        return Some("hash_b3 differs between the global TIDX and the part".into());
    }
    None
}

/// Whether `path` is an AEROSET: a directory holding `model.aeroset.json`,
/// or a file (of at most [`MAX_MANIFEST_LEN`] bytes) starting with `{` that
/// is named `*.json` or whose `format.name` is `"AEROSET"`. A damaged
/// `*.json` manifest is thus still treated as a set, and its errors are
/// reported as a set's (naming the field) rather than as "not an AERO file".
pub fn is_set(path: &Path) -> bool {
    if path.is_dir() {
        return path.join(MANIFEST_NAME).is_file();
    }
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.len() > MAX_MANIFEST_LEN {
        return false;
    }
    let mut head = [0u8; 64];
    let n = match std::fs::File::open(path).and_then(|mut f| f.read(&mut head)) {
        Ok(n) => n,
        Err(_) => return false,
    };
    if head[..n].iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return false;
    }
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        return true;
    }
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.pointer("/format/name").and_then(|x| x.as_str()) == Some("AEROSET"))
}
