//! The borrowing TIDX iterator and the owned index on an uncompressed
//! payload: every field, shape and extra key is visited.
#![no_main]
use aero_format::tidx::TensorIter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(it) = TensorIter::new(data) {
        let declared = it.declared_len();
        let mut n = 0u32;
        for rec in it {
            let Ok(t) = rec else { break };
            n += 1;
            let dims: Vec<u64> = t.shape.iter().map(|d| d.expect("validated dim")).collect();
            assert_eq!(dims.len() as u32, t.shape.rank());
            let _ = (t.shape.elements(), t.expected_len(), t.data_end());
            for (k, v) in t.extras() {
                assert!(!aero_format::tidx::KNOWN_KEYS.contains(&k));
                let _ = aero_io::meta::msgpack_to_json(v);
            }
            let _ = (t.dtype.name(), t.hash_b3, t.quant_id, t.flags, t.name.len());
        }
        assert!(n <= declared);
    }
    if let Ok(idx) = aero_io::TensorIndex::decode(data) {
        for t in idx.tensors() {
            assert!(idx.get(&t.name).is_some());
            let _ = (t.expected_len(), t.extras_json());
        }
        // Re-encoding what was decoded gives an index that decodes the same.
        let again = aero_io::write::raw::encode_tidx(idx.tensors().iter());
        let back = aero_io::TensorIndex::decode(&again).expect("re-encoded TIDX decodes");
        assert_eq!(back.tensors(), idx.tensors());
    }
});
