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
//! The arrays are read-only, and numpy refuses to make them writeable (the
//! buffer exports no writable memory).

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

    /// The numpy type of an AERO dtype: its own type, bfloat16 as its
    /// `uint16` bits (numpy has no bfloat16), `None` for packed and unknown
    /// codes (their bytes are handed out as `uint8`).
    pub fn of(d: aero_format::DType) -> Option<Elem> {
        use aero_format::DType as D;
        let (typestr, size) = match d {
            D::F16 => ("<f2", 2),
            D::F32 => ("<f4", 4),
            D::BF16 => ("<u2", 2),
            D::F64 => ("<f8", 8),
            D::I8 => ("|i1", 1),
            D::U8 => ("|u1", 1),
            D::I16 => ("<i2", 2),
            D::U16 => ("<u2", 2),
            D::I32 => ("<i4", 4),
            D::U32 => ("<u4", 4),
            D::I64 => ("<i8", 8),
            D::U64 => ("<u8", 8),
            D::Bool => ("|b1", 1),
            D::Packed | D::Unknown(_) => return None,
        };
        Some(Elem { typestr, size })
    }
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
}

impl Buffer {
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
            },
            Cow::Owned(v) if aligned(&v) => Buffer {
                addr: v.as_ptr() as usize,
                len: v.len(),
                _owner: Box::new(v),
                elem,
                shape,
                zero_copy: false,
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
        }
    }

    /// Owned elements of any plain type (dequantized values).
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
        }
    }
}

#[pymethods]
impl Buffer {
    /// numpy's array interface (version 3): read-only data at a fixed address.
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("version", 3)?;
        d.set_item("shape", PyTuple::new(py, &self.shape)?)?;
        d.set_item("typestr", self.elem.typestr)?;
        d.set_item("data", (self.addr, true))?;
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
