//! Typed GGUF metadata values: value type ids, scalars, and arrays kept
//! as their little-endian bytes.

use super::*;

/// Metadata value type ids as stored in the file (`as u32` gives the id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum GgufValueType {
    /// `u8`, id 0.
    U8 = 0,
    /// `i8`, id 1.
    I8 = 1,
    /// Little-endian `u16`, id 2.
    U16 = 2,
    /// Little-endian `i16`, id 3.
    I16 = 3,
    /// Little-endian `u32`, id 4.
    U32 = 4,
    /// Little-endian `i32`, id 5.
    I32 = 5,
    /// Little-endian IEEE `f32`, id 6.
    F32 = 6,
    /// One byte, 0 or 1, id 7.
    Bool = 7,
    /// Length-prefixed bytes (meant to be UTF-8), id 8.
    String = 8,
    /// Element type id, length, then the elements, id 9.
    Array = 9,
    /// Little-endian `u64`, id 10.
    U64 = 10,
    /// Little-endian `i64`, id 11.
    I64 = 11,
    /// Little-endian IEEE `f64`, id 12.
    F64 = 12,
}

impl GgufValueType {
    /// The type with this id, or `None` for ids GGUF does not define.
    #[rustfmt::skip]
    pub fn from_id(id: u32) -> Option<Self> {
        use GgufValueType::*;
        const ALL: [GgufValueType; 13] = [U8, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64];
        ALL.get(usize::try_from(id).ok()?).copied()
    }

    /// Fewest bytes a value of this type takes in the file, in the u64
    /// layout (`wide`) or the u32 one.
    pub(super) fn min_size(self, wide: bool) -> u64 {
        use GgufValueType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 => 8,
            String => len_size(wide),
            Array => len_size(wide).saturating_add(4), // + element type
        }
    }
}

/// A typed metadata value. `String` holds the raw bytes: GGUF strings are
/// meant to be UTF-8, but byte-level vocabularies are not always.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// A [`GgufValueType::U8`].
    U8(u8),
    /// A [`GgufValueType::I8`].
    I8(i8),
    /// A [`GgufValueType::U16`].
    U16(u16),
    /// A [`GgufValueType::I16`].
    I16(i16),
    /// A [`GgufValueType::U32`].
    U32(u32),
    /// A [`GgufValueType::I32`].
    I32(i32),
    /// A [`GgufValueType::F32`] (bit pattern kept, NaNs included).
    F32(f32),
    /// A [`GgufValueType::Bool`].
    Bool(bool),
    /// A [`GgufValueType::String`], raw bytes; see [`GgufValue::as_str`].
    String(Vec<u8>),
    /// A [`GgufValueType::Array`].
    Array(GgufArray),
    /// A [`GgufValueType::U64`].
    U64(u64),
    /// A [`GgufValueType::I64`].
    I64(i64),
    /// A [`GgufValueType::F64`] (bit pattern kept, NaNs included).
    F64(f64),
}

/// A typed array; every item has type `elem_type` (arrays may nest).
///
/// Arrays of fixed-width scalars (integers, floats, bools) keep their
/// little-endian bytes as in the file, so a 16 MiB `u8` array takes 16 MiB,
/// not 32 bytes per item; strings and nested arrays are kept as values.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufArray {
    /// Type of every item ([`write_header`] rejects items of another type).
    pub elem_type: GgufValueType,
    pub(super) items: Items,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Items {
    /// Fixed-width scalars, little-endian, `width(elem_type)` bytes each.
    Packed(Vec<u8>),
    /// Strings, arrays, or items whose type differs from `elem_type`.
    Values(Vec<GgufValue>),
}

impl GgufValueType {
    /// Bytes of one value of a fixed-width scalar type, `None` for strings and arrays.
    pub fn width(self) -> Option<usize> {
        use GgufValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }
}

