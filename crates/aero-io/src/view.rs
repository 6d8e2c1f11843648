//! Zero-copy tensor views and typed access.

use std::borrow::Cow;

use aero_format::DType;

use crate::error::{Error, Result};
use crate::index::TensorInfo;

/// A Rust element type a tensor can be viewed as.
pub trait Element: bytemuck::Pod {
    /// Dtypes whose bytes are this type (f16/bf16 are viewed as their `u16` bits).
    const DTYPES: &'static [DType];
}

macro_rules! element {
    ($($t:ty => [$($d:expr),*]),* $(,)?) => {$(
        impl Element for $t { const DTYPES: &'static [DType] = &[$($d),*]; }
    )*};
}
element! {
    f32 => [DType::F32], f64 => [DType::F64],
    i8 => [DType::I8], u8 => [DType::U8, DType::Bool, DType::Packed],
    i16 => [DType::I16], u16 => [DType::U16, DType::F16, DType::BF16],
    i32 => [DType::I32], u32 => [DType::U32],
    i64 => [DType::I64], u64 => [DType::U64],
}

/// A tensor's metadata and bytes. The bytes borrow the file mapping when the
/// file is mapped (zero-copy) and are an owned copy otherwise.
#[derive(Debug)]
pub struct TensorView<'a> {
    info: &'a TensorInfo,
    bytes: Bytes<'a>,
}

/// Borrowed from a mapping, or a range of an owned buffer (a verified read
/// may have fetched whole pages around the tensor).
#[derive(Debug)]
enum Bytes<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>, std::ops::Range<usize>),
}

impl<'a> TensorView<'a> {
    /// The view of `range` within `bytes` (the whole of it when `None`).
    pub(crate) fn new(
        info: &'a TensorInfo,
        bytes: Cow<'a, [u8]>,
        range: Option<std::ops::Range<usize>>,
    ) -> Self {
        let bytes = match bytes {
            Cow::Borrowed(b) => Bytes::Borrowed(match range {
                Some(r) => b.get(r).unwrap_or_default(),
                None => b,
            }),
            Cow::Owned(v) => {
                let r = range
                    .filter(|r| r.start <= r.end && r.end <= v.len())
                    .unwrap_or(0..v.len());
                Bytes::Owned(v, r)
            }
        };
        TensorView { info, bytes }
    }

    /// A view of `bytes` the caller read itself, from a source that records
    /// no hashes to check them against (a tensor of a safetensors or GGUF
    /// file). aero-io vouches for nothing here: the view says only what
    /// `info` says the bytes are.
    pub fn from_unhashed(info: &'a TensorInfo, bytes: Cow<'a, [u8]>) -> Self {
        TensorView::new(info, bytes, None)
    }

    /// Tensor name.
    pub fn name(&self) -> &'a str {
        &self.info.name
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.info.dtype
    }

    /// Dimensions as the TIDX stores them: row-major, except in a file from
    /// the reference GGUF converter, which stores GGUF order
    /// ([`crate::AeroFile::shape_order`], [`TensorInfo::row_major_shape`]).
    pub fn shape(&self) -> &'a [u64] {
        &self.info.shape
    }

    /// The full index entry.
    pub fn info(&self) -> &'a TensorInfo {
        self.info
    }

    /// The raw little-endian bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Borrowed(b) => b,
            Bytes::Owned(v, r) => v.get(r.clone()).unwrap_or_default(),
        }
    }

    /// The bytes, borrowed from the mapping when they were (see
    /// [`Self::is_zero_copy`]), else owned.
    pub fn into_bytes(self) -> Cow<'a, [u8]> {
        match self.bytes {
            Bytes::Borrowed(b) => Cow::Borrowed(b),
            Bytes::Owned(mut v, r) => {
                if r.end <= v.len() && r.start <= r.end {
                    v.truncate(r.end);
                    v.drain(..r.start);
                }
                Cow::Owned(v)
            }
        }
    }

    /// Whether the bytes borrow the file mapping (no copy was made).
    pub fn is_zero_copy(&self) -> bool {
        matches!(self.bytes, Bytes::Borrowed(_))
    }

    fn check_type<T: Element>(&self) -> Result<()> {
        if !T::DTYPES.contains(&self.info.dtype) {
            return Err(Error::View {
                name: self.info.name.clone(),
                reason: format!(
                    "dtype {} cannot be viewed as {}",
                    self.info.dtype,
                    std::any::type_name::<T>()
                ),
            });
        }
        if cfg!(target_endian = "big") && std::mem::size_of::<T>() > 1 {
            return Err(Error::View {
                name: self.info.name.clone(),
                reason: "tensor bytes are little-endian and this host is big-endian; use to_vec()"
                    .into(),
            });
        }
        Ok(())
    }

    /// The elements as a typed slice, without copying. Errors when the dtype
    /// does not match `T`, the host is big-endian, the length is not a
    /// multiple of the element size, or the bytes are not aligned for `T`
    /// (the reference packs tensors back to back; use [`Self::to_vec`] then).
    pub fn as_slice<T: Element>(&self) -> Result<&[T]> {
        self.check_type::<T>()?;
        bytemuck::try_cast_slice(self.bytes()).map_err(|e| Error::View {
            name: self.info.name.clone(),
            reason: format!(
                "cannot view {} bytes as {}: {e:?}",
                self.bytes().len(),
                std::any::type_name::<T>()
            ),
        })
    }

    /// The elements copied into a `Vec<T>` (works at any alignment; converts
    /// from little-endian on big-endian hosts).
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if !T::DTYPES.contains(&self.info.dtype) {
            return Err(Error::View {
                name: self.info.name.clone(),
                reason: format!(
                    "dtype {} cannot be read as {}",
                    self.info.dtype,
                    std::any::type_name::<T>()
                ),
            });
        }
        let size = std::mem::size_of::<T>();
        if !self.bytes().len().is_multiple_of(size) {
            return Err(Error::View {
                name: self.info.name.clone(),
                reason: format!("{} bytes is not a multiple of {size}", self.bytes().len()),
            });
        }
        let mut v: Vec<T> = bytemuck::pod_collect_to_vec(self.bytes());
        if cfg!(target_endian = "big") {
            for x in &mut v {
                bytemuck::bytes_of_mut(x).reverse();
            }
        }
        Ok(v)
    }
}
