use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds little-endian bytes from whitespace-separated tokens:
/// `u8:N` `u32:N` `u64:N` (N may be `max`), `s:TEXT` (u64 length + bytes),
/// `x:HEX` (raw bytes), `pad:N` (N zeros), `hdr:VERSION,N_TENSORS,N_KV`
/// (magic + counts), `ti:NAME/D0xD1../TYPE/OFFSET` (one tensor info).
/// `S:`, `hdr32:` and `ti32:` are the same in the u32 layout (u32 counts,
/// lengths and dims).
fn g(spec: &str) -> Vec<u8> {
    let num = |s: &str| {
        s.replace("max", &u64::MAX.to_string())
            .parse::<u64>()
            .unwrap()
    };
    let mut out = Vec::new();
    for tok in spec.split_whitespace() {
        let (kind, arg) = tok.split_once(':').unwrap();
        let v: Vec<&str> = arg.split([',', '/']).collect();
        match kind {
            "u8" => out.push(num(arg) as u8),
            "u32" => out.extend((num(arg) as u32).to_le_bytes()),
            "u64" => out.extend(num(arg).to_le_bytes()),
            "s" | "S" => {
                let w = if kind == "s" { 64 } else { 32 };
                out.extend(
                    g(&format!("u{w}:{}", arg.len()))
                        .into_iter()
                        .chain(arg.bytes()),
                );
            }
            "x" => (0..arg.len()).step_by(2).for_each(|i| {
                out.push(u8::from_str_radix(&arg[i..i + 2], 16).unwrap());
            }),
            "pad" => out.resize(out.len() + num(arg) as usize, 0),
            "hdr" | "hdr32" => {
                let w = if kind == "hdr" { 64 } else { 32 };
                out.extend(g(&format!(
                    "x:47475546 u32:{} u{w}:{} u{w}:{}",
                    v[0], v[1], v[2]
                )))
            }
            "ti" | "ti32" => {
                let (w, s) = if kind == "ti" { (64, "s") } else { (32, "S") };
                let dims: Vec<_> = v[1].split('x').filter(|d| !d.is_empty()).collect();
                let n = dims.len();
                let dims: String = dims.iter().map(|d| format!(" u{w}:{d}")).collect();
                out.extend(g(&format!(
                    "{s}:{} u32:{n}{dims} u32:{} u64:{}",
                    v[0], v[2], v[3]
                )));
            }
            _ => panic!("bad token {tok}"),
        }
    }
    out
}

/// A hand-built v2 file (independent of the writer): alignment 16, a u16
/// array, a nested array, two tensors, zero padding and data.
fn v2_file() -> Vec<u8> {
    let kv = "s:general.alignment u32:4 u32:16 s:a u32:9 u32:2 u64:2 x:01000200";
    let nested = "s:n u32:9 u32:9 u64:2 u32:8 u64:1 s:x u32:8 u64:0";
    let mut v = g(&format!(
        "hdr:2,2,3 {kv} {nested} ti:t/4x2/0/0 ti:q/32/8/32 pad:6"
    ));
    v.extend((0..32 + 34).map(|i| i as u8));
    v
}

/// The same kind of file in the u32 layout (AERO.md §15's v2): scalars of
/// several types, a string, a string array, a nested array, two tensors.
fn v2_u32_file() -> Vec<u8> {
    let kv = "S:general.alignment u32:4 u32:16 S:general.name u32:8 S:tiny \
              S:i u32:1 x:f9 S:f u32:6 x:0000c03f S:b u32:7 u8:1 S:big u32:10 u64:max";
    let arrays = "S:toks u32:9 u32:8 u32:3 S:a S:bc S: \
                  S:n u32:9 u32:9 u32:2 u32:4 u32:2 u32:1 u32:2 u32:5 u32:0";
    let mut v = g(&format!(
        "hdr32:2,2,8 {kv} {arrays} ti32:t/4x2/0/0 ti32:q/32/8/32 pad:1"
    ));
    v.extend((0..32 + 34).map(|i| i as u8));
    v
}

fn roundtrip(bytes: &[u8]) -> GgufHeader {
    let h = parse(bytes).unwrap();
    let mut out = Vec::new();
    assert_eq!(write_header(&h, &mut out).unwrap(), h.data_offset);
    assert!(
        out == bytes[..h.data_offset as usize],
        "write(parse(x)) != header bytes of x"
    );
    h
}

