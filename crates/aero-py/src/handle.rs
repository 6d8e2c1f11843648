//! `_Handle`: an opened AERO file or AEROSET, local or remote.
//!
//! Every method that hashes or reads releases the GIL while it does; Python
//! objects are built afterwards. Tensor bytes are handed out only after
//! `aero_io`/`aero_set` verified them (the strongest hash the file records:
//! `hash_b3`, PHSH pages, the shard hash); the one unverified path is
//! `chunk_bytes(verify=False)`, which the caller asks for by name.

use std::borrow::Cow;
use std::path::Path;
use std::sync::{Arc, Mutex};

use aero_io::{AeroFile, ChunkStatus, Mode, TensorInfo};
use aero_set::AeroSet;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::buffer::{Buffer, Elem};
use crate::dtypes::ElemType;
use crate::errors::{Failure, IntoPyResult, Raised, Res};

/// What a handle reads (kept in an `Arc`, so the size difference of the
/// variants costs nothing).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Backing {
    File(AeroFile),
    Set(AeroSet),
}

/// How to reach remote files.
#[derive(Clone, Debug, Default)]
pub(crate) struct RemoteArgs {
    pub allow_remote: bool,
    pub cache: bool,
    pub cache_dir: Option<String>,
}

impl RemoteArgs {
    /// The library opener's options for `kind` (`auto`, `file` or `set`):
    /// [`aero_set::Model::open`], which the CLI and the C ABI use too.
    fn open_options(&self, kind: &str) -> Res<aero_set::OpenOptions> {
        use aero_set::model::{CacheChoice, RemoteSettings};
        let expect = match kind {
            "file" => aero_set::Expect::File,
            "set" => aero_set::Expect::Set,
            "auto" => aero_set::Expect::Any,
            other => {
                return Err(Failure::Py(PyValueError::new_err(format!(
                    "kind must be 'auto', 'file' or 'set', not {other:?}"
                ))));
            }
        };
        Ok(aero_set::OpenOptions {
            expect,
            allow_remote_parts: self.allow_remote,
            remote: RemoteSettings {
                cache: match (&self.cache_dir, self.cache) {
                    (_, false) => CacheChoice::Off,
                    (Some(d), true) => CacheChoice::Dir(d.into()),
                    (None, true) => CacheChoice::Default,
                },
                jobs: None,
            },
            ..aero_set::OpenOptions::default()
        })
    }
}

/// Whether `s` is a URL (`scheme://…`) rather than a local path
/// ([`aero_set::model::Target`]). Schemes this build cannot read are
/// routed to the URL opener, which names the ones it accepts, rather than
/// being taken for missing files.
pub(crate) fn url_syntax(s: &str) -> bool {
    aero_set::model::Target::classify_str(Path::new(s)).is_some()
}

/// Whether `path` names an AEROSET: a manifest or a directory holding one
/// (for a URL: one ending in `.json` or `/`).
pub(crate) fn is_set(path: &str) -> bool {
    aero_set::model::Target::classify(Path::new(path)).is_set()
}

impl Backing {
    /// Opens `path` as `kind` (`auto`, `file` or `set`).
    pub(crate) fn open(path: &str, kind: &str, remote: &RemoteArgs) -> Res<Backing> {
        Ok(
            match aero_set::Model::open(path, &remote.open_options(kind)?)? {
                aero_set::Model::File(f) => Backing::File(*f),
                aero_set::Model::Set(s) => Backing::Set(*s),
            },
        )
    }

    fn file(&self) -> Res<&AeroFile> {
        match self {
            Backing::File(f) => Ok(f),
            Backing::Set(s) => Ok(s.index_file()?),
        }
    }

    /// The file holding a tensor's bytes and the entry to read them by
    /// (for a set: the part and its entry, carrying the global `hash_b3`
    /// when only the index records one).
    fn locate(&self, name: &str) -> Res<(&AeroFile, Cow<'_, TensorInfo>)> {
        match self {
            Backing::File(f) => Ok((f, Cow::Borrowed(f.tensor_info(name)?))),
            Backing::Set(s) => Ok(s.tensor_source(name)?),
        }
    }

    /// The part holding a tensor (0 for a file), that file, and the entry
    /// to read it by (see [`Backing::locate`]).
    fn source(&self, name: &str) -> Res<(usize, &AeroFile, Cow<'_, TensorInfo>)> {
        match self {
            Backing::File(f) => Ok((0, f, Cow::Borrowed(f.tensor_info(name)?))),
            Backing::Set(s) => {
                let part = s.locate(name)?.part;
                let (f, entry) = s.tensor_source(name)?;
                Ok((part, f, entry))
            }
        }
    }

    /// A file of the backing: the file itself (part 0), or part `part` of a set.
    fn part_file(&self, part: usize) -> Res<&AeroFile> {
        match self {
            Backing::File(f) if part == 0 => Ok(f),
            Backing::File(f) => Err(Failure::aero(
                "part",
                format!("{}: a single file has no part {part}", f.path().display()),
            )),
            Backing::Set(s) => Ok(s.part(part)?),
        }
    }

