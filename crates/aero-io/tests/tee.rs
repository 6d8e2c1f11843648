//! Verifying readers: a copy through them fails on any damaged weight byte.

mod common;

use std::io::Read;

use aero_io::AeroFile;
use common::golden;

fn read_all(f: &AeroFile) -> std::io::Result<Vec<Vec<u8>>> {
    let readers = aero_io::tee::verified_tensor_readers(f)
        .unwrap()
        .expect("tensors in offset order");
    let idx = f.index().unwrap();
    readers
        .into_iter()
        .zip(idx.tensors())
        .map(|(mut r, t)| {
            let mut v = vec![0u8; t.data_len as usize];
            let mut got = 0;
            while got < v.len() {
                let n = r.read(&mut v[got..])?;
                assert!(n > 0, "reader ended early");
                got += n;
            }
            Ok(v)
        })
        .collect()
}

#[test]
fn intact_files_stream_their_exact_bytes() {
    for name in [
        "mixed-single-shard.aero",
        "mixed-multishard.aero",
        "ihsh-phsh.aero",
    ] {
        let f = AeroFile::open(golden().join(name)).unwrap();
        let got = read_all(&f).unwrap();
        for (t, bytes) in f.index().unwrap().tensors().iter().zip(got) {
            assert_eq!(
                f.tensor(&t.name).unwrap().bytes(),
                bytes.as_slice(),
                "{name}/{}",
                t.name
            );
        }
    }
}

#[test]
fn every_damaged_weight_byte_is_caught() {
    let f = AeroFile::open(golden().join("tensor-hash-defect.aero")).unwrap();
    assert!(
        read_all(&f)
            .unwrap_err()
            .to_string()
            .contains("weights.shard0")
    );
    let orig = std::fs::read(golden().join("mixed-multishard.aero")).unwrap();
    let base = AeroFile::open(golden().join("mixed-multishard.aero")).unwrap();
    let shards: Vec<(u64, u64)> = base
        .chunks()
        .iter()
        .filter(|c| c.fourcc == aero_io::FourCc::WTSH)
        .map(|c| (c.offset, c.length))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.aero");
    let mut checked = 0;
    for (off, len) in shards {
        // Every byte of small shards; a sample of the large one.
        let step = (len / 512).max(1);
        for i in (0..len).step_by(step as usize) {
            let mut b = orig.clone();
            b[(off + i) as usize] ^= 0x40;
            std::fs::write(&p, &b).unwrap();
            let f = AeroFile::open(&p).unwrap();
            assert!(read_all(&f).is_err(), "flip at {} not caught", off + i);
            checked += 1;
        }
    }
    assert!(checked > 500);
}