fn array(elem_type: GgufValueType, items: Vec<GgufValue>) -> GgufValue {
    GgufValue::Array(GgufArray::new(elem_type, items))
}

#[test]
fn hand_built_v2() {
    use GgufValue as V;
    let f = v2_file();
    let h = roundtrip(&f);
    assert_eq!(
        (h.version, h.alignment, h.header_len, h.data_offset),
        (2, 16, 218, 224)
    );
    assert_eq!(
        h.get("a"),
        Some(&array(GgufValueType::U16, vec![V::U16(1), V::U16(2)]))
    );
    let n = array(GgufValueType::String, vec![V::String(b"x".to_vec())]);
    let n = array(
        GgufValueType::Array,
        vec![n, array(GgufValueType::String, vec![])],
    );
    assert_eq!(h.get("n"), Some(&n));
    assert_eq!((h.tensors[0].size, h.tensors[0].shape()), (32, vec![2, 4]));
    assert_eq!(
        (h.tensors[1].ggml_type.name, h.tensors[1].size),
        ("Q8_0", 34)
    );
    h.validate_against_len(f.len() as u64).unwrap();
    let e = h.validate_against_len(f.len() as u64 - 1).unwrap_err();
    assert!(matches!(&e, GgufError::OutOfBounds { tensor, end: 290, .. } if tensor == "q"));
    assert!(!h.counts_u32());
    truncations_and_flips(&f, 3000);
}

#[test]
fn hand_built_v2_u32_layout() {
    use GgufValue as V;
    use GgufValueType as T;
    let f = v2_u32_file();
    let h = roundtrip(&f);
    assert!(h.counts_u32());
    assert_eq!(
        (h.version, h.alignment, h.header_len, h.data_offset),
        (2, 16, 255, 256)
    );
    let keys: Vec<&str> = h.metadata.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "general.alignment",
            "general.name",
            "i",
            "f",
            "b",
            "big",
            "toks",
            "n"
        ]
    );
    assert_eq!(h.get("general.name").and_then(V::as_str), Some("tiny"));
    assert_eq!(h.get("i"), Some(&V::I8(-7)));
    assert_eq!(h.get("f"), Some(&V::F32(1.5)));
    assert_eq!(h.get("b"), Some(&V::Bool(true)));
    assert_eq!(h.get("big"), Some(&V::U64(u64::MAX)));
    let s = |x: &str| V::String(x.into());
    assert_eq!(
        h.get("toks"),
        Some(&array(T::String, vec![s("a"), s("bc"), s("")]))
    );
    let n = vec![
        array(T::U32, vec![V::U32(1), V::U32(2)]),
        array(T::I32, vec![]),
    ];
    assert_eq!(h.get("n"), Some(&array(T::Array, n)));
    let t = &h.tensors;
    assert_eq!((t[0].name.as_str(), &t[0].dims[..]), ("t", &[4, 2][..]));
    assert_eq!(
        (t[0].ggml_type.name, t[0].offset, t[0].size),
        ("F32", 0, 32)
    );
    assert_eq!((t[1].name.as_str(), &t[1].dims[..]), ("q", &[32][..]));
    assert_eq!(
        (t[1].ggml_type.name, t[1].offset, t[1].size),
        ("Q8_0", 32, 34)
    );
    h.validate_against_len(f.len() as u64).unwrap();
    assert!(h.validate_against_len(f.len() as u64 - 1).is_err());

    let (hr, rest) = parse_reader(&mut Dribble(&f), 1 << 20).unwrap();
    assert_eq!((hr, &rest[..]), (h.clone(), &f[256..]));
    truncations_and_flips(&f, 3000);

    // As v3 it is written (and read back) in the u64 layout.
    let mut h3 = h.clone();
    h3.version = 3;
    let mut out = Vec::new();
    write_header(&h3, &mut out).unwrap();
    let back = parse(&out).unwrap();
    assert_eq!(
        (back.metadata, back.tensors),
        (h.metadata.clone(), h.tensors.clone())
    );
    assert!(back.header_len > h.header_len);
    // A header built by hand (header_len 0) is written in the u64 layout.
    let mut h0 = h.clone();
    h0.header_len = 0;
    assert!(!h0.counts_u32());
    let mut out = Vec::new();
    write_header(&h0, &mut out).unwrap();
    let back = parse(&out).unwrap();
    assert!(!back.counts_u32());
    assert_eq!(back.metadata, h.metadata);
}

