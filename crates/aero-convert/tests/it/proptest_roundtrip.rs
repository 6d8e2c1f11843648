//! Property tests (proptest): random tensor sets written by the streaming
//! writer read back through `AeroFile` with identical bytes, and export to
//! safetensors with identical bytes; exporting the re-imported file gives
//! the same safetensors file byte for byte.

use std::io::Cursor;

use aero_io::write::{Layout, TensorSpec, WriteOptions, write_model};
use aero_io::{AeroFile, DType, Mode, Verdict};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Tensor {
    name: String,
    dtype: DType,
    shape: Vec<u64>,
    bytes: Vec<u8>,
}

const DTYPES: [DType; 13] = [
    DType::F16,
    DType::F32,
    DType::BF16,
    DType::F64,
    DType::I8,
    DType::U8,
    DType::I16,
    DType::U16,
    DType::I32,
    DType::U32,
    DType::I64,
    DType::U64,
    DType::Bool,
];

fn tensor() -> impl Strategy<Value = (DType, Vec<u64>)> {
    (
        prop::sample::select(&DTYPES[..]),
        prop::collection::vec(0u64..5, 0..4),
    )
}

fn tensors() -> impl Strategy<Value = Vec<Tensor>> {
    prop::collection::btree_map("[a-z][a-z0-9_.]{0,12}", tensor(), 1..8).prop_flat_map(|m| {
        let metas: Vec<(String, DType, Vec<u64>)> =
            m.into_iter().map(|(n, (d, s))| (n, d, s)).collect();
        let lens: Vec<usize> = metas
            .iter()
            .map(|(_, d, s)| (s.iter().product::<u64>() * d.size().unwrap()) as usize)
            .collect();
        let bytes: Vec<_> = lens
            .iter()
            .zip(&metas)
            .map(|(&n, (_, d, _))| {
                if *d == DType::Bool {
                    prop::collection::vec(0u8..2, n).boxed()
                } else {
                    prop::collection::vec(any::<u8>(), n).boxed()
                }
            })
            .collect();
        (Just(metas), bytes).prop_map(|(metas, bytes)| {
            metas
                .into_iter()
                .zip(bytes)
                .map(|((name, dtype, shape), bytes)| Tensor {
                    name,
                    dtype,
                    shape,
                    bytes,
                })
                .collect()
        })
    })
}

fn specs(ts: &[Tensor]) -> Vec<TensorSpec<'static>> {
    ts.iter()
        .map(|t| TensorSpec {
            name: t.name.clone(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            data_len: t.bytes.len() as u64,
            extras: Vec::new(),
            bytes: aero_io::write::TensorBytes::Reader(Box::new(Cursor::new(t.bytes.clone()))),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn writer_reader_exporter_keep_every_byte(
        ts in tensors(),
        reference in any::<bool>(),
        hash in any::<bool>(),
        pages in any::<bool>(),
        max_shard in 1u64..256,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let aero = dir.path().join("m.aero");
        let opts = WriteOptions {
            uuid: Some([7; 16]),
            durable: false,
            layout: if reference { Layout::Reference } else { Layout::Aligned },
            tensor_hash: hash,
            page_hashes: pages.then_some(64),
            max_shard_bytes: max_shard,
            ..Default::default()
        };
        write_model(&aero, specs(&ts), &opts).unwrap();

        let f = AeroFile::open(&aero).unwrap();
        let r = aero_io::validate(&f, Mode::Full, &|_| {});
        prop_assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.errors);
        prop_assert_eq!(f.index().unwrap().len(), ts.len());
        for t in &ts {
            let v = f.tensor(&t.name).unwrap();
            prop_assert_eq!(v.bytes(), &t.bytes[..]);
            prop_assert_eq!(&v.info().shape, &t.shape);
            prop_assert_eq!(v.info().dtype, t.dtype);
        }

        let st = dir.path().join("m.safetensors");
        aero_convert::safetensors::export_with(&aero, &st, &aero_io::CopyOptions { durable: false, ..Default::default() }).unwrap();
        let bytes = std::fs::read(&st).unwrap();
        let parsed = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        prop_assert_eq!(parsed.len(), ts.len());
        for t in &ts {
            let v = parsed.tensor(&t.name).unwrap();
            prop_assert_eq!(v.data(), &t.bytes[..]);
            let shape: Vec<u64> = v.shape().iter().map(|&d| d as u64).collect();
            prop_assert_eq!(shape, t.shape.clone());
        }

        // safetensors → AERO → safetensors reproduces the exported file.
        let aero2 = dir.path().join("m2.aero");
        // (In the aligned layout: the reference converter cannot write U32/U64,
        // so `--layout reference` refuses them.)
        let aligned = WriteOptions { layout: Layout::Aligned, ..opts.clone() };
        aero_convert::safetensors::import(&st, &aero2, &aligned).unwrap();
        let st2 = dir.path().join("m2.safetensors");
        aero_convert::safetensors::export_with(&aero2, &st2, &aero_io::CopyOptions { durable: false, ..Default::default() }).unwrap();
        prop_assert!(std::fs::read(&st2).unwrap() == bytes, "re-export differs");
    }
}
