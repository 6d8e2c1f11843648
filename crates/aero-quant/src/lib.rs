//! Dequantization of ggml-packed tensors (the packed tensors of an AERO file
//! name their ggml type in `quant_params.ggml_type`, spec §15).
//!
//! Every type that gguf-py's `gguf.quants` can dequantize — F16, BF16, Q4_0,
//! Q4_1, Q5_0, Q5_1, Q8_0, Q2_K–Q6_K, the IQ1/IQ2/IQ3/IQ4 i-quants, TQ1_0,
//! TQ2_0, MXFP4, NVFP4 — plus F32, F64, I8–I64 and Q8_K, decoded to f32 with
//! the same bits gguf-py produces, or to f16 / bf16 bits rounded to nearest
//! even from that f32.
//!
//! ```
//! use aero_quant::{dequantize, GgmlType};
//!
//! // One Q8_0 block: f16 scale 0.5, then 32 signed bytes.
//! let q8_0 = GgmlType::from_name("Q8_0").unwrap();
//! let mut block = vec![0x00, 0x38]; // 0.5 as f16, little-endian
//! block.extend((0..32).map(|i| (i as i8 - 16) as u8));
//! let mut out = [0f32; 32];
//! dequantize(q8_0, &block, 32, &mut out)?;
//! assert_eq!(out[0], -8.0);
//! assert_eq!(out[31], 7.5);
//! # Ok::<(), aero_quant::QuantError>(())
//! ```
//!
//! Entry points: [`dequantize`] (and [`dequantize_f16`], [`dequantize_bf16`])
//! on one thread; [`par_dequantize`] and friends split large inputs into
//! block-aligned chunks of at least [`PAR_CHUNK_BYTES`] on the rayon pool;
//! [`dequantize_reader`] streams a `Read` of packed bytes into a `Write` (or
//! [`dequantize_reader_with`] into a callback) with about 1 MiB of buffers at
//! most, whatever the tensor size. The type is dispatched once per call; each
//! block then goes through a fixed-size decoder without data-dependent
//! branches. No input makes any of them panic: wrong lengths are
//! [`QuantError`]s and any bytes of the right length decode to some values
//! (NaN and Inf included). See `docs/QUANT.md` for the types, the rounding
//! rules and the cost model.
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod half;
mod kernels;
mod stream;

#[rustfmt::skip]
mod grids;

pub use aero_format::GgmlType;
pub use stream::{OutputType, StreamError, dequantize_reader, dequantize_reader_with};

use rayon::prelude::*;

/// Why a tensor could not be dequantized. Cheap (`Copy`), comparable, and
/// its message names the type and both sides of a mismatch.
///
/// ```
/// use aero_quant::{dequantize, GgmlType, QuantError};
/// let q6_k = GgmlType::from_name("Q6_K").unwrap();
/// let err = dequantize(q6_k, &[0; 200], 256, &mut [0f32; 256]).unwrap_err();
/// assert_eq!(
///     err,
///     QuantError::ByteLength { name: "Q6_K", n_elems: 256, expected: 210, actual: 200 }
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuantError {
    /// The type is not one this crate decodes (or the `GgmlType` value
    /// differs from ggml's table entry for its id).
    #[error("cannot dequantize ggml type {name} (id {id})")]
    Unsupported {
        /// The type's name as given.
        name: &'static str,
        /// The type's id as given.
        id: u32,
    },
    /// The element count is not a whole number of blocks.
    #[error("{n_elems} elements is not a multiple of the {name} block size ({block_elems})")]
    NotBlockMultiple {
        /// The type's name.
        name: &'static str,
        /// The element count given.
        n_elems: u64,
        /// Elements per block of this type.
        block_elems: u64,
    },
    /// The packed bytes are not the size the type and element count imply.
    #[error("{n_elems} {name} elements take {expected} bytes, got {actual}")]
    ByteLength {
        /// The type's name.
        name: &'static str,
        /// The element count given.
        n_elems: u64,
        /// `n_elems / block_elems * block_bytes`.
        expected: u64,
        /// The length of the byte slice given.
        actual: u64,
    },
    /// The output buffer does not hold exactly `n_elems` values.
    #[error("output buffer holds {actual} values, {expected} expected")]
    OutputLength {
        /// `n_elems`.
        expected: u64,
        /// The output buffer's length.
        actual: u64,
    },
    /// The packed size overflows `u64`.
    #[error("{n_elems} {name} elements: packed size overflows")]
    TooLarge {
        /// The type's name.
        name: &'static str,
        /// The element count given.
        n_elems: u64,
    },
}