    /// A tensor's index entry (the global one for a set).
    fn info(&self, name: &str) -> Res<&TensorInfo> {
        match self {
            Backing::File(f) => Ok(f.tensor_info(name)?),
            Backing::Set(s) => Ok(s.locate(name)?.global),
        }
    }

    /// A tensor's entry with its row-major shape and its own byte length,
    /// whatever order and padding the file stores (aero-io's rule for
    /// reference GGUF-origin files, [`aero_io::ShapeOrder`]): what every
    /// array handed out is shaped by.
    fn described(&self, name: &str) -> Res<(&TensorInfo, Vec<u64>, u64)> {
        let info = self.info(name)?;
        let order = match self {
            Backing::File(f) => f.shape_order(),
            Backing::Set(s) => aero_convert::state_dict::TensorSource::shape_order(s)
                .map_err(aero_convert::ConvertError::from)?,
        };
        Ok((info, info.row_major_shape(order), info.tensor_len(order)))
    }

    fn index(&self) -> Res<&aero_io::TensorIndex> {
        match self {
            Backing::File(f) => Ok(f.index()?),
            Backing::Set(s) => Ok(s.index()?),
        }
    }

    /// The verified bytes of a whole tensor.
    fn tensor(&self, name: &str) -> Res<Cow<'_, [u8]>> {
        let (f, entry) = self.locate(name)?;
        Ok(f.verified_bytes(&entry)?)
    }

    /// The verified bytes `start..start+len` of a tensor.
    fn part(&self, name: &str, start: u64, len: u64) -> Res<Cow<'_, [u8]>> {
        let (f, entry) = self.locate(name)?;
        Ok(f.tensor_part(&entry, start, len)?)
    }

    /// Hashes every weight shard once (every part of a set), so that later
    /// verified reads of a local file cost nothing.
    fn verify_all(&self) -> Res<()> {
        match self {
            Backing::File(f) => Ok(f.verify_all()?),
            Backing::Set(s) => {
                for i in 0..s.part_count() {
                    s.part(i)?.verify_all()?;
                }
                Ok(())
            }
        }
    }
}

/// An opened AERO file or AEROSET.
#[pyclass(frozen, module = "aerotensor._aerotensor", name = "_Handle")]
pub struct Handle {
    inner: Mutex<Option<Arc<Backing>>>,
    path: String,
    kind: &'static str,
}

impl Handle {
    fn get(&self) -> PyResult<Arc<Backing>> {
        self.inner
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .ok_or_else(|| PyValueError::new_err(format!("{}: the reader is closed", self.path)))
    }

    fn file(&self, py: Python<'_>) -> PyResult<Arc<Backing>> {
        let b = self.get()?;
        match &*b {
            Backing::File(_) => Ok(b),
            Backing::Set(_) => Err(Failure::aero(
                "not-a-file",
                format!(
                    "{}: is an AEROSET; open one of its files for chunk access",
                    self.path
                ),
            )
            .into_py(py)),
        }
    }
}

/// How a whole tensor is handed to numpy: its element type (the table of
/// `dtypes.rs`), its own shape and length (`shape` row-major, `len` its own
/// bytes: [`Backing::described`]) and the type Python views the stand-in
/// element as (bfloat16, float8); or raw bytes (`uint8`, one dimension) for
/// packed data without an element type, and when `raw`.
fn elem_shape(
    info: &TensorInfo,
    shape: Vec<u64>,
    len: u64,
    raw: bool,
) -> Res<(Elem, Vec<u64>, Option<&'static str>)> {
    let et = ElemType::of(info);
    match et.base {
        Some(e) if !raw => {
            let want = shape
                .iter()
                .try_fold(1u64, |n, &d| n.checked_mul(d))
                .and_then(|n| n.checked_mul(e.size as u64));
            if want != Some(len) {
                return Err(Raised::new(
                    crate::errors::Class::Aero,
                    "tensor",
                    format!(
                        "tensor '{}': data_len {} does not match shape {:?} of {} ({} bytes per element)",
                        info.name, info.data_len, shape, et.name, e.size
                    ),
                )
                .with_tensor(&info.name)
                .into());
            }
            let view = if et.view { et.elem } else { None };
            Ok((e, shape, view))
        }
        _ => Ok((Elem::U8, vec![len], None)),
    }
}

fn header_tuple(f: &AeroFile) -> ([u8; 16], u64, (u16, u16)) {
    let h = f.header();
    (h.uuid, h.file_flags, (h.version_major, h.version_minor))
}

#[pymethods]
impl Handle {
    /// Opens a local path or URL: an `.aero` file, or an AEROSET manifest
    /// (or its directory). `kind` forces one: `auto`, `file` or `set`.
    #[staticmethod]
    #[pyo3(signature = (path, kind = "auto", allow_remote = false, cache = true, cache_dir = None))]
    fn open(
        py: Python<'_>,
        path: String,
        kind: &str,
        allow_remote: bool,
        cache: bool,
        cache_dir: Option<String>,
    ) -> PyResult<Handle> {
        let remote = RemoteArgs {
            allow_remote,
            cache,
            cache_dir,
        };
        let kind = kind.to_string();
        let p = path.clone();
        let backing = py
            .detach(move || Backing::open(&p, &kind, &remote))
            .py(py)?;
        let kind = match backing {
            Backing::File(_) => "file",
            Backing::Set(_) => "set",
        };
        Ok(Handle {
            inner: Mutex::new(Some(Arc::new(backing))),
            path,
            kind,
        })
    }