#[test]
fn v2_layout_choice() {
    // Both layouts need more: the smaller need (u32 wants its kv count).
    assert_eq!(need("x:47475546 u32:2 x:0000"), 12);
    // u64 reads a tensor count >= 2^32 and fails; u32 wants the kv bytes.
    assert_eq!(need("hdr32:2,0,1"), 16 + 9);
    // Both fail: the error of the layout that got further (here u32).
    fails(
        "hdr32:2,0,1 S:b u32:7 u8:2",
        &["bool", "key \"b\"", "offset 25"],
    );
    // A u64-layout file reads in the u32 layout as its tensor count and 0
    // kvs, which the u32 layout refuses: else these truncated or corrupt
    // u64 files would read as empty u32 headers.
    assert_eq!(need("hdr:2,0,1 s:k"), 37);
    fails(
        "hdr:2,0,1 s:b u32:7 u8:2",
        &["bool", "key \"b\"", "offset 37"],
    );
    assert_eq!(need("hdr32:2,0,0"), 24);
    // An empty u32-layout header with its zero padding reads as an empty
    // u64 one, and writes back the same bytes.
    let h = roundtrip(&g("hdr32:2,0,0 pad:16"));
    assert!(h.metadata.is_empty() && h.tensors.is_empty() && h.data_offset == 32);
    // v3 is u64 only.
    fails("hdr32:3,0,1 S:b u32:7 u8:1", &["tensor count", "offset 8"]);
    // Values that do not fit the u32 layout make the writer use u64.
    let mut h = parse(&v2_u32_file()).unwrap();
    h.tensors[0].dims = vec![1 << 32, 1];
    assert!(!h.counts_u32());
    let mut out = Vec::new();
    write_header(&h, &mut out).unwrap();
    assert_eq!(parse(&out).unwrap().tensors[0].dims, [1 << 32, 1]);
}

