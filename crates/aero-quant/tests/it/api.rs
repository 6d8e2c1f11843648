//! Errors, robustness on arbitrary bytes, and agreement between the serial,
//! parallel and streaming entry points (no Python needed).

use std::io::{self, Read, Write};

use aero_quant::{
    GgmlType, OutputType, PAR_CHUNK_BYTES, QuantError, StreamError, can_dequantize, dequantize,
    dequantize_bf16, dequantize_f16, dequantize_reader, dequantize_reader_with, dequantize_to_vec,
    packed_len, par_dequantize, par_dequantize_bf16, par_dequantize_f16, supported_types,
};

fn ty(name: &str) -> GgmlType {
    GgmlType::from_name(name).unwrap()
}

use aero_test_support::Rng;

fn same_f32(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

#[test]
fn supported_set() {
    let names: Vec<_> = supported_types().map(|t| t.name).collect();
    for name in [
        "F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
        "Q8_0", "Q8_K", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ1_S", "IQ1_M", "IQ2_XXS",
        "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4",
        "NVFP4",
    ] {
        assert!(names.contains(&name), "{name}");
    }
    assert_eq!(names.len(), 32);
}

#[test]
fn errors_say_what_is_wrong() {
    let q4_k = ty("Q4_K");
    let mut out = vec![0f32; 256];

    let e = dequantize(ty("Q8_1"), &[0; 36], 32, &mut out[..32]).unwrap_err();
    assert_eq!(
        e,
        QuantError::Unsupported {
            name: "Q8_1",
            id: 9
        }
    );
    assert_eq!(e.to_string(), "cannot dequantize ggml type Q8_1 (id 9)");
    assert!(matches!(
        dequantize(ty("Q1_0"), &[0; 18], 128, &mut [0f32; 128]),
        Err(QuantError::Unsupported {
            name: "Q1_0",
            id: 41
        })
    ));
    // A GgmlType that is not ggml's entry for its id is refused, not trusted.
    let forged = GgmlType {
        block_bytes: 100,
        ..q4_k
    };
    assert!(!can_dequantize(forged));
    assert!(matches!(
        dequantize(forged, &[0; 100], 256, &mut out),
        Err(QuantError::Unsupported { id: 12, .. })
    ));

    let e = dequantize(q4_k, &[0; 144], 200, &mut out[..200]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "200 elements is not a multiple of the Q4_K block size (256)"
    );

    let e = dequantize(q4_k, &[0; 143], 256, &mut out).unwrap_err();
    assert_eq!(
        e,
        QuantError::ByteLength {
            name: "Q4_K",
            n_elems: 256,
            expected: 144,
            actual: 143
        }
    );
    assert_eq!(e.to_string(), "256 Q4_K elements take 144 bytes, got 143");
    assert!(matches!(
        dequantize(q4_k, &[0; 288], 256, &mut out),
        Err(QuantError::ByteLength {
            expected: 144,
            actual: 288,
            ..
        })
    ));

    let e = dequantize(q4_k, &[0; 144], 256, &mut out[..255]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "output buffer holds 255 values, 256 expected"
    );
    let mut out16 = vec![0u16; 257];
    assert!(matches!(
        dequantize_f16(q4_k, &[0; 144], 256, &mut out16),
        Err(QuantError::OutputLength {
            expected: 256,
            actual: 257
        })
    ));

    // 8 bytes per element: the packed size of 2^62 F64 values overflows u64.
    let huge = 1u64 << 62;
    assert_eq!(
        packed_len(ty("F64"), huge),
        Err(QuantError::TooLarge {
            name: "F64",
            n_elems: huge
        })
    );
    assert!(dequantize_to_vec(ty("F64"), &[0; 8], huge).is_err());
    assert!(dequantize_to_vec(q4_k, &[0; 144], u64::MAX - 255).is_err());
    assert_eq!(packed_len(ty("IQ1_S"), 512), Ok(100));
    assert_eq!(packed_len(ty("F32"), 0), Ok(0));
    dequantize(ty("Q4_K"), &[], 0, &mut []).unwrap();
}

/// Any bytes of the right length decode without panicking, through every
/// entry point, and all entry points agree.
#[test]
fn arbitrary_bytes_never_panic_and_paths_agree() {
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    for t in supported_types() {
        for n_blocks in [0usize, 1, 2, 7] {
            for fill in [None, Some(0x00u8), Some(0xff)] {
                let n_bytes = n_blocks * t.block_bytes as usize;
                let bytes = match fill {
                    None => rng.bytes(n_bytes),
                    Some(b) => vec![b; n_bytes],
                };
                let n = (n_blocks as u64) * t.block_elems;
                let len = n as usize;
                let mut a = vec![0f32; len];
                let mut b = vec![0f32; len];
                dequantize(t, &bytes, n, &mut a).unwrap();
                par_dequantize(t, &bytes, n, &mut b).unwrap();
                assert!(same_f32(&a, &b), "{}", t.name);
                let mut h = vec![0u16; len];
                dequantize_f16(t, &bytes, n, &mut h).unwrap();
                dequantize_bf16(t, &bytes, n, &mut h).unwrap();
                let mut streamed = Vec::new();
                dequantize_reader_with(t, n, &bytes[..], |v| {
                    streamed.extend_from_slice(v);
                    Ok(())
                })
                .unwrap();
                assert!(same_f32(&a, &streamed), "{}", t.name);
            }
        }
        // Wrong lengths of every kind are errors, never panics.
        let bb = t.block_bytes as usize;
        for (n_bytes, n) in [
            (bb - 1, t.block_elems),
            (bb + 1, t.block_elems),
            (bb, 0),
            (0, 1),
        ] {
            let bytes = rng.bytes(n_bytes);
            let mut out = vec![0f32; n as usize];
            assert!(
                dequantize(t, &bytes, n, &mut out).is_err(),
                "{} {n_bytes} {n}",
                t.name
            );
        }
    }
}

/// Large inputs: the parallel split (chunks of whole blocks, ragged last
/// chunk) and the multi-step stream give the serial result.
#[test]
fn parallel_and_stream_match_serial_on_large_inputs() {
    let mut rng = Rng::new(42);
    for name in ["Q4_K", "IQ1_S", "Q4_0", "NVFP4", "F16", "I8"] {
        let t = ty(name);
        // Not a multiple of the chunk size: the last chunk is short.
        let n_blocks = 3 * PAR_CHUNK_BYTES / t.block_bytes as usize + 5;
        let n_blocks = n_blocks.max(300_000 / t.block_elems as usize);
        let mut bytes = rng.bytes(n_blocks * t.block_bytes as usize);
        if name == "F16" {
            // Keep the values finite so the comparison below is plain equality.
            for pair in bytes.chunks_exact_mut(2) {
                pair[1] &= 0xbf;
            }
        }
        let n = n_blocks as u64 * t.block_elems;
        let mut serial = vec![0f32; n as usize];
        dequantize(t, &bytes, n, &mut serial).unwrap();
        assert_eq!(dequantize_to_vec(t, &bytes, n).unwrap().len(), serial.len());
        let mut par = vec![0f32; n as usize];
        par_dequantize(t, &bytes, n, &mut par).unwrap();
        assert!(same_f32(&serial, &par), "{name}");

        let (mut s16, mut p16) = (vec![0u16; n as usize], vec![0u16; n as usize]);
        dequantize_f16(t, &bytes, n, &mut s16).unwrap();
        par_dequantize_f16(t, &bytes, n, &mut p16).unwrap();
        assert_eq!(s16, p16, "{name}");
        dequantize_bf16(t, &bytes, n, &mut s16).unwrap();
        par_dequantize_bf16(t, &bytes, n, &mut p16).unwrap();
        assert_eq!(s16, p16, "{name}");

        // The stream reads through a reader that returns odd-sized pieces
        // and is interrupted now and then.
        let mut calls = 0;
        let mut max_slice = 0;
        let mut streamed = Vec::with_capacity(n as usize);
        let reader = Choppy {
            data: &bytes,
            pos: 0,
            step: 0,
        };
        dequantize_reader_with(t, n, reader, |v| {
            calls += 1;
            max_slice = max_slice.max(v.len());
            streamed.extend_from_slice(v);
            Ok(())
        })
        .unwrap();
        assert!(same_f32(&serial, &streamed), "{name}");
        assert!(calls > 1, "{name}: one step only");
        assert!(
            max_slice <= 64 * 1024,
            "{name}: {max_slice} values in one step"
        );

        let mut bf = Vec::new();
        let written = dequantize_reader(t, n, &bytes[..], OutputType::BF16, &mut bf).unwrap();
        assert_eq!(written, 2 * n);
        let bf: Vec<u16> = bf
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(bf, s16, "{name}");
    }
}

struct Choppy<'a> {
    data: &'a [u8],
    pos: usize,
    step: usize,
}

