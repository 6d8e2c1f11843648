//! Errors callers branch on: a damaged input names the file, the tensor and
//! its shard; a failed tensor source names the input file once the caller
//! that opened it says which (`Error::in_input`).

use std::io::{self, Read};
use std::path::Path;

use aero_io::write::{TensorBytes, TensorSpec, WriteOptions, write_model};
use aero_io::{AeroFile, DType, Error, RepackOptions, repack};

fn spec(name: &str, bytes: TensorBytes<'static>, len: u64) -> TensorSpec<'static> {
    TensorSpec {
        name: name.into(),
        dtype: DType::U8,
        shape: vec![len],
        data_len: len,
        extras: Vec::new(),
        bytes,
    }
}

/// Three tensors of 4 KiB, one per shard.
fn three_shards(path: &Path) -> Vec<Vec<u8>> {
    let data: Vec<Vec<u8>> = (0..3)
        .map(|i| aero_test_support::bytes(i + 1, 4096))
        .collect();
    let specs = data
        .iter()
        .enumerate()
        .map(|(i, b)| {
            spec(
                &format!("t{i}"),
                TensorBytes::Reader(Box::new(io::Cursor::new(b.clone()))),
                4096,
            )
        })
        .collect();
    let opts = WriteOptions {
        max_shard_bytes: 4096,
        uuid: Some([3; 16]),
        ..WriteOptions::default()
    };
    write_model(path, specs, &opts).unwrap();
    data
}

#[test]
fn repack_of_a_damaged_tensor_names_file_tensor_and_shard() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.aero");
    let data = three_shards(&input);
    // Flip one byte of t1's data in the file.
    let f = AeroFile::open(&input).unwrap();
    let t1 = f.tensor_info("t1").unwrap().clone();
    let (start, _) = f.tensor_range(&t1).unwrap();
    drop(f);
    let mut bytes = std::fs::read(&input).unwrap();
    assert_eq!(&bytes[start as usize..start as usize + 16], &data[1][..16]);
    bytes[start as usize + 100] ^= 0x40;
    std::fs::write(&input, &bytes).unwrap();

    let f = AeroFile::open(&input).unwrap();
    let out = d.path().join("out.aero");
    let opts = RepackOptions {
        write: WriteOptions::default(),
        force: false,
        progress: &|_| {},
    };
    let e = repack(&f, &out, &opts).unwrap_err();
    match &e {
        Error::InputDamaged {
            path,
            tensor,
            shard,
            ..
        } => {
            assert_eq!(path, &input);
            assert_eq!(tensor.as_deref(), Some("t1"));
            assert_eq!(*shard, Some(t1.shard_id));
        }
        other => panic!("expected InputDamaged, got {other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "{}: input is damaged: tensor 't1' (shard {})",
            input.display(),
            t1.shard_id
        )),
        "{msg}"
    );
    assert!(!out.exists(), "nothing is written for a damaged input");
}

/// A source that fails after a few bytes.
struct Failing(usize);

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0 == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.0);
        buf[..n].fill(7);
        self.0 -= n;
        Ok(n)
    }
}

#[test]
fn a_failed_source_names_its_tensor_and_then_the_input_file() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out.aero");
    let specs = vec![spec("w", TensorBytes::Reader(Box::new(Failing(10))), 64)];
    let e = write_model(&out, specs, &WriteOptions::default()).unwrap_err();
    match &e {
        Error::Input {
            path: None, tensor, ..
        } => assert_eq!(tensor, "w"),
        other => panic!("expected Input without a path, got {other:?}"),
    }
    assert!(!out.exists());
    let named = e.in_input(Path::new("model.safetensors"));
    match &named {
        Error::Input {
            path: Some(p),
            tensor,
            source,
        } => {
            assert_eq!(p, Path::new("model.safetensors"));
            assert_eq!(tensor, "w");
            assert!(source.to_string().contains("disk on fire"));
        }
        other => panic!("expected Input with a path, got {other:?}"),
    }
    assert!(
        named
            .to_string()
            .starts_with("model.safetensors: while copying tensor 'w': "),
        "{named}"
    );
    // Naming the input leaves other errors alone.
    let other = Error::NoTensors.in_input(Path::new("x"));
    assert!(matches!(other, Error::NoTensors));
}