/// Every prefix shorter than the header asks for more (and never past the
/// header); random byte changes never panic, and what parses writes back.
fn truncations_and_flips(file: &[u8], flips: usize) {
    let h = parse(file).unwrap();
    for k in 0..h.header_len as usize {
        match parse(&file[..k]) {
            Err(GgufError::NeedMore { need }) => assert!(need > k as u64 && need <= h.header_len),
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
    for _ in 0..flips {
        let mut f = file.to_vec();
        for _ in 0..1 + rnd() % 4 {
            let i = (rnd() % h.data_offset.min(file.len() as u64)) as usize;
            f[i] = [f[i] ^ (1 << (rnd() % 8)), 0xFF, 0, rnd() as u8][(rnd() % 4) as usize];
        }
        if let Ok(h) = parse(&f) {
            let _ = h.validate_against_len(f.len() as u64);
            let (mut out, mut again) = (Vec::new(), Vec::new());
            write_header(&h, &mut out).unwrap();
            write_header(&parse(&out).unwrap(), &mut again).unwrap();
            assert_eq!(out, again);
        }
    }
}

/// Runs tests/fixtures/gen_gguf.py into a fresh temp dir; `None` (with a
/// note) if python3 or its `gguf` package is missing.
fn fixtures() -> Option<PathBuf> {
    let rel = "tests/fixtures/gen_gguf.py";
    let bases = [Path::new(env!("CARGO_MANIFEST_DIR")), Path::new(file!())];
    let mut found = bases
        .iter()
        .flat_map(|b| b.ancestors())
        .map(|a| a.join(rel));
    let script = found
        .find(|p| p.is_file())
        .expect("tests/fixtures/gen_gguf.py not found");
    let dir = std::env::temp_dir().join(format!("aero-gguf-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    match Command::new("python3").arg(&script).arg(&dir).output() {
        Ok(o) if o.status.success() => Some(dir),
        Ok(o) if o.status.code() == Some(3) => {
            println!(
                "note: skipping the gguf-py fixture test: python packages `numpy` or `gguf` missing"
            );
            None
        }
        Ok(o) => panic!("gen_gguf.py failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            println!("note: skipping the gguf-py fixture test: cannot run python3: {e}");
            None
        }
    }
}

/// Hands out at most 7 bytes per read, to exercise incremental reading.
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
        let h = roundtrip(&bytes);
        h.validate_against_len(bytes.len() as u64).unwrap();
        // What gguf-py says (see gen_gguf.py), as text lines.
        let mut want = vec![
            format!("version {}", h.version),
            format!("data_offset {}", h.data_offset),
        ];
        want.push(format!("file_len {}", bytes.len()));
        want.extend(
            h.metadata
                .iter()
                .map(|(k, v)| format!("kv {k} {}", v.value_type() as u32)),
        );
        for t in &h.tensors {
            let dims: Vec<String> = t.dims.iter().map(u64::to_string).collect();
            let (id, off, size) = (t.ggml_type.id, t.offset, t.size);
            want.push(format!(
                "tensor {} {id} {off} {size} {}",
                t.name,
                dims.join(",")
            ));
        }
        let expect = std::fs::read_to_string(dir.join(format!("{name}.expect"))).unwrap();
        assert_eq!(expect.lines().collect::<Vec<_>>(), want, "{name}");

        let (hr, rest) = parse_reader(&mut Dribble(&bytes), 1 << 20).unwrap();
        assert_eq!(hr, h);
        assert!(bytes[h.data_offset as usize..].starts_with(&rest));
        if name == "v3_all" {
            check_all_values(&h);
            truncations_and_flips(&bytes, 3000);
            let e = parse_reader(&mut Dribble(&bytes[..1000]), 1 << 20).unwrap_err();
            assert!(matches!(e, GgufError::Truncated { got: 1000, .. }), "{e}");
            let e = parse_reader(&mut Dribble(&bytes), 512).unwrap_err();
            assert!(
                matches!(e, GgufError::HeaderTooLarge { limit: 512, .. }),
                "{e}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn check_all_values(h: &GgufHeader) {
    use GgufValue as V;
    use GgufValueType as T;
    let want = [
        ("t.u8", V::U8(200)),
        ("t.i8", V::I8(-100)),
        ("t.u16", V::U16(60000)),
        ("t.i16", V::I16(-30000)),
        ("t.u32", V::U32(4_000_000_000)),
        ("t.i32", V::I32(-2_000_000_000)),
        ("t.f32", V::F32(1.5)),
        ("t.bool", V::Bool(true)),
        ("t.string", V::String("héllo wörld".into())),
        ("t.bytes_not_utf8", V::String(b"\xff\xfe<0x80>".to_vec())),
        ("t.u64", V::U64((1 << 63) + 5)),
        ("t.i64", V::I64(-(1 << 62))),
        ("t.f64", V::F64(-2.25e100)),
        (
            "t.arr.u64",
            array(T::U64, vec![V::U64(u64::MAX), V::U64(0)]),
        ),
        (
            "t.arr.bool",
            array(T::Bool, vec![V::Bool(true), V::Bool(false), V::Bool(true)]),
        ),
    ];
    for (k, v) in want {
        assert_eq!(h.get(k), Some(&v), "{k}");
    }
    assert_eq!(
        h.get("general.name").and_then(V::as_str),
        Some("fixture-model")
    );
    let s = |x: &str| V::String(x.into());
    let inner = [
        array(T::String, vec![s("x"), s("y")]),
        array(T::String, vec![s("z")]),
    ];
    let n3 = [
        array(T::Array, inner.to_vec()),
        array(T::Array, vec![array(T::String, vec![s("w")])]),
    ];
    assert_eq!(h.get("t.arr.nested3"), Some(&array(T::Array, n3.to_vec())));
    let t = h.tensors.iter().find(|t| t.name == "q6_k").unwrap();
    assert_eq!(
        (&t.dims[..], t.size, t.ggml_type.is_quantized()),
        (&[512, 2][..], 4 * 210, true)
    );
}

/// Parses `spec` (see [`g`]) expecting a final error whose message has every part.
fn fails(spec: &str, parts: &[&str]) {
    let e = parse(&g(spec)).unwrap_err();
    assert!(!matches!(e, GgufError::NeedMore { .. }), "{spec}: {e}");
    let msg = e.to_string();
    assert!(parts.iter().all(|p| msg.contains(p)), "{spec}: {msg}");
}

fn need(spec: &str) -> u64 {
    match parse(&g(spec)) {
        Err(GgufError::NeedMore { need }) => need,
        other => panic!("{spec}: {other:?}"),
    }
}

#[test]
fn hostile_headers_and_metadata() {
    fails("x:47474d4c u32:3", &["magic"]);
    fails("hdr:1,0,0", &["version 1", "v1"]);
    fails("x:47475546 x:00000003", &["big-endian"]);
    fails("hdr:4,0,0", &["version 4"]);
    fails(
        &format!("hdr:3,{},0", MAX_TENSORS + 1),
        &["tensor count", "offset 8"],
    );
    fails("hdr:3,0,max", &["kv count", "overflows"]);
    assert!(matches!(
        parse(&g("hdr:3,0,1099511627776")),
        Err(GgufError::HeaderTooLarge { .. })
    ));
    // Lengths over a cap are errors; under it but past the prefix, NeedMore.
    fails(
        &format!("hdr:3,0,1 u64:{} pad:8", MAX_KEY_LEN + 1),
        &["key #0", "offset 24", "cap"],
    );
    let big = format!("hdr:3,0,1 s:k u32:8 u64:{}", MAX_STRING_LEN + 1);
    fails(&big, &["string length", "key \"k\"", "offset 37"]);
    assert_eq!(need("hdr:3,0,1 s:k u32:8 u64:1000"), 1045);
    assert_eq!(
        need("hdr:3,0,1 s:k u32:9 u32:10 u64:67108864"),
        49 + (8 << 26)
    );
    fails(
        "hdr:3,0,1 s:k u32:9 u32:10 u64:max",
        &["array length", "overflows"],
    );
    fails(
        &format!("hdr:3,0,1 s:deep u32:9{}", " u32:9 u64:1".repeat(9)),
        &["nested deeper", "\"deep\""],
    );
    fails(
        "hdr:3,0,1 s:k u32:13",
        &["value type", "unknown type id 13"],
    );
    fails("hdr:3,0,1 s:k u32:9 u32:99 u64:0", &["array element type"]);
    fails("hdr:3,0,1 s:b u32:7 u8:2", &["bool", "offset 37"]);
    fails(
        "hdr:3,0,2 s:k u32:0 u8:1 s:k u32:0 u8:1",
        &["duplicate key"],
    );
    fails("hdr:3,0,1 u64:1 x:ff pad:8", &["key #0", "UTF-8"]);
    for bad in ["u32:4 u32:0", "u32:4 u32:48", "u32:10 u64:32"] {
        fails(
            &format!("hdr:3,0,1 s:general.alignment {bad}"),
            &["alignment"],
        );
    }
}

#[test]
fn hostile_tensor_infos() {
    let one = |ti: &str, parts: &[&str]| fails(&format!("hdr:3,1,0 ti:{ti}"), parts);
    one(
        "w/1x1x1x1x1/0/0",
        &["n_dims", "tensor \"w\"", "5 dimensions"],
    );
    one("w/4294967296x4294967296/0/0", &["dims", "overflows"]);
    one("w/4611686018427387904x2/0/0", &["overflows i64"]);
    one(
        "w/32/4/0",
        &["tensor \"w\"", "unknown ggml type id 4", "offset 45"],
    );
    one("w/32/42/0", &["id 42"]);
    one("w/48/2/0", &["not a multiple", "Q4_0", "32"]);
    one("w/2305843009213693952/28/0", &["byte size", "overflows"]);
    one("w/32/0/16", &["offset", "alignment 32"]);
    one("w/32/0/18446744073709551584", &["overflows"]);
    fails(
        "hdr:3,2,0 ti:w/1/0/0 ti:w/1/0/32",
        &["duplicate tensor name"],
    );
    fails("hdr:3,1,0 u64:2 x:c328 pad:30", &["tensor #0", "UTF-8"]);
    // Unknown types past the prefix are NeedMore; zero-element tensors are fine.
    assert_eq!(need("hdr:3,1,0"), 48);
    let h = parse(&g("hdr:3,1,0 ti:e/0x7/12/0")).unwrap();
    assert_eq!((h.tensors[0].size, h.data_offset), (0, 96));
    assert!(h.validate_against_len(40).is_err());
}

#[test]
fn writer_rejects_what_it_cannot_write() {
    let mut h = parse(&v2_file()).unwrap();
    let unwritable = |h: &GgufHeader| {
        matches!(
            write_header(h, &mut Vec::new()),
            Err(GgufError::Unwritable(_))
        )
    };
    h.metadata.push((
        "bad".into(),
        array(GgufValueType::U8, vec![GgufValue::I8(1)]),
    ));
    assert!(unwritable(&h));
    h.metadata.pop();
    h.alignment = 32;
    assert!(unwritable(&h));
    h.alignment = 16;
    h.tensors[0].dims = vec![1; 5];
    assert!(unwritable(&h));
    h.tensors[0].dims = vec![4, 2];
    h.version = 3;
    let mut out = Vec::new();
    write_header(&h, &mut out).unwrap();
    assert_eq!(parse(&out).unwrap(), h);
}
