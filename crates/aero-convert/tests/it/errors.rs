//! Converter errors name the file (and the tensor, when it is one tensor):
//! the typed fields, not only the message.

use aero_convert::{ConvertError, gguf_convert, safetensors as st};
use aero_io::DType;
use aero_io::write::{TensorBytes, TensorSpec, WriteOptions, write_model};

#[test]
fn a_safetensors_file_without_tensors_is_no_tensors_naming_it() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("empty.safetensors");
    aero_test_support::write_safetensors(&input, &[], None);
    let out = d.path().join("out.aero");
    let e = st::import(&input, &out, &WriteOptions::default()).unwrap_err();
    match &e {
        ConvertError::NoTensors { path, format } => {
            assert_eq!(path, &input);
            assert_eq!(*format, "safetensors");
        }
        other => panic!("expected NoTensors, got {other:?}"),
    }
    assert_eq!(
        e.to_string(),
        format!("{}: the safetensors file holds no tensors", input.display())
    );
    assert!(!out.exists());
}

#[test]
fn a_tensor_gguf_cannot_hold_is_unsupported_naming_file_and_tensor() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("m.aero");
    let bytes = vec![1u8; 16];
    let spec = |name: &str, dtype| TensorSpec {
        name: name.into(),
        dtype,
        shape: vec![2],
        data_len: 16,
        extras: Vec::new(),
        bytes: TensorBytes::Reader(Box::new(std::io::Cursor::new(bytes.clone()))),
    };
    write_model(
        &input,
        vec![spec("ok", DType::F64), spec("ids", DType::U64)],
        &WriteOptions::default(),
    )
    .unwrap();
    let out = d.path().join("m.gguf");
    let e = gguf_convert::export(&input, &out).unwrap_err();
    match &e {
        ConvertError::Unsupported { path, tensor, .. } => {
            assert_eq!(path, &input);
            assert_eq!(tensor.as_deref(), Some("ids"));
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{}: tensor 'ids': ", input.display())),
        "{msg}"
    );
    // Refused before anything was created: only the input is there.
    assert_eq!(aero_test_support::leftovers(d.path()), Vec::<String>::new());
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
}
