use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Little-endian byte builder for hand-made GGUF files.
#[derive(Default, Clone)]
struct B(Vec<u8>);

impl B {
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn s(self, s: &str) -> Self {
        self.u64(s.len() as u64).raw(s.as_bytes())
    }
    fn head(version: u32, n_tensors: u64, n_kv: u64) -> Self {
        B::default().raw(b"GGUF").u32(version).u64(n_tensors).u64(n_kv)
    }
    /// One tensor info: name, dims, type, offset.
    fn ti(self, name: &str, dims: &[u64], ty: u32, off: u64) -> Self {
        let b = self.s(name).u32(dims.len() as u32);
        dims.iter().fold(b, |b, d| b.u64(*d)).u32(ty).u64(off)
    }
}

/// A hand-built v2 file (independent of the writer): alignment 16, a u16
/// array, a nested array, and two tensors, with zero padding and data.
fn v2_file() -> Vec<u8> {
    let b = B::head(2, 2, 3)
        .s("general.alignment").u32(4).u32(16)
        .s("a").u32(9).u32(2).u64(2).raw(&[1, 0, 2, 0])
        .s("n").u32(9).u32(9).u64(2).u32(8).u64(1).s("x").u32(8).u64(0)
        .ti("t", &[4, 2], 0, 0)
        .ti("q", &[32], 8, 32);
    let mut v = b.0;
    v.resize(v.len().next_multiple_of(16), 0);
    v.extend((0..32 + 34).map(|i| i as u8));
    v
}

fn roundtrip(bytes: &[u8]) -> GgufHeader {
    let h = parse(bytes).unwrap();
    let mut out = Vec::new();
    assert_eq!(write_header(&h, &mut out).unwrap(), h.data_offset);
    assert_eq!(out, bytes[..h.data_offset as usize], "write(parse(x)) != header bytes of x");
    h
}

#[test]
fn hand_built_v2() {
    let f = v2_file();
    let h = roundtrip(&f);
    assert_eq!((h.version, h.alignment, h.header_len, h.data_offset), (2, 16, 218, 224));
    let a = GgufValue::Array(GgufArray { elem_type: GgufValueType::U16, items: vec![GgufValue::U16(1), GgufValue::U16(2)] });
    assert_eq!(h.get("a"), Some(&a));
    let GgufValue::Array(n) = h.get("n").unwrap() else { panic!() };
    assert_eq!((n.elem_type, n.items.len()), (GgufValueType::Array, 2));
    assert_eq!(n.items[0], GgufValue::Array(GgufArray { elem_type: GgufValueType::String, items: vec![GgufValue::String(b"x".to_vec())] }));
    assert_eq!((h.tensors[0].size, h.tensors[0].shape()), (32, vec![2, 4]));
    assert_eq!((h.tensors[1].ggml_type.name, h.tensors[1].size), ("Q8_0", 34));
    h.validate_against_len(f.len() as u64).unwrap();
    let e = h.validate_against_len(f.len() as u64 - 1).unwrap_err();
    assert!(matches!(&e, GgufError::OutOfBounds { tensor, end: 290, .. } if tensor == "q"), "{e}");
    truncations_and_flips(&f, 3000);
}

/// Every prefix shorter than the header asks for more (and never past the
/// header); random byte changes never panic, and what parses writes back.
fn truncations_and_flips(file: &[u8], flips: usize) {
    let h = parse(file).unwrap();
    for k in 0..h.header_len as usize {
        match parse(&file[..k]) {
            Err(GgufError::NeedMore { need }) => assert!(need > k as u64 && need <= h.header_len, "{k}: {need}"),
            other => panic!("prefix {k}: {other:?}"),
        }
    }
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let span = (h.data_offset as usize).min(file.len());
    for _ in 0..flips {
        let mut f = file.to_vec();
        for _ in 0..1 + rnd() % 4 {
            let i = (rnd() as usize) % span;
            f[i] = match rnd() % 4 { 0 => f[i] ^ (1 << (rnd() % 8)), 1 => 0xFF, 2 => 0, _ => rnd() as u8 };
        }
        if let Ok(h) = parse(&f) {
            let _ = h.validate_against_len(f.len() as u64);
            let mut out = Vec::new();
            write_header(&h, &mut out).unwrap();
            let mut again = Vec::new();
            write_header(&parse(&out).unwrap(), &mut again).unwrap();
            assert_eq!(out, again);
        }
    }
}

