//! One test per [`ErrorKind`], in the style of gimli's tests: each builds the
//! smallest input that triggers it and asserts the kind, the field and the
//! offset (and the entry index where one applies).

use aero_format::msgpack::Reader;
use aero_format::tidx::TensorIter;
use aero_format::{ControlPlane, Error, ErrorKind, Field, FileHeader, TocEntry, TocHeader};

/// A well-formed file: header, a TOC with one entry named `name`, the
/// string table at 192 (8 bytes) and a 16-byte payload at 208.
fn file(name: &[u8]) -> Vec<u8> {
    let h = FileHeader {
        magic: *b"AERO",
        version_major: 0,
        version_minor: 1,
        header_size: 96,
        toc_offset: 96,
        toc_length: 96,
        string_table_offset: 192,
        string_table_length: 8,
        file_flags: 0,
        uuid: [0; 16],
        reserved: [0; 28],
    };
    let mut f = h.encode().to_vec();
    f.extend_from_slice(
        &TocHeader {
            entry_count: 1,
            ..Default::default()
        }
        .encode(),
    );
    let e = TocEntry {
        fourcc: aero_format::FourCc::MJSN,
        flags: aero_format::ChunkFlags(0),
        chunk_offset: 208,
        chunk_length: 16,
        chunk_ulen: 16,
        name_off: 0,
        name_len: name.len() as u32,
        reserved0: 0,
        blake3: [0; 32],
    };
    f.extend_from_slice(&e.encode());
    let mut st = name.to_vec();
    st.resize(8, 0);
    f.extend_from_slice(&st);
    f.resize(208, 0);
    f.extend_from_slice(&[b' '; 16]);
    assert_eq!(f.len(), 224);
    f
}

fn parse(f: &[u8]) -> Error {
    ControlPlane::parse(f, f.len() as u64).expect_err("must fail")
}

fn at(kind: ErrorKind, field: Field, offset: u64) -> Error {
    Error {
        kind,
        field,
        offset,
        index: None,
    }
}

#[test]
fn well_formed_file_parses() {
    let f = file(b"meta.js");
    let cp = ControlPlane::parse(&f, f.len() as u64).unwrap();
    assert_eq!(cp.get(0).unwrap().name, "meta.js");
}

#[test]
fn truncated() {
    assert_eq!(
        parse(&[0u8; 10]),
        at(ErrorKind::Truncated { need: 96 }, Field::Magic, 0)
    );
    // A map header promising a string that is not there.
    let e = Reader::new(&[0xa5, b'a']).next(Field::MsgPack).unwrap_err();
    assert_eq!(e, at(ErrorKind::Truncated { need: 6 }, Field::MsgPack, 1));
}

#[test]
fn bad_magic() {
    let mut f = file(b"a");
    f[0] = b'X';
    assert_eq!(
        parse(&f),
        at(ErrorKind::BadMagic(*b"XERO"), Field::Magic, 0)
    );
}

#[test]
fn unsupported_version() {
    let mut f = file(b"a");
    f[4] = 1;
    assert_eq!(
        parse(&f),
        at(
            ErrorKind::UnsupportedVersion { major: 1, minor: 1 },
            Field::Version,
            4
        )
    );
}

#[test]
fn bad_value() {
    let mut f = file(b"a");
    f[8] = 95;
    assert_eq!(parse(&f), at(ErrorKind::BadValue(95), Field::HeaderSize, 8));
    let mut f = file(b"a");
    f[44] = 1;
    assert_eq!(parse(&f), at(ErrorKind::BadValue(1), Field::FileFlags, 44));
}

#[test]
fn out_of_bounds() {
    let mut f = file(b"a");
    f[20..28].copy_from_slice(&1000u64.to_le_bytes());
    assert_eq!(
        parse(&f),
        at(
            ErrorKind::OutOfBounds {
                offset: 96,
                length: 1000,
                limit: 224
            },
            Field::TocLength,
            20
        )
    );
    // A chunk past the end: the entry's offset field, with its index.
    let mut f = file(b"a");
    f[112 + 8..112 + 16].copy_from_slice(&220u64.to_le_bytes());
    let mut want = at(
        ErrorKind::OutOfBounds {
            offset: 220,
            length: 16,
            limit: 224,
        },
        Field::ChunkRange,
        112 + 8,
    );
    want.index = Some(0);
    assert_eq!(parse(&f), want);
}

