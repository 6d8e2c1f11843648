//! Dequantizing a stream of packed bytes with bounded memory.

use std::io::{self, Read, Write};

use crate::{
    GgmlType, Kernel, QuantError, Target, ToBf16, ToF16, ToF32, Visit, decode_blocks, dispatch,
};

/// About this many values are decoded per step (256 KiB of f32): a stream
/// holds 256 KiB of f32, as much encoded output and at most 512 KiB of packed
/// input (F64; 36 KiB for Q4_K) whatever the tensor size — small enough to stay in a
/// core's L2 cache, which makes streaming as fast as decoding into memory.
const STEP_ELEMS: usize = 64 * 1024;

/// The element type a stream writes, little-endian.
///
/// ```
/// use aero_quant::{dequantize_reader, GgmlType, OutputType};
/// let bf16 = GgmlType::from_name("BF16").unwrap();
/// let mut out = Vec::new();
/// dequantize_reader(bf16, 1, &[0x80, 0x3f][..], OutputType::F32, &mut out)?;
/// assert_eq!(out, 1.0f32.to_le_bytes());
/// # Ok::<(), aero_quant::StreamError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputType {
    /// IEEE f32, 4 bytes per value (gguf-py's values, bit for bit).
    F32,
    /// IEEE f16, 2 bytes per value, rounded to nearest even.
    F16,
    /// bfloat16, 2 bytes per value, rounded to nearest even.
    BF16,
}

impl OutputType {
    /// Bytes per output value.
    ///
    /// ```
    /// assert_eq!(aero_quant::OutputType::BF16.elem_bytes(), 2);
    /// ```
    pub fn elem_bytes(self) -> usize {
        match self {
            OutputType::F32 => 4,
            OutputType::F16 | OutputType::BF16 => 2,
        }
    }
}

/// Why a streamed dequantization stopped.
///
/// ```
/// use aero_quant::{dequantize_reader_with, GgmlType, StreamError};
/// let q4_0 = GgmlType::from_name("Q4_0").unwrap();
/// let short = [0u8; 20]; // 64 Q4_0 values take 36 bytes
/// let err = dequantize_reader_with(q4_0, 64, &short[..], |_| Ok(())).unwrap_err();
/// assert!(matches!(err, StreamError::Truncated { offset: 20, expected: 36, .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The type, element count or sizes are wrong (nothing was read).
    #[error(transparent)]
    Quant(#[from] QuantError),
    /// Reading the packed bytes failed.
    #[error("reading packed {name} data at byte {offset}: {source}")]
    Read {
        /// The type's name.
        name: &'static str,
        /// Packed bytes read successfully before the error.
        offset: u64,
        /// The reader's error.
        source: io::Error,
    },
    /// The reader ended before the packed size.
    #[error("packed {name} data ended after {offset} of {expected} bytes")]
    Truncated {
        /// The type's name.
        name: &'static str,
        /// Bytes read.
        offset: u64,
        /// Bytes expected (the packed size of `n_elems`).
        expected: u64,
    },
    /// The writer or callback failed.
    #[error("writing dequantized values after {written} values: {source}")]
    Write {
        /// Values delivered successfully before the error.
        written: u64,
        /// The writer's or callback's error.
        source: io::Error,
    },
}

/// Reads the `packed_len(ty, n_elems)` bytes of a packed tensor from
/// `reader`, block by block, and hands the f32 values to `sink` in order, a
/// slice of at most 64 Ki values at a time. Buffers stay at about 1 MiB at
/// most, whatever the tensor size; the values are
/// [`dequantize`](crate::dequantize)'s.
///
/// Reads exactly the packed size (a longer reader is left positioned after
/// it); fewer bytes is [`StreamError::Truncated`].
///
/// ```
/// use aero_quant::{dequantize_reader_with, GgmlType};
/// let q8_0 = GgmlType::from_name("Q8_0").unwrap();
/// let block: Vec<u8> = [0x00, 0x3c].into_iter().chain([1u8; 32]).collect(); // d = 1, q = 1
/// let packed = block.repeat(100_000); // 3.2 M values, streamed in steps
/// let mut sum = 0f64;
/// dequantize_reader_with(q8_0, 3_200_000, &packed[..], |values| {
///     sum += values.iter().map(|&v| f64::from(v)).sum::<f64>();
///     Ok(())
/// })?;
/// assert_eq!(sum, 3_200_000.0);
/// # Ok::<(), aero_quant::StreamError>(())
/// ```
pub fn dequantize_reader_with<R, F>(
    ty: GgmlType,
    n_elems: u64,
    reader: R,
    sink: F,
) -> Result<(), StreamError>
where
    R: Read,
    F: FnMut(&[f32]) -> io::Result<()>,
{
    run(ty, n_elems, reader, ToF32, sink)
}