    /// Opens an AERO file held in memory (`aerotensor.torch.load(bytes)`);
    /// `label` names it in errors.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: Vec<u8>, label: String) -> PyResult<Handle> {
        let l = label.clone();
        let f = py
            .detach(move || -> Res<AeroFile> {
                let src: Box<dyn aero_io::ByteSource> = Box::new(data);
                Ok(AeroFile::from_source(l, src)?)
            })
            .py(py)?;
        Ok(Handle {
            inner: Mutex::new(Some(Arc::new(Backing::File(f)))),
            path: label,
            kind: "file",
        })
    }

    /// `file` or `set`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind
    }

    /// The path or URL opened.
    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.lock().map(|g| g.is_none()).unwrap_or(true)
    }

    /// Drops this handle's reference to the file: its mapping is released
    /// once no array or memoryview from it is alive.
    fn close(&self) {
        if let Ok(mut g) = self.inner.lock() {
            *g = None;
        }
    }

    /// (uuid, file_flags, (major, minor)) of the file (of the index file
    /// of a set).
    fn header<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyBytes>, u64, (u16, u16))> {
        let b = self.get()?;
        let (uuid, flags, v) = header_tuple(b.file().py(py)?);
        Ok((PyBytes::new(py, &uuid), flags, v))
    }

    /// Every TOC entry: (index, fourcc, name, flags, offset, length, ulen, hash).
    #[allow(clippy::type_complexity)]
    fn chunks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let b = self.file(py)?;
        let f = b.file().py(py)?;
        let rows = f
            .chunks()
            .iter()
            .map(|c| {
                (
                    c.index,
                    PyBytes::new(py, &c.fourcc.0),
                    c.name.as_str(),
                    c.flags.0,
                    c.offset,
                    c.length,
                    c.ulen,
                    PyBytes::new(py, &c.blake3),
                )
            })
            .collect::<Vec<_>>();
        PyList::new(py, rows)
    }

    /// The uncompressed payload of chunk `index`, its BLAKE3 checked
    /// against the TOC unless `verify` is false. A chunk whose TOC hash is
    /// not recorded (all zero) cannot be verified: IntegrityError.
    #[pyo3(signature = (index, verify = true))]
    fn chunk_bytes<'py>(
        &self,
        py: Python<'py>,
        index: usize,
        verify: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let b = self.file(py)?;
        let bytes = py.detach(|| chunk_payload(&b, index, verify)).py(py)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Chunk `index` (verified) decoded from MessagePack as
    /// `msgpack.unpackb(raw=False)` would.
    fn chunk_msgpack<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyAny>> {
        let b = self.file(py)?;
        let bytes = py.detach(|| chunk_payload(&b, index, true)).py(py)?;
        let what = b
            .file()
            .ok()
            .and_then(|f| f.chunks().get(index))
            .map(|c| format!("{} chunk {} ({} '{}')", self.path, index, c.fourcc, c.name))
            .unwrap_or_default();
        crate::msgpack::unpack(py, &bytes, &what).py(py)
    }

    /// The tensor index as the reference returns it: one dict per tensor
    /// with every key the TIDX stores (the global TIDX of a set), decoded
    /// from the verified payload after every record passed the index's
    /// checks (required keys, types, shape).
    fn tensors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let b = self.get()?;
        let payload = py
            .detach(|| -> Res<Cow<'_, [u8]>> {
                match &*b {
                    Backing::File(f) => {
                        let payload = f.tidx_payload()?;
                        check_records(f, &payload)?;
                        Ok(payload)
                    }
                    Backing::Set(_) => {
                        b.index()?;
                        Ok(b.file()?.tidx_payload()?)
                    }
                }
            })
            .py(py)?;
        let what = format!("{}: TIDX", self.path);
        let tidx = crate::msgpack::unpack(py, &payload, &what).py(py)?;
        tidx.get_item("tensors")
    }

    /// Tensor names in index order.
    fn names(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let b = self.get()?;
        let idx = py.detach(|| b.index()).py(py)?;
        Ok(idx.tensors().iter().map(|t| t.name.clone()).collect())
    }

    /// (dtype code, row-major shape, byte length, ggml type id or None,
    /// element type name, numpy/torch element type or None) of a tensor:
    /// the shape and length every array is made with (a reference
    /// GGUF-origin file's GGUF-order shape reversed, its padding left out;
    /// [`Backing::described`]). The name is safetensors' (`F32`, `BF16`,
    /// `F8_E4M3`), a ggml type's (`Q4_K`) for GGUF blocks; the element type
    /// (`float32`, `bfloat16`, `float8_e4m3fn`) is None for raw bytes (see
    /// `dtypes.rs`).
    #[allow(clippy::type_complexity)]
    fn info<'py>(
        &self,
        py: Python<'py>,
        name: &str,
    ) -> PyResult<(
        u16,
        Bound<'py, PyTuple>,
        u64,
        Option<u32>,
        String,
        Option<&'static str>,
    )> {
        let b = self.get()?;
        let (i, shape, len) = py.detach(|| b.described(name)).py(py)?;
        let et = ElemType::of(i);
        Ok((
            i.dtype.code(),
            PyTuple::new(py, &shape)?,
            len,
            i.ggml_type().map(|t| t.id),
            et.name,
            et.elem,
        ))
    }

    /// The verified bytes of several tensors at once, as numpy-ready
    /// buffers in the order of `names`: one call that reads a remote file's
    /// (or set's) tensors with several range requests in flight and the
    /// parts of a set concurrently. When the tensors fill (nearly) all of
    /// each remote file's span — a whole load — each file is read into one
    /// region with one parallel ranged read and every array is a view of
    /// it (`AeroFile::verified_span`, see [`whole_spans`]); otherwise
    /// tensor by tensor (`AeroFile::verified_tensors`,
    /// `AeroSet::verified_tensors`). A local file's as `tensor` would.
    #[pyo3(signature = (names, raw = false))]
    #[allow(clippy::type_complexity)]
    fn tensors_many(&self, py: Python<'_>, names: Vec<String>, raw: bool) -> PyResult<Vec<Buffer>> {
        /// Per tensor: its bytes (and how numpy sees them), or its span
        /// and its index there.
        enum Read<'a> {
            Each(Vec<(Cow<'a, [u8]>, Elem, Vec<u64>, Option<&'static str>)>),
            Spans(Vec<Spanned>, Vec<(Elem, Vec<u64>, Option<&'static str>)>),
        }
        let b = self.get()?;
        let read = py
            .detach(|| -> Res<Read<'_>> {
                // Shapes and lengths as `tensor` makes them (a reference
                // GGUF-origin file's padding left out of the array).
                let mut shapes = Vec::with_capacity(names.len());
                for n in &names {
                    let (info, shape, len) = b.described(n)?;
                    shapes.push(elem_shape(info, shape, len, raw)?);
                }
                if let Some(spans) = whole_spans(&b, &names)? {
                    return Ok(Read::Spans(spans, shapes));
                }
                let slots: Vec<Mutex<Option<Cow<'_, [u8]>>>> =
                    names.iter().map(|_| Mutex::new(None)).collect();
                match &*b {
                    Backing::File(f) => {
                        let infos = names
                            .iter()
                            .map(|n| f.tensor_info(n))
                            .collect::<Result<Vec<_>, _>>()?;
                        f.verified_tensors(&infos, &mut |i, bytes| {
                            if let Some(Ok(mut slot)) = slots.get(i).map(|m| m.lock()) {
                                *slot = Some(bytes);
                            }
                            Ok(())
                        })?;
                    }
                    Backing::Set(s) => {
                        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                        s.verified_tensors(&refs, &|i, bytes| {
                            if let Some(Ok(mut slot)) = slots.get(i).map(|m| m.lock()) {
                                *slot = Some(bytes);
                            }
                            Ok(())
                        })?;
                    }
                }
                let mut out = Vec::with_capacity(names.len());
                for (slot, (elem, shape, view)) in slots.into_iter().zip(shapes) {
                    let bytes = slot.into_inner().ok().flatten().ok_or_else(|| {
                        Failure::Py(PyValueError::new_err("a tensor was not read"))
                    })?;
                    out.push((bytes, elem, shape, view));
                }
                Ok(Read::Each(out))
            })
            .py(py)?;
        Ok(match read {
            Read::Each(read) => read
                .into_iter()
                .map(|(bytes, elem, shape, view)| {
                    Buffer::new(bytes, Arc::clone(&b), elem, shape).viewed_as(view)
                })
                .collect(),
            Read::Spans(spans, shapes) => spans
                .into_iter()
                .zip(shapes)
                .map(|((span, k), (elem, shape, view))| {
                    let bytes = Cow::Borrowed(span.bytes(k));
                    Buffer::new(bytes, Arc::clone(&span), elem, shape).viewed_as(view)
                })
                .collect(),
        })
    }

    /// A tensor's verified bytes as a numpy-ready buffer (zero-copy from a
    /// local mapping when aligned); `raw` gives them as 1-D `uint8`; `copy`
    /// always copies them, into writable memory.
    #[pyo3(signature = (name, raw = false, copy = false))]
    fn tensor(&self, py: Python<'_>, name: &str, raw: bool, copy: bool) -> PyResult<Buffer> {
        let b = self.get()?;
        let (bytes, elem, shape, view) = py
            .detach(|| -> Res<_> {
                let (info, shape, len) = b.described(name)?;
                let (elem, shape, view) = elem_shape(info, shape, len, raw)?;
                Ok((b.tensor(name)?, elem, shape, view))
            })
            .py(py)?;
        let buf = if copy {
            Buffer::copied_writable(&bytes, elem, shape)
        } else {
            Buffer::new(bytes, Arc::clone(&b), elem, shape)
        };
        Ok(buf.viewed_as(view))
    }

    /// Where a tensor's bytes are to be taken from, verified first unless
    /// `verify` is false (the caller asked for unverified bytes by name):
    /// `("map", part, offset)` when a local file — the file itself (part 0)
    /// or part `part` of a set — holds them at absolute `offset`, aligned to
    /// their element size, so they can be mapped without a copy; else
    /// `("copy", buffer)`, a writable copy (remote or in-memory files,
    /// unaligned tensors of the reference layout).
    #[pyo3(signature = (name, verify = true))]
    fn locate<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        verify: bool,
    ) -> PyResult<Bound<'py, PyTuple>> {
        enum Placed {
            Map(usize, u64),
            Copy(Buffer),
        }
        let b = self.get()?;
        let placed = py
            .detach(|| -> Res<Placed> {
                let (info, shape, own) = b.described(name)?;
                let (elem, shape, view) = elem_shape(info, shape, own, false)?;
                let (part, f, entry) = b.source(name)?;
                let (off, _stored) = f.tensor_range(&entry)?;
                if f.local_file().is_some() && off.is_multiple_of(elem.size as u64) {
                    if verify {
                        f.verified_bytes(&entry)?;
                    }
                    return Ok(Placed::Map(part, off));
                }
                // The tensor's own bytes: a reference GGUF-origin file's
                // padding (spec §16.5) is not part of the array.
                let copy = |bytes: &[u8]| {
                    let bytes = usize::try_from(own)
                        .ok()
                        .and_then(|n| bytes.get(..n))
                        .unwrap_or(bytes);
                    Placed::Copy(
                        Buffer::copied_writable(bytes, elem, shape.clone()).viewed_as(view),
                    )
                };
                Ok(if verify {
                    copy(&f.verified_bytes(&entry)?)
                } else {
                    copy(f.tensor_unverified(&entry)?.bytes())
                })
            })
            .py(py)?;
        match placed {
            Placed::Map(part, off) => ("map", part, off).into_pyobject(py),
            Placed::Copy(buf) => ("copy", buf, py.None()).into_pyobject(py),
        }
    }

    /// The tensors `names` of local files as writable, zero-copy buffers
    /// over a private, copy-on-write mapping of each file (one per file,
    /// `AeroFile::private_map`), in the order of `names`: what the torch
    /// loader builds its tensors on. With `verify`, every weight shard is
    /// hashed in that very mapping first, on every core (a mismatch raises
    /// IntegrityError naming the damaged tensor when a finer hash tells
    /// it), so the pages checked are the pages handed out, faulted in once.
    /// `None` for a tensor that cannot be placed so — a remote or in-memory
    /// file, packed blocks without an element type, an offset that is not a
    /// multiple of its element size, or (with `verify`) a shard whose hash
    /// is not recorded: read those with `tensor`/`locate`, which verify them
    /// their own way.
    #[pyo3(signature = (names, verify = true))]
    fn mapped(
        &self,
        py: Python<'_>,
        names: Vec<String>,
        verify: bool,
    ) -> PyResult<Vec<Option<Buffer>>> {
        type Placed = (
            Arc<aero_io::PrivateMap>,
            usize,
            usize,
            Elem,
            Vec<u64>,
            Option<&'static str>,
        );
        let b = self.get()?;
        let placed = py
            .detach(|| -> Res<Vec<Option<Placed>>> {
                let mut maps: Vec<(usize, Option<Arc<aero_io::PrivateMap>>)> = Vec::new();
                let mut out = Vec::with_capacity(names.len());
                for n in &names {
                    let (info, shape, own) = b.described(n)?;
                    if ElemType::of(info).base.is_none() {
                        out.push(None);
                        continue;
                    }
                    let (elem, shape, view) = elem_shape(info, shape, own, false)?;
                    let (part, f, entry) = b.source(n)?;
                    let map = match maps.iter().find(|(p, _)| *p == part) {
                        Some((_, m)) => m.clone(),
                        None => {
                            let m = f.private_map(verify)?.map(Arc::new);
                            maps.push((part, m.clone()));
                            m
                        }
                    };
                    let (off, _) = f.tensor_range(&entry)?;
                    let fits = map.as_ref().is_some_and(|m| {
                        off.checked_add(own)
                            .is_some_and(|e| e <= m.bytes().len() as u64)
                            && (!verify || m.verified(entry.shard_id))
                    });
                    match map {
                        Some(m) if fits && off.is_multiple_of(elem.size as u64) => {
                            out.push(Some((m, off as usize, own as usize, elem, shape, view)))
                        }
                        _ => out.push(None),
                    }
                }
                Ok(out)
            })
            .py(py)?;
        Ok(placed
            .into_iter()
            .map(|p| {
                p.map(|(m, off, len, elem, shape, view)| {
                    Buffer::mapped_writable(m, off, len, elem, shape).viewed_as(view)
                })
            })
            .collect())
    }

    /// A new descriptor of the local file `part` (0 for a file; a set's part
    /// index) and its length, for mapping it (`/dev/fd/N`) with the very
    /// file this handle verified, whatever happened to its path since. The
    /// caller closes it.
    fn part_fd(&self, py: Python<'_>, part: usize) -> PyResult<(i64, u64)> {
        let b = self.get()?;
        let f = b.part_file(part).py(py)?;
        let not_local = || {
            Failure::aero(
                "not-local",
                format!("{}: not a local file", f.path().display()),
            )
            .into_py(py)
        };
        let file = f.local_file().ok_or_else(not_local)?;
        #[cfg(unix)]
        {
            use std::os::fd::IntoRawFd;
            let dup = file.try_clone().map_err(|e| {
                Failure::Os {
                    path: f.path().display().to_string(),
                    source: e,
                }
                .into_py(py)
            })?;
            Ok((i64::from(dup.into_raw_fd()), f.len()))
        }
        #[cfg(not(unix))]
        {
            let _ = file;
            Err(not_local())
        }
    }

    /// The safetensors `__metadata__` the file (a set: its parts, which the
    /// sharded converter gives it when every shard file had the same) was
    /// made with — MJSN `safetensors_metadata`, as the converters and
    /// `save_file` record it — as (key, value) pairs in their order (a value
    /// that is not a string as its JSON text); `None` when there is none.
    fn st_metadata(&self, py: Python<'_>) -> PyResult<Option<Vec<(String, String)>>> {
        let b = self.get()?;
        let meta = py
            .detach(|| -> Res<_> {
                Ok(match &*b {
                    Backing::File(f) => f.meta_json()?,
                    Backing::Set(s) if s.part_count() > 0 => s.part(0)?.meta_json()?,
                    Backing::Set(_) => None,
                })
            })
            .py(py)?;
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Ok(
            match meta.and_then(|m| m.get(aero_convert::safetensors::METADATA_KEY).cloned()) {
                Some(serde_json::Value::Object(m)) => {
                    Some(m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
                }
                Some(serde_json::Value::Array(pairs)) => Some(
                    pairs
                        .iter()
                        .filter_map(|p| Some((p.get(0)?.as_str()?.to_owned(), text(p.get(1)?))))
                        .collect(),
                ),
                _ => None,
            },
        )
    }

    /// Rows `start..stop` of a tensor (along its first dimension), verified
    /// through the page hashes covering them (else the tensor's own check).
    fn rows(&self, py: Python<'_>, name: &str, start: u64, stop: u64) -> PyResult<Buffer> {
        let b = self.get()?;
        let (bytes, elem, shape, view) = py
            .detach(|| -> Res<_> {
                let (info, shape, len) = b.described(name)?;
                let et = ElemType::of(info);
                if et.base.is_none() {
                    let how = if info.ggml_type().is_some() {
                        "read it whole with get_tensor(name, dequantize='f32') (or its raw bytes with get_tensor(name))"
                    } else {
                        "read its raw bytes whole with get_tensor(name)"
                    };
                    return Err(Raised::new(
                        crate::errors::Class::Aero,
                        "packed",
                        format!(
                            "tensor '{name}' is {} (packed blocks, no element type): get_slice cannot cut it; {how}",
                            et.name
                        ),
                    )
                    .with_tensor(name)
                    .into());
                }
                let (elem, mut shape, view) = elem_shape(info, shape, len, false)?;
                let n = shape.first().copied().unwrap_or(0);
                if shape.is_empty() || start > stop || stop > n {
                    return Err(Failure::aero(
                        "tensor",
                        format!("rows {start}..{stop} of tensor '{name}' with shape {shape:?}"),
                    ));
                }
                let row = len.checked_div(n).unwrap_or(0);
                shape[0] = stop - start;
                Ok((
                    b.part(name, start * row, (stop - start) * row)?,
                    elem,
                    shape,
                    view,
                ))
            })
            .py(py)?;
        Ok(Buffer::new(bytes, Arc::clone(&b), elem, shape).viewed_as(view))
    }

    /// A tensor's verified bytes as `bytes` (a copy).
    fn tensor_bytes<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyBytes>> {
        let b = self.get()?;
        let bytes = py.detach(|| b.tensor(name)).py(py)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// A ggml-packed tensor dequantized (aero-quant, bit-exact with gguf-py)
    /// to `f32`, `f16` or `bf16` (viewed as bfloat16), with its row-major
    /// shape, in writable memory of its own.
    #[pyo3(signature = (name, out = "f32"))]
    fn dequantize(&self, py: Python<'_>, name: &str, out: &str) -> PyResult<Buffer> {
        let b = self.get()?;
        let out = out.to_string();
        py.detach(|| dequantize(&b, name, &out)).py(py)
    }

    /// Hashes every weight shard once on every core; afterwards verified
    /// reads of a local file hash nothing.
    fn verify_all(&self, py: Python<'_>) -> PyResult<()> {
        let b = self.get()?;
        py.detach(|| b.verify_all()).py(py)
    }

    /// The validation report as JSON (the CLI's `validate --json`).
    fn validate(&self, py: Python<'_>, mode: &str) -> PyResult<String> {
        let b = self.get()?;
        let mode = parse_mode(mode)?;
        let json = py.detach(|| match &*b {
            Backing::File(f) => serde_json::to_string(&aero_io::validate(f, mode, &|_| {})),
            Backing::Set(s) => serde_json::to_string(&aero_set::validate_set(s, mode, &|_| {})),
        });
        json.map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// The IHSH control-plane check as a list of problems (empty when the
    /// file has no IHSH or it verifies).
    fn validate_control(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let b = self.file(py)?;
        let f = b.file().py(py)?;
        use aero_io::ControlStatus as C;
        Ok(match py.detach(|| aero_io::check_control(f)) {
            C::Verified | C::NotPresent => Vec::new(),
            C::Mismatch => vec![
                "IHSH: control-plane digest mismatch (header/TOC/string table tampered or corrupted)"
                    .into(),
            ],
            C::Error(e) => vec![format!("IHSH: {e}")],
        })
    }

    /// (model name, architecture): a set's manifest, a file's MMSG or MJSN.
    fn model(&self) -> PyResult<(Option<String>, Option<String>)> {
        let b = self.get()?;
        Ok(match &*b {
            Backing::File(f) => f.model(),
            Backing::Set(s) => {
                let m = &s.manifest().model;
                (Some(m.name.clone()), Some(m.architecture.clone()))
            }
        })
    }

    /// The MJSN metadata object as JSON (`null` when there is none); for a
    /// set, the manifest.
    fn metadata_json(&self, py: Python<'_>) -> PyResult<String> {
        let b = self.get()?;
        let v = py
            .detach(|| -> Res<serde_json::Value> {
                Ok(match &*b {
                    Backing::File(f) => f.meta_json()?.unwrap_or(serde_json::Value::Null),
                    Backing::Set(s) => s.manifest().to_json(),
                })
            })
            .py(py)?;
        Ok(v.to_string())
    }

    fn __repr__(&self) -> String {
        format!(
            "<aerotensor {} {:?}{}>",
            self.kind,
            self.path,
            if self.closed() { " (closed)" } else { "" }
        )
    }
}

/// A tensor of a whole load: the span holding it and its index there.
type Spanned = (Arc<aero_io::TensorSpan>, usize);

/// The tensors `names` of a remote file or set read as whole spans, one per
/// file ([`AeroFile::verified_span`]: one parallel ranged read into one
/// region, every tensor verified before it returns), the files of a set
/// concurrently ([`AeroSet::remote_files_at_once`]). `None` (read them one
/// by one) when a file is local or in memory, when the tensors asked for
/// hold less than 7/8 of a file's span (the gaps would be read for
/// nothing), or when one of them records no `hash_b3` (it is checked by
/// pages or its shard, which its own verified read fetches).
fn whole_spans(b: &Backing, names: &[String]) -> Res<Option<Vec<Spanned>>> {
    type Group<'a> = (&'a AeroFile, Vec<(usize, Cow<'a, TensorInfo>)>);
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut at_once = 1usize;
    match b {
        Backing::File(f) => {
            let mut v = Vec::with_capacity(names.len());
            for (i, n) in names.iter().enumerate() {
                v.push((i, Cow::Borrowed(f.tensor_info(n)?)));
            }
            groups.push((f, v));
        }
        Backing::Set(s) => {
            at_once = s.remote_files_at_once().unwrap_or(1);
            for (i, n) in names.iter().enumerate() {
                let (f, entry) = s.tensor_source(n)?;
                match groups.iter_mut().find(|(g, _)| std::ptr::eq(*g, f)) {
                    Some((_, v)) => v.push((i, entry)),
                    None => groups.push((f, vec![(i, entry)])),
                }
            }
        }
    }
    for (f, entries) in &groups {
        if f.local_file().is_some() || !url_syntax(&f.path().to_string_lossy()) {
            return Ok(None);
        }
        let infos: Vec<&TensorInfo> = entries.iter().map(|(_, e)| e.as_ref()).collect();
        let (_, span, used) = f.span_of(&infos)?;
        // Tensors checked by pages or their shard would be read a second
        // time by their own verified read.
        if used.saturating_mul(8) < span.saturating_mul(7)
            || infos.iter().any(|i| i.hash_b3.is_none())
        {
            return Ok(None);
        }
    }
    let read = |(f, entries): &Group<'_>| -> Res<Arc<aero_io::TensorSpan>> {
        let infos: Vec<&TensorInfo> = entries.iter().map(|(_, e)| e.as_ref()).collect();
        Ok(Arc::new(f.verified_span(&infos)?))
    };
    let done: Vec<Mutex<Option<Res<Arc<aero_io::TensorSpan>>>>> =
        groups.iter().map(|_| Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..at_once.clamp(1, groups.len().max(1)) {
            s.spawn(|| {
                use std::sync::atomic::Ordering::Relaxed;
                while !failed.load(Relaxed) {
                    let i = next.fetch_add(1, Relaxed);
                    let Some(g) = groups.get(i) else { break };
                    let r = read(g);
                    failed.fetch_or(r.is_err(), Relaxed);
                    if let Ok(mut slot) = done[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    let mut out: Vec<Option<Spanned>> = vec![None; names.len()];
    for ((_, entries), slot) in groups.iter().zip(done) {
        // The first failure in file order (later files were not started).
        let span = match slot.into_inner().ok().flatten() {
            Some(r) => r?,
            None => continue,
        };
        for (k, (i, _)) in entries.iter().enumerate() {
            out[*i] = Some((Arc::clone(&span), k));
        }
    }
    out.into_iter()
        .map(|s| s.ok_or_else(|| Failure::Py(PyValueError::new_err("a tensor was not read"))))
        .collect::<Res<Vec<_>>>()
        .map(Some)
}

/// Checks every TIDX record as `TensorIndex::decode` does, with the
/// non-allocating iterator (listing a file need not build the index; it is
/// built, and cached, by the first tensor read).
fn check_records(f: &AeroFile, payload: &[u8]) -> Res<()> {
    let check = || -> Result<(), aero_format::Error> {
        for rec in aero_format::TensorIter::new(payload)? {
            for d in rec?.shape.iter() {
                d?;
            }
        }
        Ok(())
    };
    check().map_err(|e| {
        aero_io::Error::Metadata {
            path: f.path().to_path_buf(),
            chunk: "TIDX",
            reason: e.to_string(),
        }
        .into()
    })
}

pub(crate) fn parse_mode(mode: &str) -> PyResult<Mode> {
    match mode {
        "quick" => Ok(Mode::Quick),
        "full" => Ok(Mode::Full),
        "control" => Ok(Mode::Control),
        other => Err(PyValueError::new_err(format!(
            "mode must be 'quick', 'full' or 'control', not {other:?}"
        ))),
    }
}

/// A chunk's payload, verified unless `verify` is false.
fn chunk_payload(b: &Backing, index: usize, verify: bool) -> Res<Vec<u8>> {
    let f = b.file()?;
    let c = f.chunks().get(index).ok_or_else(|| {
        Failure::aero(
            "chunk",
            format!(
                "{}: no chunk {index} (the file has {})",
                f.path().display(),
                f.chunks().len()
            ),
        )
    })?;
    if !verify {
        return Ok(f.payload(c)?.into_owned());
    }
    let (data, status) = f.read_verified(c)?;
    if status != ChunkStatus::Verified {
        let mut r = Raised::new(
            crate::errors::Class::Integrity,
            "hash-not-recorded",
            format!(
                "{}: chunk {} ({} '{}'): its TOC hash is not recorded (all zero), so its bytes cannot be verified; read it with verify_hash=False to accept that",
                f.path().display(),
                c.index,
                c.fourcc,
                c.name
            ),
        );
        r.path = Some(f.path().display().to_string());
        r.chunk = Some(format!("{} '{}'", c.fourcc, c.name));
        return Err(r.into());
    }
    Ok(data.into_owned())
}

fn dequantize(b: &Arc<Backing>, name: &str, out: &str) -> Res<Buffer> {
    let (info, shape, len) = b.described(name)?;
    let ty = info.ggml_type().ok_or_else(|| {
        Failure::aero(
            "dequantize",
            format!("tensor '{name}' is {} without a ggml type (quant_params.ggml_type): nothing to dequantize", info.dtype),
        )
    })?;
    let n = info
        .elements()
        .ok_or_else(|| Failure::aero("dequantize", format!("tensor '{name}': shape overflows")))?;
    // Row-major (a reference GGUF-origin file's GGUF order reversed, its
    // padding left out: aero-io's rule); the blocks must fill it exactly.
    let mut ne = shape.clone();
    ne.reverse();
    if ty.tensor_bytes(&ne) != Some(len) {
        return Err(Failure::aero(
            "dequantize",
            format!(
                "tensor '{name}': {} bytes do not hold {} shape {:?}",
                info.data_len, ty.name, shape
            ),
        ));
    }
    let bytes = b.tensor(name)?;
    aero_quant::packed_len(ty, n)?;
    let len = usize::try_from(n).map_err(|_| Failure::aero("dequantize", "tensor too large"))?;
    Ok(match out {
        "f32" => {
            let v = aero_quant::dequantize_to_vec(ty, &bytes, n)?;
            Buffer::from_vec(
                v,
                Elem {
                    typestr: "<f4",
                    size: 4,
                },
                shape,
            )
        }
        "f16" | "bf16" => {
            let mut v = vec![0u16; len];
            if out == "f16" {
                aero_quant::par_dequantize_f16(ty, &bytes, n, &mut v)?;
            } else {
                aero_quant::par_dequantize_bf16(ty, &bytes, n, &mut v)?;
            }
            let typestr = if out == "f16" { "<f2" } else { "<u2" };
            Buffer::from_vec(v, Elem { typestr, size: 2 }, shape)
                .viewed_as((out == "bf16").then_some("bfloat16"))
        }
        other => {
            return Err(Failure::Py(PyValueError::new_err(format!(
                "dequantize must be 'f32', 'f16' or 'bf16', not {other:?}"
            ))));
        }
    })
}
