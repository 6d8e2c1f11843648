//! Ranges larger than one 16 MiB window: hashing with overlapped mapping,
//! and the writer streaming a mapped file range, across window boundaries.

use std::io::Write;

use aero_io::stream::{MappedSource, Observer, TensorSpec, WriteOptions, write_model};
use aero_io::{AeroFile, DType, LocalSource, Mode, Verdict};

fn pattern(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Count(std::sync::Arc<std::sync::atomic::AtomicU64>);
impl Observer for Count {
    fn bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.0
            .fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

#[test]
fn multi_window_hashing_and_mapped_copies_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let len = 40 * (1 << 20) + 12345; // three windows, the last partial
    let data = pattern(len);
    let raw = dir.path().join("raw.bin");
    std::fs::File::create(&raw)
        .unwrap()
        .write_all(&data)
        .unwrap();
    let src = LocalSource::open(&raw).unwrap();
    // Hashing at an odd offset across windows.
    for (off, n) in [
        (0u64, len as u64),
        (7, len as u64 - 100),
        (16 << 20, 17 << 20),
    ] {
        let got = aero_io::verify::hash_range(&src, off, n, |_| {}).unwrap();
        assert_eq!(
            got,
            blake3::hash(&data[off as usize..(off + n) as usize]),
            "{off}+{n}"
        );
    }
    // The writer copies a mapped range of 40 MiB at an unaligned offset.
    let file = std::fs::File::open(&raw).unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let n = (len - 3) as u64;
    let spec = TensorSpec {
        name: "big".into(),
        dtype: DType::U8,
        shape: vec![n],
        data_len: n,
        extras: vec![],
        source: Box::new(std::io::empty()),
        mapped: Some(MappedSource {
            file: &file,
            offset: 3,
            observers: vec![Box::new(Count(seen.clone()))],
        }),
    };
    let out = dir.path().join("big.aero");
    let opts = WriteOptions {
        tensor_hash: true,
        page_hashes: Some(1 << 20),
        control_integrity: true,
        ..Default::default()
    };
    write_model(&out, vec![spec], &opts).unwrap();
    assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), n);
    let f = AeroFile::open(&out).unwrap();
    let r = aero_io::validate(&f, Mode::Full, &|_| {});
    assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.errors);
    assert!(r.pages.iter().all(|p| p.status == "verified"));
    assert!(f.tensor("big").unwrap().bytes() == &data[3..]);
}