fn find_generator() -> Option<PathBuf> {
    let rel = "tests/fixtures/gen_gguf.py";
    let bases = [Path::new(env!("CARGO_MANIFEST_DIR")), Path::new(file!())];
    bases.iter().flat_map(|b| b.ancestors()).map(|a| a.join(rel)).find(|p| p.is_file())
}

/// Runs gen_gguf.py into a fresh temp dir; `None` (with a note) if python3 or gguf is missing.
fn fixtures() -> Option<PathBuf> {
    let script = find_generator().expect("tests/fixtures/gen_gguf.py not found");
    let dir = std::env::temp_dir().join(format!("aero-gguf-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    match Command::new("python3").arg(&script).arg(&dir).output() {
        Ok(o) if o.status.success() => Some(dir),
        Ok(o) if o.status.code() == Some(3) => {
            println!("note: skipping GGUF fixture test, the python `gguf` package is missing");
            None
        }
        Ok(o) => panic!("gen_gguf.py failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            println!("note: skipping GGUF fixture test, cannot run python3: {e}");
            None
        }
    }
}

/// Reads one byte-limited chunk at a time, to exercise incremental reading.
struct Dribble<'a>(&'a [u8]);

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(7);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn gguf_py_fixtures() {
    let Some(dir) = fixtures() else { return };
    for name in ["v3_all", "v3_align64", "v3_empty", "v2_small"] {
        let bytes = std::fs::read(dir.join(format!("{name}.gguf"))).unwrap();
        let expect = std::fs::read_to_string(dir.join(format!("{name}.expect"))).unwrap();
        let h = roundtrip(&bytes);
        h.validate_against_len(bytes.len() as u64).unwrap();
        let (mut kvs, mut tensors) = (h.metadata.iter(), h.tensors.iter());
        for line in expect.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| w[i].parse::<u64>().unwrap();
            match w[0] {
                "version" => assert_eq!(u64::from(h.version), num(1)),
                "data_offset" => assert_eq!(h.data_offset, num(1)),
                "file_len" => assert_eq!(bytes.len() as u64, num(1)),
                "kv" => {
                    let (k, v) = kvs.next().unwrap();
                    assert_eq!((k.as_str(), v.value_type() as u64), (w[1], num(2)), "{name}");
                }
                "tensor" => {
                    let t = tensors.next().unwrap();
                    let dims: Vec<u64> = w[5].split(',').map(|d| d.parse().unwrap()).collect();
                    let got = (t.name.as_str(), u64::from(t.ggml_type.id), t.offset, t.size, &t.dims);
                    assert_eq!(got, (w[1], num(2), num(3), num(4), &dims), "{name}");
                }
                _ => panic!("bad expect line {line}"),
            }
        }
        assert!(kvs.next().is_none() && tensors.next().is_none(), "{name}: extra entries");
        let (hr, rest) = parse_reader(&mut Dribble(&bytes), 1 << 20).unwrap();
        assert_eq!(hr, h);
        assert!(bytes[h.data_offset as usize..].starts_with(&rest));
        if name == "v3_all" {
            check_all_values(&h);
            truncations_and_flips(&bytes, 3000);
            let e = parse_reader(&mut Dribble(&bytes[..1000]), 1 << 20).unwrap_err();
            assert!(matches!(e, GgufError::Truncated { got: 1000, .. }), "{e}");
            let e = parse_reader(&mut Dribble(&bytes), 512).unwrap_err();
            assert!(matches!(e, GgufError::HeaderTooLarge { limit: 512, .. }), "{e}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn check_all_values(h: &GgufHeader) {
    use GgufValue as V;
    let get = |k: &str| h.get(k).unwrap().clone();
    assert_eq!(get("t.u8"), V::U8(200));
    assert_eq!(get("t.i8"), V::I8(-100));
    assert_eq!(get("t.u16"), V::U16(60000));
    assert_eq!(get("t.i16"), V::I16(-30000));
    assert_eq!(get("t.u32"), V::U32(4_000_000_000));
    assert_eq!(get("t.i32"), V::I32(-2_000_000_000));
    assert_eq!(get("t.f32"), V::F32(1.5));
    assert_eq!(get("t.bool"), V::Bool(true));
    assert_eq!(get("t.string").as_str(), Some("héllo wörld"));
    assert_eq!(get("t.bytes_not_utf8"), V::String(b"\xff\xfe<0x80>".to_vec()));
    assert_eq!(get("t.u64"), V::U64((1 << 63) + 5));
    assert_eq!(get("t.i64"), V::I64(-(1 << 62)));
    assert_eq!(get("t.f64"), V::F64(-2.25e100));
    assert_eq!(h.get("general.name").and_then(V::as_str), Some("fixture-model"));
    let V::Array(a) = get("t.arr.u64") else { panic!() };
    assert_eq!(a.items, vec![V::U64(u64::MAX), V::U64(0)]);
    let V::Array(a) = get("t.arr.nested3") else { panic!() };
    let V::Array(inner) = &a.items[0] else { panic!() };
    assert_eq!((a.elem_type, inner.elem_type, inner.items.len()), (GgufValueType::Array, GgufValueType::Array, 2));
    let t = h.tensors.iter().find(|t| t.name == "q6_k").unwrap();
    assert_eq!((t.dims.as_slice(), t.size, t.ggml_type.is_quantized()), (&[512, 2][..], 4 * 210, true));
}

fn err(b: B) -> String {
    let e = parse(&b.0).unwrap_err();
    assert!(!matches!(e, GgufError::NeedMore { .. }), "{e}");
    e.to_string()
}

#[test]
fn hostile_inputs() {
    let has = |msg: String, parts: &[&str]| assert!(parts.iter().all(|p| msg.contains(p)), "{msg}");
    has(err(B::default().raw(b"GGML").u32(3)), &["magic"]);
    has(err(B::head(1, 0, 0)), &["version 1", "v1"]);
    has(err(B::default().raw(b"GGUF").u32(3 << 24)), &["big-endian"]);
    has(err(B::head(4, 0, 0)), &["version 4"]);
    has(err(B::head(3, MAX_TENSORS + 1, 0)), &["tensor count", "offset 8"]);
    assert!(matches!(parse(&B::head(3, 0, u64::MAX).0), Err(GgufError::Invalid { field: "kv count", .. })));
    let big_kv = parse(&B::head(3, 0, 1 << 40).0).unwrap_err();
    assert!(matches!(big_kv, GgufError::HeaderTooLarge { .. }), "{big_kv}");
    // Lengths: over the cap is an error; under it but past the prefix is NeedMore.
    has(err(B::head(3, 0, 1).u64(MAX_KEY_LEN + 1).raw(&[0; 8])), &["key #0", "offset 24", "cap"]);
    has(err(B::head(3, 0, 1).s("k").u32(8).u64(MAX_STRING_LEN + 1)), &["string length", "key \"k\"", "offset 37"]);
    let short = parse(&B::head(3, 0, 1).s("k").u32(8).u64(1000).0).unwrap_err();
    assert!(matches!(short, GgufError::NeedMore { need: 1045 }), "{short}");
    let arr = parse(&B::head(3, 0, 1).s("k").u32(9).u32(10).u64(1 << 26).0).unwrap_err();
    assert!(matches!(arr, GgufError::NeedMore { need } if need == 49 + (8 << 26)), "{arr}");
    has(err(B::head(3, 0, 1).s("k").u32(9).u32(10).u64(u64::MAX)), &["array length", "overflows"]);
    let nest = (0..9).fold(B::head(3, 0, 1).s("deep").u32(9), |b, _| b.u32(9).u64(1));
    has(err(nest), &["nested deeper", "key \"deep\""]);
    has(err(B::head(3, 0, 1).s("k").u32(13)), &["value type", "unknown type id 13"]);
    has(err(B::head(3, 0, 1).s("k").u32(9).u32(99).u64(0)), &["array element type"]);
    has(err(B::head(3, 0, 1).s("b").u32(7).raw(&[2])), &["bool", "offset 37"]);
    has(err(B::head(3, 0, 2).s("k").u32(0).raw(&[1]).s("k").u32(0).raw(&[1])), &["duplicate key"]);
    has(err(B::head(3, 0, 1).u64(1).raw(&[0xff; 9])), &["key #0", "UTF-8"]);
    for bad in [B::default().u32(4).u32(0), B::default().u32(4).u32(48), B::default().u32(10).u64(32)] {
        has(err(B::head(3, 0, 1).s(ALIGNMENT_KEY).raw(&bad.0)), &["alignment"]);
    }
    // Tensor infos.
    let one = |dims: &[u64], ty: u32, off: u64| err(B::head(3, 1, 0).ti("w", dims, ty, off));
    has(one(&[1, 1, 1, 1, 1], 0, 0), &["n_dims", "tensor \"w\"", "5 dimensions"]);
    has(one(&[1 << 32, 1 << 32], 0, 0), &["dims", "overflows"]);
    has(one(&[1 << 62, 4], 0, 0), &["overflows"]);
    has(one(&[32], 4, 0), &["tensor \"w\"", "unknown ggml type id 4", "offset 45"]);
    has(one(&[32], 42, 0), &["id 42"]);
    has(one(&[48], 2, 0), &["not a multiple", "Q4_0", "32"]);
    has(one(&[1 << 61], 28, 0), &["overflows"]);
    has(one(&[32], 0, 16), &["offset", "alignment 32"]);
    has(one(&[32], 0, u64::MAX - 31), &["overflows"]);
    has(err(B::head(3, 2, 0).ti("w", &[1], 0, 0).ti("w", &[1], 0, 32)), &["duplicate tensor name"]);
    has(err(B::head(3, 1, 0).u64(2).raw(&[0xc3, 0x28]).raw(&[0; 30])), &["tensor #0", "UTF-8"]);
    // An unknown type past the prefix is NeedMore, and a zero-element tensor is fine.
    assert!(matches!(parse(&B::head(3, 1, 0).0), Err(GgufError::NeedMore { need: 48 })));
    let h = parse(&B::head(3, 1, 0).ti("e", &[0, 7], 12, 0).0).unwrap();
    assert_eq!((h.tensors[0].size, h.data_offset), (0, 96));
    assert!(h.validate_against_len(40).is_err());
}

#[test]
fn writer_rejects_what_it_cannot_write() {
    let mut h = parse(&v2_file()).unwrap();
    let mut sink = Vec::new();
    h.metadata.push(("bad".into(), GgufValue::Array(GgufArray { elem_type: GgufValueType::U8, items: vec![GgufValue::I8(1)] })));
    assert!(matches!(write_header(&h, &mut sink), Err(GgufError::Unwritable(_))));
    h.metadata.pop();
    h.alignment = 32;
    assert!(matches!(write_header(&h, &mut sink), Err(GgufError::Unwritable(_))));
    h.alignment = 16;
    h.tensors[0].dims = vec![1; 5];
    assert!(matches!(write_header(&h, &mut sink), Err(GgufError::Unwritable(_))));
    h.tensors[0].dims = vec![4, 2];
    h.version = 3;
    let mut out = Vec::new();
    write_header(&h, &mut out).unwrap();
    assert_eq!(parse(&out).unwrap(), h);
}