/// The chunk size, in packed bytes, below which the `par_*` functions do not
/// split work: each rayon task decodes whole blocks covering at least this
/// many input bytes.
///
/// ```
/// // A Q4_K chunk is 456 blocks (65,664 bytes, 116,736 values).
/// assert_eq!(aero_quant::PAR_CHUNK_BYTES.div_ceil(144), 456);
/// ```
pub const PAR_CHUNK_BYTES: usize = 64 * 1024;

/// Whether this crate can dequantize `ty`.
///
/// ```
/// use aero_quant::{can_dequantize, GgmlType};
/// assert!(can_dequantize(GgmlType::from_name("IQ2_XXS").unwrap()));
/// assert!(!can_dequantize(GgmlType::from_name("Q8_1").unwrap()));
/// ```
pub fn can_dequantize(ty: GgmlType) -> bool {
    GgmlType::from_id(ty.id) == Some(ty) && dispatch(ty.id, Shape).is_some()
}

/// Every type this crate can dequantize, in id order.
///
/// ```
/// let names: Vec<_> = aero_quant::supported_types().map(|t| t.name).collect();
/// assert!(names.contains(&"Q4_K") && names.contains(&"NVFP4"));
/// ```
pub fn supported_types() -> impl Iterator<Item = GgmlType> {
    aero_format::ggml::GGML_TYPES
        .iter()
        .copied()
        .filter(|t| can_dequantize(*t))
}

/// The exact packed size of `n_elems` elements of `ty`, checked.
///
/// ```
/// use aero_quant::{packed_len, GgmlType};
/// let q4_k = GgmlType::from_name("Q4_K").unwrap();
/// assert_eq!(packed_len(q4_k, 512)?, 288);
/// assert!(packed_len(q4_k, 100).is_err());
/// # Ok::<(), aero_quant::QuantError>(())
/// ```
pub fn packed_len(ty: GgmlType, n_elems: u64) -> Result<u64, QuantError> {
    if !can_dequantize(ty) {
        return Err(QuantError::Unsupported {
            name: ty.name,
            id: ty.id,
        });
    }
    if !n_elems.is_multiple_of(ty.block_elems) {
        return Err(QuantError::NotBlockMultiple {
            name: ty.name,
            n_elems,
            block_elems: ty.block_elems,
        });
    }
    (n_elems / ty.block_elems)
        .checked_mul(ty.block_bytes)
        .ok_or(QuantError::TooLarge {
            name: ty.name,
            n_elems,
        })
}

fn check(ty: GgmlType, bytes: &[u8], n_elems: u64, out_len: usize) -> Result<(), QuantError> {
    let expected = packed_len(ty, n_elems)?;
    if bytes.len() as u64 != expected {
        return Err(QuantError::ByteLength {
            name: ty.name,
            n_elems,
            expected,
            actual: bytes.len() as u64,
        });
    }
    if out_len as u64 != n_elems {
        return Err(QuantError::OutputLength {
            expected: n_elems,
            actual: out_len as u64,
        });
    }
    Ok(())
}

/// Dequantizes `n_elems` elements of `ty` packed in `bytes` into `out`, as
/// f32 — bit for bit what gguf-py's `gguf.quants.dequantize` returns.
///
/// `bytes` must be exactly `n_elems / block_elems * block_bytes` long and
/// `out` exactly `n_elems` long. Runs on the calling thread; see
/// [`par_dequantize`] for large tensors.
///
/// ```
/// use aero_quant::{dequantize, GgmlType, QuantError};
///
/// let q4_0 = GgmlType::from_name("Q4_0").unwrap();
/// // d = 1.0 (f16 0x3c00), every nibble 9 -> value 9 - 8 = 1.
/// let mut block = vec![0x00, 0x3c];
/// block.extend([0x99; 16]);
/// let mut out = vec![0f32; 32];
/// dequantize(q4_0, &block, 32, &mut out)?;
/// assert!(out.iter().all(|&v| v == 1.0));
///
/// // A wrong length is an error, never a panic or a silent truncation.
/// let err = dequantize(q4_0, &block[..17], 32, &mut out).unwrap_err();
/// assert_eq!(err.to_string(), "32 Q4_0 elements take 18 bytes, got 17");
/// # Ok::<(), QuantError>(())
/// ```
pub fn dequantize(
    ty: GgmlType,
    bytes: &[u8],
    n_elems: u64,
    out: &mut [f32],
) -> Result<(), QuantError> {
    run(ty, bytes, n_elems, out, ToF32, false)
}

