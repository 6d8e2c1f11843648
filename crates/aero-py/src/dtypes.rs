//! Element types between AERO, safetensors, numpy and torch: the one table
//! the package's Python half reads its dtypes from.
//!
//! Each row names a safetensors dtype (`"BF16"`), how AERO stores it (a
//! native dtype, or `packed` with `quant_params.safetensors_dtype`, the
//! representation of `aero_convert::safetensors::stored_as`), and the name
//! numpy (with `ml_dtypes`) and torch both give the element type
//! (`"bfloat16"`, `"float8_e4m3fn"`). Numpy's array interface cannot name
//! bfloat16 or the float8 types, so their bytes are described as a stand-in
//! of the same size (`<u2`, `|u1`) that Python views as the real type.

use aero_format::DType;
use aero_io::TensorInfo;

use crate::buffer::Elem;

/// One element type.
struct Row {
    /// safetensors' name.
    st: &'static str,
    /// numpy / ml_dtypes / torch name.
    elem: &'static str,
    /// What numpy's array interface is told.
    typestr: &'static str,
    size: usize,
    /// Whether `typestr` is a stand-in that Python views as `elem`.
    view: bool,
}

const fn row(st: &'static str, elem: &'static str, typestr: &'static str, size: usize) -> Row {
    Row {
        st,
        elem,
        typestr,
        size,
        view: false,
    }
}

const fn viewed(st: &'static str, elem: &'static str, typestr: &'static str, size: usize) -> Row {
    Row {
        st,
        elem,
        typestr,
        size,
        view: true,
    }
}

const TABLE: [Row; 19] = [
    row("F16", "float16", "<f2", 2),
    row("F32", "float32", "<f4", 4),
    row("F64", "float64", "<f8", 8),
    viewed("BF16", "bfloat16", "<u2", 2),
    row("I8", "int8", "|i1", 1),
    row("I16", "int16", "<i2", 2),
    row("I32", "int32", "<i4", 4),
    row("I64", "int64", "<i8", 8),
    row("U8", "uint8", "|u1", 1),
    row("U16", "uint16", "<u2", 2),
    row("U32", "uint32", "<u4", 4),
    row("U64", "uint64", "<u8", 8),
    row("BOOL", "bool", "|b1", 1),
    row("C64", "complex64", "<c8", 8),
    viewed("F8_E4M3", "float8_e4m3fn", "|u1", 1),
    viewed("F8_E5M2", "float8_e5m2", "|u1", 1),
    viewed("F8_E8M0", "float8_e8m0fnu", "|u1", 1),
    viewed("F8_E4M3FNUZ", "float8_e4m3fnuz", "|u1", 1),
    viewed("F8_E5M2FNUZ", "float8_e5m2fnuz", "|u1", 1),
];

/// What Python is told about a tensor's elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ElemType {
    /// The safetensors name (`"F32"`, `"BF16"`, `"F8_E4M3"`); for packed
    /// data of another codec its own name (`"Q4_K"`), else `"packed"` or
    /// `"unknown(N)"`.
    pub name: String,
    /// The numpy / torch element type name, `None` when the elements have
    /// none (ggml blocks, sub-byte floats, unknown codes): raw bytes.
    pub elem: Option<&'static str>,
    /// The array-interface element, `None` for raw bytes.
    pub base: Option<Elem>,
    /// Whether Python must view `base` as `elem` (bfloat16, float8).
    pub view: bool,
}

impl ElemType {
    fn of_row(r: &Row) -> ElemType {
        ElemType {
            name: r.st.to_string(),
            elem: Some(r.elem),
            base: Some(Elem {
                typestr: r.typestr,
                size: r.size,
            }),
            view: r.view,
        }
    }

    /// Raw bytes named `name`.
    fn raw(name: String) -> ElemType {
        ElemType {
            name,
            elem: None,
            base: None,
            view: false,
        }
    }

    /// The element type of a stored tensor: its native dtype's, or for a
    /// packed tensor the safetensors dtype it was stored as.
    pub(crate) fn of(info: &TensorInfo) -> ElemType {
        if let Some(st) = aero_convert::safetensors::tensor_dtype_name(info) {
            return match TABLE.iter().find(|r| r.st == st) {
                Some(r) => ElemType::of_row(r),
                None => ElemType::raw(st),
            };
        }
        match (info.dtype, info.ggml_type()) {
            (DType::Packed, Some(g)) => ElemType::raw(g.name.to_string()),
            (d, _) => ElemType::raw(d.to_string()),
        }
    }
}

/// An AERO dtype and the TIDX extras (key, MessagePack value) stored with it.
pub(crate) type Stored = (DType, Vec<(String, Vec<u8>)>);

/// How a tensor whose numpy / torch element type is `elem` (`"float32"`,
/// `"bfloat16"`, `"float8_e4m3fn"`, `"bool"`) is stored: its AERO dtype and
/// TIDX extras (packed safetensors dtypes as the converter stores them),
/// `quant_names` collecting the packed dtypes for MJSN
/// `quant_descriptors`. `None` when AERO has no such dtype.
pub(crate) fn stored_as(elem: &str, quant_names: &mut Vec<String>) -> Option<Stored> {
    let r = TABLE.iter().find(|r| r.elem == elem)?;
    let d = aero_convert::safetensors::dtype_by_name(r.st)?;
    Some(aero_convert::safetensors::stored_as(d, quant_names))
}

/// The numpy / torch element type names that can be stored, for messages.
pub(crate) fn storable() -> Vec<&'static str> {
    TABLE.iter().map(|r| r.elem).collect()
}

/// Every AERO dtype code with what numpy is told about its elements: the
/// array-interface type string and, for a stand-in, the `ml_dtypes` name
/// to view it as (`bf16`: `("<u2", "bfloat16")`). `packed` is raw bytes
/// (`|u1`). Python's `NUMPY_DTYPES` is built from this.
pub(crate) fn numpy_table() -> Vec<(u16, &'static str, Option<&'static str>)> {
    DType::ALL
        .into_iter()
        .filter_map(|d| {
            if d.is_packed() {
                return Some((d.code(), "|u1", None));
            }
            let st = d.safetensors_name()?;
            let r = TABLE.iter().find(|r| r.st == st)?;
            Some((d.code(), r.typestr, r.view.then_some(r.elem)))
        })
        .collect()
}