fn scalar_from_le(t: GgufValueType, b: &[u8]) -> Option<GgufValue> {
    use GgufValue as V;
    use GgufValueType as T;
    Some(match t {
        T::U8 => V::U8(u8::from_le_bytes(*b.first_chunk()?)),
        T::I8 => V::I8(i8::from_le_bytes(*b.first_chunk()?)),
        T::Bool => V::Bool(*b.first()? != 0),
        T::U16 => V::U16(u16::from_le_bytes(*b.first_chunk()?)),
        T::I16 => V::I16(i16::from_le_bytes(*b.first_chunk()?)),
        T::U32 => V::U32(u32::from_le_bytes(*b.first_chunk()?)),
        T::I32 => V::I32(i32::from_le_bytes(*b.first_chunk()?)),
        T::F32 => V::F32(f32::from_le_bytes(*b.first_chunk()?)),
        T::U64 => V::U64(u64::from_le_bytes(*b.first_chunk()?)),
        T::I64 => V::I64(i64::from_le_bytes(*b.first_chunk()?)),
        T::F64 => V::F64(f64::from_le_bytes(*b.first_chunk()?)),
        T::String | T::Array => return None,
    })
}

fn scalar_to_le(v: &GgufValue, out: &mut Vec<u8>) -> bool {
    match v {
        GgufValue::U8(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::Bool(x) => out.push(u8::from(*x)),
        GgufValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::F32(x) => out.extend_from_slice(&x.to_bits().to_le_bytes()),
        GgufValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::F64(x) => out.extend_from_slice(&x.to_bits().to_le_bytes()),
        GgufValue::String(_) | GgufValue::Array(_) => return false,
    }
    true
}

impl GgufArray {
    /// An array of `items`; scalars of `elem_type` are stored packed.
    pub fn new(elem_type: GgufValueType, items: Vec<GgufValue>) -> GgufArray {
        if let Some(w) = elem_type.width()
            && items.iter().all(|i| i.value_type() == elem_type)
        {
            let mut bytes = Vec::with_capacity(items.len().saturating_mul(w));
            for i in &items {
                scalar_to_le(i, &mut bytes);
            }
            return GgufArray {
                elem_type,
                items: Items::Packed(bytes),
            };
        }
        GgufArray {
            elem_type,
            items: Items::Values(items),
        }
    }

    /// An array of fixed-width scalars from their little-endian bytes;
    /// `None` if `elem_type` is not such a type, `bytes` is not a whole
    /// number of items, or a bool is not 0 or 1.
    pub fn from_le_bytes(elem_type: GgufValueType, bytes: Vec<u8>) -> Option<GgufArray> {
        let w = elem_type.width()?;
        if !bytes.len().is_multiple_of(w)
            || (elem_type == GgufValueType::Bool && bytes.iter().any(|b| *b > 1))
        {
            return None;
        }
        Some(GgufArray {
            elem_type,
            items: Items::Packed(bytes),
        })
    }

    /// The little-endian bytes of an array of fixed-width scalars.
    pub fn le_bytes(&self) -> Option<&[u8]> {
        match &self.items {
            Items::Packed(b) => Some(b),
            Items::Values(_) => None,
        }
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        match &self.items {
            Items::Packed(b) => b
                .len()
                .checked_div(self.elem_type.width().unwrap_or(1))
                .unwrap_or(0),
            Items::Values(v) => v.len(),
        }
    }

    /// Whether the array has no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items in file order (scalars are decoded as they are visited).
    pub fn iter(&self) -> impl Iterator<Item = GgufValue> + '_ {
        let w = self.elem_type.width().unwrap_or(1).max(1);
        let packed = match &self.items {
            Items::Packed(b) => b.as_slice(),
            Items::Values(_) => &[],
        };
        let values = match &self.items {
            Items::Packed(_) => &[][..],
            Items::Values(v) => v.as_slice(),
        };
        packed
            .chunks_exact(w)
            .filter_map(|c| scalar_from_le(self.elem_type, c))
            .chain(values.iter().cloned())
    }
}

impl GgufValue {
    /// The type id this value is stored with.
    #[rustfmt::skip]
    pub fn value_type(&self) -> GgufValueType {
        use GgufValue as V;
        use GgufValueType as T;
        match self {
            V::U8(_) => T::U8, V::I8(_) => T::I8, V::U16(_) => T::U16, V::I16(_) => T::I16,
            V::U32(_) => T::U32, V::I32(_) => T::I32, V::F32(_) => T::F32, V::Bool(_) => T::Bool,
            V::String(_) => T::String, V::Array(_) => T::Array,
            V::U64(_) => T::U64, V::I64(_) => T::I64, V::F64(_) => T::F64,
        }
    }

    /// The string, if this is a UTF-8 string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// Any integer value that fits in a u64.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v.into()),
            GgufValue::U16(v) => Some(v.into()),
            GgufValue::U32(v) => Some(v.into()),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
}