/// Like [`dequantize`], writing IEEE half-precision bits: each f32 value
/// rounded to nearest even (overflow to ±Inf, NaN stays NaN), exactly as
/// numpy's `astype(np.float16)` rounds it.
///
/// ```
/// use aero_quant::{dequantize_f16, GgmlType};
/// let f32_ty = GgmlType::from_name("F32").unwrap();
/// let bytes: Vec<u8> = [1.0f32, 65520.0, 1e-8].iter().flat_map(|v| v.to_le_bytes()).collect();
/// let mut out = [0u16; 3];
/// dequantize_f16(f32_ty, &bytes, 3, &mut out)?;
/// assert_eq!(out, [0x3c00, 0x7c00, 0x0000]); // 1.0, +Inf, 0 (1e-8 is below half the smallest subnormal)
/// # Ok::<(), aero_quant::QuantError>(())
/// ```
pub fn dequantize_f16(
    ty: GgmlType,
    bytes: &[u8],
    n_elems: u64,
    out: &mut [u16],
) -> Result<(), QuantError> {
    run(ty, bytes, n_elems, out, ToF16, false)
}

/// Like [`dequantize`], writing bfloat16 bits: each f32 value rounded to
/// nearest even on its low 16 bits (ggml's `ggml_compute_fp32_to_bf16`);
/// NaN stays a quiet NaN.
///
/// ```
/// use aero_quant::{dequantize_bf16, GgmlType};
/// let f32_ty = GgmlType::from_name("F32").unwrap();
/// let bytes: Vec<u8> = [1.0f32, -2.5].iter().flat_map(|v| v.to_le_bytes()).collect();
/// let mut out = [0u16; 2];
/// dequantize_bf16(f32_ty, &bytes, 2, &mut out)?;
/// assert_eq!(out, [0x3f80, 0xc020]);
/// # Ok::<(), aero_quant::QuantError>(())
/// ```
pub fn dequantize_bf16(
    ty: GgmlType,
    bytes: &[u8],
    n_elems: u64,
    out: &mut [u16],
) -> Result<(), QuantError> {
    run(ty, bytes, n_elems, out, ToBf16, false)
}

/// [`dequantize`] on the rayon pool: the input is split into chunks of
/// whole blocks of at least [`PAR_CHUNK_BYTES`] packed bytes, each decoded
/// into its own part of `out`. Inputs of one chunk or less run on the calling
/// thread. The values are identical to [`dequantize`]'s.
///
/// ```
/// use aero_quant::{par_dequantize, GgmlType};
/// let q8_0 = GgmlType::from_name("Q8_0").unwrap();
/// let n_blocks = 10_000;
/// let block: Vec<u8> = [0x00, 0x3c].into_iter().chain([2u8; 32]).collect(); // d = 1, q = 2
/// let bytes = block.repeat(n_blocks);
/// let mut out = vec![0f32; n_blocks * 32];
/// par_dequantize(q8_0, &bytes, out.len() as u64, &mut out)?;
/// assert!(out.iter().all(|&v| v == 2.0));
/// # Ok::<(), aero_quant::QuantError>(())
/// ```
pub fn par_dequantize(
    ty: GgmlType,
    bytes: &[u8],
    n_elems: u64,
    out: &mut [f32],
) -> Result<(), QuantError> {
    run(ty, bytes, n_elems, out, ToF32, true)
}

/// [`dequantize_f16`] on the rayon pool (see [`par_dequantize`]).
///
/// ```
/// use aero_quant::{par_dequantize_f16, GgmlType};
/// let bf16 = GgmlType::from_name("BF16").unwrap();
/// let bytes = [0x80, 0x3f].repeat(100_000); // 1.0 as bf16
/// let mut out = vec![0u16; 100_000];
/// par_dequantize_f16(bf16, &bytes, 100_000, &mut out)?;
/// assert!(out.iter().all(|&h| h == 0x3c00));
/// # Ok::<(), aero_quant::QuantError>(())
/// ```
pub fn par_dequantize_f16(
    ty: GgmlType,
    bytes: &[u8],
    n_elems: u64,
    out: &mut [u16],
) -> Result<(), QuantError> {
    run(ty, bytes, n_elems, out, ToF16, true)
}

