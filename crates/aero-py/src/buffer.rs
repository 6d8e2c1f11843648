//! `_Buffer`: verified tensor bytes that numpy wraps without copying.
//!
//! A buffer owns what keeps its bytes alive — the opened file or set (whose
//! memory mapping the bytes lie in) or an owned vector — and describes them
//! with numpy's `__array_interface__` (version 3): address, read-only flag,
//! element type and shape. `numpy.asarray(buffer)` then makes an array over
//! those bytes whose `base` is the buffer, so the mapping stays valid as
//! long as any array, view or memoryview of it lives, even after the
//! reader is closed. The protocol is plain Python: no `unsafe` here, and it
//! works with the stable ABI of Python 3.9, which has no buffer protocol.
//!
//! Arrays over the file's bytes are read-only, and numpy refuses to make
//! them writeable (the buffer exports no writable memory). A buffer that
//! owns a fresh result — a dequantized tensor, or a copy asked for with
//! `copy=True` (what `aerotensor.torch` hands to torch, whose tensors are
//! always writable) — exports writable memory: nothing else sees it.
//!
//! bfloat16 and the float8 types have no array-interface type string: their
//! bytes are described as a stand-in of the same size (`<u2`, `|u1`) and the
//! buffer's `view` names the type Python views them as (`ml_dtypes`'s or
//! torch's `bfloat16`, `float8_e4m3fn`, …; see `dtypes.rs`).

use std::any::Any;
use std::borrow::Cow;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

/// Keeps the bytes alive.
type Owner = Box<dyn Any + Send + Sync>;

/// numpy's description of an element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elem {
    /// `__array_interface__` typestr, e.g. `<f4`.
    pub typestr: &'static str,
    /// Bytes per element.
    pub size: usize,
}

impl Elem {
    pub const U8: Elem = Elem {
        typestr: "|u1",
        size: 1,
    };
}

/// Verified bytes with their numpy type and shape.
#[pyclass(frozen, module = "aerotensor._aerotensor", name = "_Buffer")]
pub struct Buffer {
    _owner: Owner,
    addr: usize,
    len: usize,
    elem: Elem,
    shape: Vec<u64>,
    zero_copy: bool,
    /// The element type Python views the stand-in `elem` as, if any.
    view: Option<&'static str>,
    /// Whether the memory may be written (the buffer owns it alone).
    writable: bool,
}

impl Buffer {
    /// Names the element type Python views these bytes as (bfloat16 and
    /// float8 bytes are described as `uint16` / `uint8`).
    pub fn viewed_as(mut self, view: Option<&'static str>) -> Buffer {
        self.view = view;
        self
    }

    /// A writable copy of `bytes` in an 8-byte-aligned allocation.
    pub fn copied_writable(bytes: &[u8], elem: Elem, shape: Vec<u64>) -> Buffer {
        Buffer {
            writable: true,
            ..Self::copied(bytes, elem, shape)
        }
    }

    /// Bytes that borrow from `owner` (a mapping it keeps alive), or that
    /// are owned. Copied into an 8-byte-aligned vector when their address
    /// is not a multiple of the element size (numpy can view unaligned
    /// memory, but most consumers of arrays cannot).
    pub fn new(
        bytes: Cow<'_, [u8]>,
        owner: impl Any + Send + Sync,
        elem: Elem,
        shape: Vec<u64>,
    ) -> Buffer {
        let aligned = |b: &[u8]| (b.as_ptr() as usize).is_multiple_of(elem.size.max(1));
        match bytes {
            Cow::Borrowed(b) if aligned(b) => Buffer {
                addr: b.as_ptr() as usize,
                len: b.len(),
                _owner: Box::new(owner),
                elem,
                shape,
                zero_copy: true,
                view: None,
                writable: false,
            },
            Cow::Owned(v) if aligned(&v) => Buffer {
                addr: v.as_ptr() as usize,
                len: v.len(),
                _owner: Box::new(v),
                elem,
                shape,
                zero_copy: false,
                view: None,
                writable: false,
            },
            other => Self::copied(&other, elem, shape),
        }
    }

    /// A copy in an 8-byte-aligned allocation.
    pub fn copied(bytes: &[u8], elem: Elem, shape: Vec<u64>) -> Buffer {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        let dst: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
        if let Some(d) = dst.get_mut(..bytes.len()) {
            d.copy_from_slice(bytes);
        }
        Buffer {
            addr: words.as_ptr() as usize,
            len: bytes.len(),
            _owner: Box::new(words),
            elem,
            shape,
            zero_copy: false,
            view: None,
            writable: false,
        }
    }

    /// `len` bytes at `off` of a private, copy-on-write mapping of a local
    /// file (`AeroFile::private_map`), checked there unless the caller
    /// asked for unverified bytes: writable (writes make private copies of
    /// the pages; the file is never touched), zero-copy. The caller checked
    /// that the range lies in the mapping; an out-of-range one is empty.
    pub fn mapped_writable(
        map: std::sync::Arc<aero_io::PrivateMap>,
        off: usize,
        len: usize,
        elem: Elem,
        shape: Vec<u64>,
    ) -> Buffer {
        let bytes = off
            .checked_add(len)
            .and_then(|end| map.bytes().get(off..end))
            .unwrap_or(&[]);
        Buffer {
            addr: bytes.as_ptr() as usize,
            len: bytes.len(),
            _owner: Box::new(map),
            elem,
            shape,
            zero_copy: true,
            view: None,
            writable: true,
        }
    }

    /// Owned elements of any plain type (dequantized values): writable.
    pub fn from_vec<T: bytemuck::Pod + Send + Sync>(
        v: Vec<T>,
        elem: Elem,
        shape: Vec<u64>,
    ) -> Buffer {
        Buffer {
            addr: v.as_ptr() as usize,
            len: std::mem::size_of_val(v.as_slice()),
            _owner: Box::new(v),
            elem,
            shape,
            zero_copy: false,
            view: None,
            writable: true,
        }
    }
}

#[pymethods]
impl Buffer {
    /// numpy's array interface (version 3): data at a fixed address,
    /// read-only unless the buffer owns a fresh result.
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("version", 3)?;
        d.set_item("shape", PyTuple::new(py, &self.shape)?)?;
        d.set_item("typestr", self.elem.typestr)?;
        d.set_item("data", (self.addr, !self.writable))?;
        d.set_item("strides", py.None())?;
        Ok(d)
    }

    /// Bytes held.
    #[getter]
    fn nbytes(&self) -> usize {
        self.len
    }

    /// Whether the bytes are the file's own mapping (no copy was made).
    #[getter]
    fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// The element type (`bfloat16`, `float8_e4m3fn`, …) the stand-in
    /// element type is to be viewed as, `None` when numpy's is the real one.
    #[getter]
    fn view(&self) -> Option<&'static str> {
        self.view
    }

    /// Whether the memory may be written.
    #[getter]
    fn writable(&self) -> bool {
        self.writable
    }

    fn __repr__(&self) -> String {
        format!(
            "<aerotensor buffer {} {:?} {} bytes{}>",
            self.elem.typestr,
            self.shape,
            self.len,
            if self.zero_copy { ", zero-copy" } else { "" }
        )
    }
}