impl Read for Choppy<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.step += 1;
        if self.step.is_multiple_of(7) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = (self.step * 7919 % 100_000 + 1)
            .min(buf.len())
            .min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn stream_errors() {
    let q8_0 = ty("Q8_0");
    let packed = vec![0u8; 34 * 10];

    // Too few bytes: says where it ended and what was expected.
    let e = dequantize_reader_with(q8_0, 320, &packed[..100], |_| Ok(())).unwrap_err();
    assert!(matches!(
        e,
        StreamError::Truncated {
            name: "Q8_0",
            offset: 100,
            expected: 340
        }
    ));
    assert_eq!(
        e.to_string(),
        "packed Q8_0 data ended after 100 of 340 bytes"
    );

    // A longer reader: exactly the packed size is consumed.
    let longer = vec![0u8; 34 * 10 + 5];
    let mut cursor = io::Cursor::new(&longer);
    dequantize_reader_with(q8_0, 320, &mut cursor, |_| Ok(())).unwrap();
    assert_eq!(cursor.position(), 340);

    // Sizes are checked before anything is read.
    let e = dequantize_reader_with(q8_0, 33, &packed[..], |_| Ok(())).unwrap_err();
    assert!(matches!(
        e,
        StreamError::Quant(QuantError::NotBlockMultiple { .. })
    ));
    let e =
        dequantize_reader(ty("Q8_1"), 32, &packed[..], OutputType::F32, io::sink()).unwrap_err();
    assert!(matches!(
        e,
        StreamError::Quant(QuantError::Unsupported { .. })
    ));

    // Reader errors keep the offset.
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("disk on fire"));
            }
            let n = self.0.min(buf.len());
            buf[..n].fill(0);
            self.0 -= n;
            Ok(n)
        }
    }
    let e = dequantize_reader_with(q8_0, 320, Failing(50), |_| Ok(())).unwrap_err();
    assert!(matches!(e, StreamError::Read { offset: 50, .. }), "{e}");
    assert!(e.to_string().contains("disk on fire"));

    // Writer errors are reported as such.
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("no space"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let e = dequantize_reader(q8_0, 320, &packed[..], OutputType::F16, Full).unwrap_err();
    assert!(matches!(e, StreamError::Write { written: 0, .. }), "{e}");
}