#[test]
fn limit_exceeded() {
    let mut f = file(b"a");
    f[36..44].copy_from_slice(&(513u64 << 20).to_le_bytes());
    assert_eq!(
        parse(&f),
        at(
            ErrorKind::LimitExceeded {
                value: 513 << 20,
                limit: 512 << 20
            },
            Field::StringTableLength,
            36
        )
    );
}

#[test]
fn invalid_utf8() {
    let f = file(&[0xff, 0xfe]);
    let mut want = at(ErrorKind::InvalidUtf8, Field::ChunkName, 112 + 32);
    want.index = Some(0);
    assert_eq!(parse(&f), want);
}

#[test]
fn wrong_type() {
    // The TIDX must be a map; this is an empty array.
    let e = TensorIter::new(&[0x90]).unwrap_err();
    assert_eq!(e, at(ErrorKind::WrongType, Field::Tidx, 0));
}

#[test]
fn missing_key() {
    // {} has no `tensors`.
    let e = TensorIter::new(&[0x80]).unwrap_err();
    assert_eq!(e, at(ErrorKind::MissingKey, Field::Tensors, 0));
    // A tensor without `dtype`: reported at the start of its map.
    let mut t = vec![0x81, 0xa7];
    t.extend_from_slice(b"tensors");
    t.extend_from_slice(&[0x91, 0x81, 0xa4]);
    t.extend_from_slice(b"name");
    t.extend_from_slice(&[0xa1, b'w']);
    let e = TensorIter::new(&t).unwrap().next().unwrap().unwrap_err();
    let mut want = at(ErrorKind::MissingKey, Field::TensorDtype, 10);
    want.index = Some(0);
    assert_eq!(e, want);
}

#[test]
fn duplicate_key() {
    // {"tensors": [{"name": "w", "name": ...}]}: found after the second key.
    let mut t = vec![0x81, 0xa7];
    t.extend_from_slice(b"tensors");
    t.extend_from_slice(&[0x91, 0x82, 0xa4]);
    t.extend_from_slice(b"name");
    t.extend_from_slice(&[0xa1, b'w', 0xa4]);
    t.extend_from_slice(b"name");
    t.extend_from_slice(&[0xa1, b'v']);
    let e = TensorIter::new(&t).unwrap().next().unwrap().unwrap_err();
    let mut want = at(ErrorKind::DuplicateKey, Field::TensorName, 23);
    want.index = Some(0);
    assert_eq!(e, want);
}

#[test]
fn too_deep() {
    // 64 nested one-element arrays are fine; the 65th is reported where it starts.
    let mut ok = vec![0x91; 64];
    ok.push(0xc0);
    assert_eq!(Reader::new(&ok).skip(Field::MsgPack).unwrap().len(), 65);
    let mut deep = vec![0x91; 65];
    deep.push(0xc0);
    let e = Reader::new(&deep).skip(Field::MsgPack).unwrap_err();
    assert_eq!(e, at(ErrorKind::TooDeep, Field::MsgPack, 64));
}

#[test]
fn bad_hex() {
    let mut t = vec![0x81, 0xa7];
    t.extend_from_slice(b"tensors");
    t.extend_from_slice(&[0x91, 0x81, 0xa7]);
    t.extend_from_slice(b"hash_b3");
    t.extend_from_slice(&[0xd9, 64]);
    t.extend_from_slice(&[b'z'; 64]);
    let e = TensorIter::new(&t).unwrap().next().unwrap().unwrap_err();
    let mut want = at(ErrorKind::BadHex, Field::TensorHash, 19);
    want.index = Some(0);
    assert_eq!(e, want);
}

#[test]
fn unsupported() {
    // {"algo": "md5"}: an IHSH digest algorithm other than blake3-256,
    // reported at the value.
    let mut p = vec![0x81, 0xa4];
    p.extend_from_slice(b"algo");
    p.push(0xa3);
    p.extend_from_slice(b"md5");
    let e = aero_format::ihsh::Ihsh::parse(&p).unwrap_err();
    assert_eq!(e, at(ErrorKind::Unsupported, Field::IhshAlgo, 6));
}