/// Reads the packed bytes of `n_elems` elements of `ty` from `reader` and
/// writes the values to `writer` as little-endian `output` values, with
/// bounded memory (see [`dequantize_reader_with`]). Returns the number of
/// bytes written. The writer is not flushed.
///
/// ```
/// use aero_quant::{dequantize_reader, GgmlType, OutputType};
/// let iq4_nl = GgmlType::from_name("IQ4_NL").unwrap();
/// let mut block = vec![0x00, 0x3c]; // d = 1
/// block.extend([0x08; 16]); // nibbles 8 and 0: kvalues 1 and -127
/// let mut out = Vec::new();
/// let n = dequantize_reader(iq4_nl, 32, &block[..], OutputType::F16, &mut out)?;
/// assert_eq!(n, 64);
/// assert_eq!(&out[..2], &0x3c00u16.to_le_bytes()); // 1.0
/// assert_eq!(&out[32..34], &0xd7f0u16.to_le_bytes()); // -127.0
/// # Ok::<(), aero_quant::StreamError>(())
/// ```
pub fn dequantize_reader<R, W>(
    ty: GgmlType,
    n_elems: u64,
    reader: R,
    output: OutputType,
    mut writer: W,
) -> Result<u64, StreamError>
where
    R: Read,
    W: Write,
{
    let mut buf = Vec::new();
    let mut written = 0u64;
    let mut write = |bytes: &[u8]| -> io::Result<()> {
        writer.write_all(bytes)?;
        written += bytes.len() as u64;
        Ok(())
    };
    match output {
        OutputType::F32 => run(ty, n_elems, reader, ToF32, |v: &[f32]| {
            buf.resize(v.len() * 4, 0);
            for (b, x) in buf.chunks_exact_mut(4).zip(v) {
                b.copy_from_slice(&x.to_le_bytes());
            }
            write(&buf)
        })?,
        OutputType::F16 => run(ty, n_elems, reader, ToF16, |v: &[u16]| {
            buf.resize(v.len() * 2, 0);
            for (b, x) in buf.chunks_exact_mut(2).zip(v) {
                b.copy_from_slice(&x.to_le_bytes());
            }
            write(&buf)
        })?,
        OutputType::BF16 => run(ty, n_elems, reader, ToBf16, |v: &[u16]| {
            buf.resize(v.len() * 2, 0);
            for (b, x) in buf.chunks_exact_mut(2).zip(v) {
                b.copy_from_slice(&x.to_le_bytes());
            }
            write(&buf)
        })?,
    }
    Ok(written)
}

fn run<T, R, F>(
    ty: GgmlType,
    n_elems: u64,
    reader: R,
    target: T,
    sink: F,
) -> Result<(), StreamError>
where
    T: Target,
    T::Out: Default,
    R: Read,
    F: FnMut(&[T::Out]) -> io::Result<()>,
{
    let expected = crate::packed_len(ty, n_elems)?;
    let step = Stream {
        ty,
        expected,
        reader,
        target,
        sink,
    };
    dispatch(ty.id, step).unwrap_or(Err(StreamError::Quant(QuantError::Unsupported {
        name: ty.name,
        id: ty.id,
    })))
}

struct Stream<T, R, F> {
    ty: GgmlType,
    expected: u64,
    reader: R,
    target: T,
    sink: F,
}

impl<T, R, F> Visit for Stream<T, R, F>
where
    T: Target,
    T::Out: Default,
    R: Read,
    F: FnMut(&[T::Out]) -> io::Result<()>,
{
    type Output = Result<(), StreamError>;

    fn visit<const N: usize, const M: usize, K>(mut self, kernel: K) -> Self::Output
    where
        K: Kernel<N, M>,
    {
        let step_blocks = (STEP_ELEMS / M).max(1);
        let total_blocks = self.expected / N as u64;
        let first = usize::try_from(total_blocks.min(step_blocks as u64)).unwrap_or(step_blocks);
        let mut packed = vec![0u8; first * N];
        let mut values = vec![T::Out::default(); first * M];
        let (mut offset, mut written) = (0u64, 0u64);
        while offset < self.expected {
            let want = usize::try_from((self.expected - offset).min(packed.len() as u64))
                .unwrap_or(packed.len());
            let chunk = packed.get_mut(..want).unwrap_or_default();
            fill(&mut self.reader, chunk).map_err(|(got, source)| match source {
                Some(source) => StreamError::Read {
                    name: self.ty.name,
                    offset: offset + got as u64,
                    source,
                },
                None => StreamError::Truncated {
                    name: self.ty.name,
                    offset: offset + got as u64,
                    expected: self.expected,
                },
            })?;
            let n_values = want / N * M;
            let out = values.get_mut(..n_values).unwrap_or_default();
            decode_blocks(self.target, kernel, chunk, out);
            (self.sink)(out).map_err(|source| StreamError::Write { written, source })?;
            offset += want as u64;
            written += n_values as u64;
        }
        Ok(())
    }
}

/// Fills `buf` from `reader`; on failure, how many bytes arrived and the
/// error (`None`: end of input).
fn fill<R: Read>(reader: &mut R, buf: &mut [u8]) -> Result<(), (usize, Option<io::Error>)> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(buf.get_mut(got..).unwrap_or_default()) {
            Ok(0) => return Err((got, None)),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((got, Some(e))),
        }
    }
    Ok(())
}