/// [`dequantize_bf16`] on the rayon pool (see [`par_dequantize`]).
///
/// ```
/// use aero_quant::{par_dequantize_bf16, GgmlType};
/// let f16 = GgmlType::from_name("F16").unwrap();
/// let bytes = [0x00, 0x3c].repeat(100_000); // 1.0 as f16
/// let mut out = vec![0u16; 100_000];
/// par_dequantize_bf16(f16, &bytes, 100_000, &mut out)?;
/// assert!(out.iter().all(|&h| h == 0x3f80));
/// # Ok::<(), aero_quant::QuantError>(())
/// ```
pub fn par_dequantize_bf16(
    ty: GgmlType,
    bytes: &[u8],
    n_elems: u64,
    out: &mut [u16],
) -> Result<(), QuantError> {
    run(ty, bytes, n_elems, out, ToBf16, true)
}

/// Dequantizes into a new vector of f32 (on the rayon pool for large inputs).
///
/// ```
/// use aero_quant::{dequantize_to_vec, GgmlType};
/// let tq2_0 = GgmlType::from_name("TQ2_0").unwrap();
/// let mut block = vec![0b10_10_10_10u8; 64]; // every 2-bit code 2 -> +1
/// block.extend([0x00, 0x40]); // d = 2.0
/// assert_eq!(dequantize_to_vec(tq2_0, &block, 256)?, vec![2.0; 256]);
/// # Ok::<(), aero_quant::QuantError>(())
/// ```
pub fn dequantize_to_vec(ty: GgmlType, bytes: &[u8], n_elems: u64) -> Result<Vec<f32>, QuantError> {
    // Check before allocating: n_elems must match bytes, which exist.
    packed_len(ty, n_elems)?;
    let len = usize::try_from(n_elems).map_err(|_| QuantError::TooLarge {
        name: ty.name,
        n_elems,
    })?;
    check(ty, bytes, n_elems, len)?;
    let mut out = vec![0f32; len];
    par_dequantize(ty, bytes, n_elems, &mut out)?;
    Ok(out)
}

fn run<T: Target>(
    ty: GgmlType,
    bytes: &[u8],
    n_elems: u64,
    out: &mut [T::Out],
    target: T,
    parallel: bool,
) -> Result<(), QuantError> {
    check(ty, bytes, n_elems, out.len())?;
    let done = if parallel && bytes.len() > PAR_CHUNK_BYTES {
        dispatch(ty.id, Parallel { bytes, out, target })
    } else {
        dispatch(ty.id, Serial { bytes, out, target })
    };
    done.ok_or(QuantError::Unsupported {
        name: ty.name,
        id: ty.id,
    })
}

// ------------------------------------------------------------- dispatch

/// One block decoder as a type: `decode` is `#[inline(always)]`, so each
/// per-block loop (and its x86-64-v3 copy, see [`simd`]) has the decoder
/// inlined into it — a fn item passed as `impl Fn` went through a call shim
/// the compiler would not inline, compiled for the baseline target.
pub(crate) trait Kernel<const N: usize, const M: usize>: Copy + Send + Sync {
    /// Decodes one block of `N` packed bytes into `M` values.
    fn decode(b: &[u8; N], y: &mut [f32; M]);
}

macro_rules! kernel_types {
    ($($t:ident = $f:ident [$n:literal, $m:literal];)*) => {$(
        #[derive(Clone, Copy)]
        #[allow(non_camel_case_types)]
        pub(crate) struct $t;
        impl Kernel<$n, $m> for $t {
            #[inline(always)]
            fn decode(b: &[u8; $n], y: &mut [f32; $m]) {
                kernels::$f(b, y)
            }
        }
    )*};
}

kernel_types! {
    K_F32_LE = f32_le [4, 1];
    K_F16 = f16 [2, 1];
    K_BF16 = bf16 [2, 1];
    K_F64_LE = f64_le [8, 1];
    K_I8_ = i8_ [1, 1];
    K_I16_LE = i16_le [2, 1];
    K_I32_LE = i32_le [4, 1];
    K_I64_LE = i64_le [8, 1];
    K_Q4_0 = q4_0 [18, 32];
    K_Q4_1 = q4_1 [20, 32];
    K_Q5_0 = q5_0 [22, 32];
    K_Q5_1 = q5_1 [24, 32];
    K_Q8_0 = q8_0 [34, 32];
    K_IQ4_NL = iq4_nl [18, 32];
    K_MXFP4 = mxfp4 [17, 32];
    K_NVFP4 = nvfp4 [36, 64];
    K_Q2_K = q2_k [84, 256];
    K_Q3_K = q3_k [110, 256];
    K_Q4_K = q4_k [144, 256];
    K_Q5_K = q5_k [176, 256];
    K_Q6_K = q6_k [210, 256];
    K_Q8_K = q8_k [292, 256];
    K_TQ1_0 = tq1_0 [54, 256];
    K_TQ2_0 = tq2_0 [66, 256];
    K_IQ4_XS = iq4_xs [136, 256];
    K_IQ2_XXS = iq2_xxs [66, 256];
    K_IQ2_XS = iq2_xs [74, 256];
    K_IQ2_S = iq2_s [82, 256];
    K_IQ3_XXS = iq3_xxs [98, 256];
    K_IQ3_S = iq3_s [110, 256];
    K_IQ1_S = iq1_s [50, 256];
    K_IQ1_M = iq1_m [56, 256];
}

/// Something generic over a block decoder: each `visit` is monomorphised
/// around one tight per-block loop.
pub(crate) trait Visit {
    type Output;
    fn visit<const N: usize, const M: usize, K>(self, kernel: K) -> Self::Output
    where
        K: Kernel<N, M>;
}

/// The one place that maps a ggml type id to its decoder.
pub(crate) fn dispatch<V: Visit>(id: u32, v: V) -> Option<V::Output> {
    Some(match id {
        0 => v.visit(K_F32_LE),
        1 => v.visit(K_F16),
        2 => v.visit(K_Q4_0),
        3 => v.visit(K_Q4_1),
        6 => v.visit(K_Q5_0),
        7 => v.visit(K_Q5_1),
        8 => v.visit(K_Q8_0),
        10 => v.visit(K_Q2_K),
        11 => v.visit(K_Q3_K),
        12 => v.visit(K_Q4_K),
        13 => v.visit(K_Q5_K),
        14 => v.visit(K_Q6_K),
        15 => v.visit(K_Q8_K),
        16 => v.visit(K_IQ2_XXS),
        17 => v.visit(K_IQ2_XS),
        18 => v.visit(K_IQ3_XXS),
        19 => v.visit(K_IQ1_S),
        20 => v.visit(K_IQ4_NL),
        21 => v.visit(K_IQ3_S),
        22 => v.visit(K_IQ2_S),
        23 => v.visit(K_IQ4_XS),
        24 => v.visit(K_I8_),
        25 => v.visit(K_I16_LE),
        26 => v.visit(K_I32_LE),
        27 => v.visit(K_I64_LE),
        28 => v.visit(K_F64_LE),
        29 => v.visit(K_IQ1_M),
        30 => v.visit(K_BF16),
        34 => v.visit(K_TQ1_0),
        35 => v.visit(K_TQ2_0),
        39 => v.visit(K_MXFP4),
        40 => v.visit(K_NVFP4),
        _ => return None,
    })
}

/// The decoder's block shape (packed bytes, elements): lets tests hold the
/// decoders to ggml's type table.
pub(crate) struct Shape;

impl Visit for Shape {
    type Output = (usize, usize);
    fn visit<const N: usize, const M: usize, K>(self, _: K) -> (usize, usize)
    where
        K: Kernel<N, M>,
    {
        (N, M)
    }
}

// -------------------------------------------------------------- targets

/// What decoded blocks become in the output buffer.
pub(crate) trait Target: Copy + Send + Sync {
    type Out: Copy + Send + Sync;
    /// Decodes `blocks` into `out` (same number of blocks).
    fn decode<const N: usize, const M: usize, K>(
        self,
        kernel: K,
        blocks: &[[u8; N]],
        out: &mut [[Self::Out; M]],
    ) where
        K: Kernel<N, M>;
}

#[derive(Clone, Copy)]
pub(crate) struct ToF32;
#[derive(Clone, Copy)]
pub(crate) struct ToF16;
#[derive(Clone, Copy)]
pub(crate) struct ToBf16;

impl Target for ToF32 {
    type Out = f32;
    #[inline(always)]
    fn decode<const N: usize, const M: usize, K>(
        self,
        _kernel: K,
        blocks: &[[u8; N]],
        out: &mut [[f32; M]],
    ) where
        K: Kernel<N, M>,
    {
        for (b, y) in blocks.iter().zip(out) {
            K::decode(b, y);
        }
    }
}

impl Target for ToF16 {
    type Out = u16;
    #[inline(always)]
    fn decode<const N: usize, const M: usize, K>(
        self,
        kernel: K,
        blocks: &[[u8; N]],
        out: &mut [[u16; M]],
    ) where
        K: Kernel<N, M>,
    {
        decode_narrow(kernel, blocks, out, half::f32_to_f16);
    }
}

impl Target for ToBf16 {
    type Out = u16;
    #[inline(always)]
    fn decode<const N: usize, const M: usize, K>(
        self,
        kernel: K,
        blocks: &[[u8; N]],
        out: &mut [[u16; M]],
    ) where
        K: Kernel<N, M>,
    {
        decode_narrow(kernel, blocks, out, half::f32_to_bf16);
    }
}

/// Values decoded to f32 at a time before narrowing (4 KiB of stack).
const NARROW_GROUP: usize = 1024;

/// Decodes a group of blocks into f32 scratch, then narrows the whole group
/// in one vectorisable loop.
#[inline(always)]
fn decode_narrow<const N: usize, const M: usize, K>(
    _kernel: K,
    blocks: &[[u8; N]],
    out: &mut [[u16; M]],
    narrow: impl Fn(f32) -> u16,
) where
    K: Kernel<N, M>,
{
    let per_group = (NARROW_GROUP / M).max(1);
    let mut scratch = [0f32; NARROW_GROUP];
    for (bs, ys) in blocks.chunks(per_group).zip(out.chunks_mut(per_group)) {
        let (tmp, _) = scratch.as_chunks_mut::<M>();
        for (b, t) in bs.iter().zip(tmp.iter_mut()) {
            K::decode(b, t);
        }
        for (o, v) in ys.as_flattened_mut().iter_mut().zip(scratch.iter()) {
            *o = narrow(*v);
        }
    }
}

/// Decodes every whole block of `bytes` into the matching part of `out`
/// (callers have checked that the lengths agree; a mismatch only stops early).
///
/// On x86-64 processors with AVX2 (x86-64-v3) the same loop runs compiled
/// for those instructions (see [`simd`]); elsewhere as built.
#[inline(always)]
pub(crate) fn decode_blocks<T: Target, const N: usize, const M: usize, K>(
    target: T,
    kernel: K,
    bytes: &[u8],
    out: &mut [T::Out],
) where
    K: Kernel<N, M>,
{
    #[cfg(target_arch = "x86_64")]
    if simd::has_v3() {
        simd::decode_blocks_v3(target, kernel, bytes, out);
        return;
    }
    decode_blocks_portable(target, kernel, bytes, out);
}

/// [`decode_blocks`] as compiled for the build's baseline target.
#[inline(always)]
fn decode_blocks_portable<T: Target, const N: usize, const M: usize, K>(
    target: T,
    kernel: K,
    bytes: &[u8],
    out: &mut [T::Out],
) where
    K: Kernel<N, M>,
{
    let (blocks, _) = bytes.as_chunks::<N>();
    let (outs, _) = out.as_chunks_mut::<M>();
    target.decode(kernel, blocks, outs);
}

/// The block loop compiled a second time for x86-64-v3 (AVX2, FMA, F16C,
/// BMI), chosen at run time: the kernels are plain Rust whose inner loops
/// the compiler vectorises, 8 lanes wide here instead of SSE2's 4 (Q4_K to
/// f32 about 1.6 times as fast, f32 to f16 about 3 times).
///
/// Results are bit-identical to the portable loop: Rust never fuses a
/// multiply and an add into an FMA unless asked (`mul_add`), so enabling
/// the feature changes instruction width, not rounding; the gguf-py
/// comparison tests run on whichever path the machine takes, and
/// `portable_and_v3_loops_agree` below runs both.
#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{Kernel, Target, decode_blocks_portable};

    /// Whether this processor runs x86-64-v3 code (detected once, cached by std).
    #[inline(always)]
    pub(crate) fn has_v3() -> bool {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
            && std::is_x86_feature_detected!("bmi1")
            && std::is_x86_feature_detected!("bmi2")
    }

    /// Calls the x86-64-v3 build of the block loop; the caller has checked
    /// [`has_v3`].
    #[inline(always)]
    #[allow(unsafe_code)]
    pub(crate) fn decode_blocks_v3<T: Target, const N: usize, const M: usize, K>(
        target: T,
        kernel: K,
        bytes: &[u8],
        out: &mut [T::Out],
    ) where
        K: Kernel<N, M>,
    {
        debug_assert!(has_v3());
        // SAFETY: `v3` only requires that the CPU supports the features it
        // is compiled with; every caller checks `has_v3()` first (runtime
        // CPUID detection by std). It takes only safe references and does
        // nothing else unsafe.
        unsafe { v3(target, kernel, bytes, out) }
    }

    #[target_feature(enable = "avx2,fma,f16c,bmi1,bmi2")]
    fn v3<T: Target, const N: usize, const M: usize, K>(
        target: T,
        kernel: K,
        bytes: &[u8],
        out: &mut [T::Out],
    ) where
        K: Kernel<N, M>,
    {
        decode_blocks_portable(target, kernel, bytes, out);
    }
}

struct Serial<'a, T: Target> {
    bytes: &'a [u8],
    out: &'a mut [T::Out],
    target: T,
}

impl<T: Target> Visit for Serial<'_, T> {
    type Output = ();
    fn visit<const N: usize, const M: usize, K>(self, kernel: K)
    where
        K: Kernel<N, M>,
    {
        decode_blocks(self.target, kernel, self.bytes, self.out);
    }
}

struct Parallel<'a, T: Target> {
    bytes: &'a [u8],
    out: &'a mut [T::Out],
    target: T,
}

impl<T: Target> Visit for Parallel<'_, T> {
    type Output = ();
    fn visit<const N: usize, const M: usize, K>(self, kernel: K)
    where
        K: Kernel<N, M>,
    {
        let blocks = PAR_CHUNK_BYTES.div_ceil(N).max(1);
        let target = self.target;
        self.bytes
            .par_chunks(blocks * N)
            .zip(self.out.par_chunks_mut(blocks * M))
            .for_each(|(b, y)| decode_blocks(target, kernel, b, y));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the machine has AVX2, the v3 loop and the portable one give
    /// the same bits for every type and output (random blocks, so NaN and
    /// Inf scales are covered too).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn portable_and_v3_loops_agree() {
        struct Both<'a>(&'a [u8]);
        impl Visit for Both<'_> {
            type Output = ();
            fn visit<const N: usize, const M: usize, K>(self, kernel: K)
            where
                K: Kernel<N, M>,
            {
                let blocks = self.0.len() / N;
                let n = blocks * M;
                let bytes = &self.0[..blocks * N];
                let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
                decode_blocks_portable(ToF32, kernel, bytes, &mut a);
                simd::decode_blocks_v3(ToF32, kernel, bytes, &mut b);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "f32, block of {N} bytes");
                for t in [0, 1] {
                    let (mut a, mut b) = (vec![0u16; n], vec![0u16; n]);
                    if t == 0 {
                        decode_blocks_portable(ToF16, kernel, bytes, &mut a);
                        simd::decode_blocks_v3(ToF16, kernel, bytes, &mut b);
                    } else {
                        decode_blocks_portable(ToBf16, kernel, bytes, &mut a);
                        simd::decode_blocks_v3(ToBf16, kernel, bytes, &mut b);
                    }
                    assert_eq!(a, b, "f16/bf16 {t}, block of {N} bytes");
                }
            }
        }
        if !simd::has_v3() {
            eprintln!("no AVX2 here: only the portable loop runs");
            return;
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let data: Vec<u8> = (0..64 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let mut n = 0;
        for ty in aero_format::ggml::GGML_TYPES {
            if dispatch(ty.id, Both(&data)).is_some() {
                n += 1;
            }
        }
        assert_eq!(n, 32);
    }

    #[test]
    fn decoders_match_ggml_type_table() {
        let mut n = 0;
        for ty in aero_format::ggml::GGML_TYPES {
            if let Some((bytes, elems)) = dispatch(ty.id, Shape) {
                assert_eq!(
                    (bytes as u64, elems as u64),
                    (ty.block_bytes, ty.block_elems),
                    "{}",
                    ty.name
                );
                n += 1;
            }
        }
        assert_eq!(n, 32);
        let unsupported: Vec<_> = aero_format::ggml::GGML_TYPES
            .iter()
            .filter(|t| !can_dequantize(**t))
            .map(|t| t.name)
            .collect();
        assert_eq!(unsupported, ["Q8_1", "Q1_0"]);
    }
}
