//! IHSH and PHSH payloads decoded by aero-format alone (borrowing, no
//! allocation in the decoders): the reference writer's `ihsh-phsh.aero`
//! checks out byte for byte, and hostile payloads get a typed error naming
//! the field and offset — a declared count never outruns the bytes that
//! could hold it.

use aero_format::ihsh::{DigestInput, Ihsh};
use aero_format::names::{self, ShardName};
use aero_format::phsh::{self, PageSpan, Phsh};
use aero_format::{ControlPlane, Error, ErrorKind, Field, FourCc};

fn golden(name: &str) -> Vec<u8> {
    std::fs::read(aero_test_support::golden(name)).expect("golden file")
}

/// The payload of chunk `c` of `file` (IHSH and PHSH are stored raw).
fn payload<'a>(file: &'a [u8], c: &aero_format::ChunkRef<'_>) -> &'a [u8] {
    let at = c.entry.chunk_offset as usize;
    &file[at..at + c.entry.chunk_length as usize]
}

/// The reference writer's IHSH covers `[0, P)` and its digest is BLAKE3 of
/// the pieces `DigestInput` yields; each PHSH names its shard by the
/// standard name, holds one digest per page, and every page hashes to its
/// digest.
#[test]
fn the_reference_writers_ihsh_and_phsh_check_out() {
    let f = golden("ihsh-phsh.aero");
    let cp = ControlPlane::parse(&f, f.len() as u64).unwrap();
    let ihsh_chunk = cp.first(FourCc::IHSH).unwrap();
    assert_eq!(ihsh_chunk.name, names::CONTROL_INTEGRITY);
    let ihsh = Ihsh::parse(payload(&f, &ihsh_chunk)).unwrap();
    let p = cp.payload_start().unwrap();
    assert!(ihsh.covers_prologue(p));
    assert_eq!(ihsh.ranges().collect::<Vec<_>>(), [(0, p)]);
    let mut h = blake3::Hasher::new();
    for piece in DigestInput::new(&f[..p as usize], cp.header.toc_offset, cp.len()) {
        h.update(piece);
    }
    assert_eq!(*h.finalize().as_bytes(), ihsh.digest);
    // One TOC hash flipped outside the zeroed fields changes the digest.
    let mut g = f.clone();
    g[96 + 16 + 8] ^= 1;
    let mut h = blake3::Hasher::new();
    for piece in DigestInput::new(&g[..p as usize], cp.header.toc_offset, cp.len()) {
        h.update(piece);
    }
    assert_ne!(*h.finalize().as_bytes(), ihsh.digest);

    let mut checked = 0;
    for c in cp.entries().filter(|c| c.entry.fourcc == FourCc::PHSH) {
        let ph = Phsh::parse(payload(&f, &c)).unwrap();
        let id = names::parse_shard_name(c.name, true).unwrap();
        assert!(ShardName::weights(id).is(ph.shard_name));
        assert_eq!(names::shard_of_page_hashes(c.name), Some(ph.shard_name));
        let shard = cp.find(FourCc::WTSH, ph.shard_name).unwrap().unwrap();
        let len = shard.entry.chunk_length;
        assert!(ph.fits_shard(len));
        assert_eq!(
            ph.digests().len() as u64,
            phsh::page_count(len, ph.page_size)
        );
        let bytes = payload(&f, &shard);
        for (i, d) in (0u64..).zip(ph.digests()) {
            let (s, e) = phsh::page_range(i, ph.page_size, len).unwrap();
            assert_eq!(blake3::hash(&bytes[s as usize..e as usize]).as_bytes(), d);
        }
        // The pages covering the shard's last byte end at the shard's end.
        let span = PageSpan::covering(ph.page_size, len - 1, 1, len).unwrap();
        assert_eq!(span.end, len);
        assert_eq!(span.pages().end, phsh::page_count(len, ph.page_size));
        checked += 1;
    }
    assert_eq!(checked, 3);
}

/// A tiny MessagePack writer for hand-built payloads.
#[derive(Default)]
struct Mp(Vec<u8>);

impl Mp {
    fn map(&mut self, n: u8) -> &mut Self {
        self.0.push(0x80 | n);
        self
    }
    fn s(&mut self, s: &str) -> &mut Self {
        self.0.push(0xa0 | s.len() as u8);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn u(&mut self, v: u16) -> &mut Self {
        self.0.push(0xcd);
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn array32(&mut self, n: u32) -> &mut Self {
        self.0.push(0xdd);
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }
    fn bin(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&[0xc4, b.len() as u8]);
        self.0.extend_from_slice(b);
        self
    }
}

fn err(kind: ErrorKind, field: Field, offset: u64) -> Error {
    Error {
        kind,
        field,
        offset,
        index: None,
    }
}

/// Issue 11: a PHSH declaring 2^32-1 digests made `validate --full`
/// allocate 128 GiB; a count the bytes could hold at one byte each but not
/// at 34 is refused too, before any digest is read.
#[test]
fn a_phsh_digest_count_is_bounded_by_the_payload() {
    let mut m = Mp::default();
    m.map(3)
        .s("shard_name")
        .s("weights.shard0")
        .s("page_size")
        .u(4096);
    m.s("digests").array32(u32::MAX);
    let at = m.0.len() as u64;
    m.0.resize(m.0.len() + (70 << 10), 0xc0);
    // The reader refuses a count larger than the bytes left at all.
    let e = Phsh::parse(&m.0).unwrap_err();
    assert_eq!(
        e,
        err(
            ErrorKind::Truncated {
                need: u64::from(u32::MAX)
            },
            Field::PhshDigests,
            at
        )
    );
    let n = (70u32 << 10) / 2;
    let count_at = at as usize - 4;
    m.0[count_at..count_at + 4].copy_from_slice(&n.to_be_bytes());
    let e = Phsh::parse(&m.0).unwrap_err();
    assert_eq!(
        (e.kind, e.field),
        (
            ErrorKind::Truncated {
                need: at + u64::from(n) * 34
            },
            Field::PhshDigests
        )
    );
}

#[test]
fn an_ihsh_range_count_is_bounded_by_the_payload() {
    let mut m = Mp::default();
    m.map(1).s("covered_ranges").array32(100);
    let at = m.0.len() as u64;
    m.0.resize(m.0.len() + 200, 0x92);
    assert_eq!(
        Ihsh::parse(&m.0).unwrap_err(),
        err(
            ErrorKind::Truncated { need: at + 300 },
            Field::IhshRanges,
            at
        )
    );
}

/// Each malformed field is named, at the offset of its value.
#[test]
fn malformed_payloads_name_the_field() {
    let digest = [7u8; 32];
    let ihsh = |algo: &str, pair: &[u8], d: &[u8]| {
        let mut m = Mp::default();
        m.map(3).s("algo").s(algo).s("covered_ranges");
        m.0.push(0x91);
        m.0.extend_from_slice(pair);
        m.s("digest").bin(d);
        m.0
    };
    let good = ihsh("blake3-256", &[0x92, 0, 0xcd, 0x10, 0], &digest);
    let i = Ihsh::parse(&good).unwrap();
    assert_eq!(
        (i.ranges().collect::<Vec<_>>(), i.digest),
        (vec![(0, 4096)], digest)
    );
    // Padding after the map is ignored, as the reference pads to 256 bytes.
    let mut padded = good.clone();
    padded.resize(256, 0);
    assert_eq!(Ihsh::parse(&padded).unwrap(), i);

    let e = Ihsh::parse(&ihsh("sha-256", &[0x92, 0, 1], &digest)).unwrap_err();
    assert_eq!(e, err(ErrorKind::Unsupported, Field::IhshAlgo, 6));
    let e = Ihsh::parse(&ihsh("blake3-256", &[0x93, 0, 1, 2], &digest)).unwrap_err();
    assert_eq!(e, err(ErrorKind::BadValue(3), Field::IhshRanges, 33));
    let e = Ihsh::parse(&ihsh("blake3-256", &[0x92, 0, 1], &digest[..31])).unwrap_err();
    assert_eq!(e, err(ErrorKind::BadValue(31), Field::IhshDigest, 43));
    let mut m = Mp::default();
    m.map(1).s("algo").s("blake3-256");
    assert_eq!(
        Ihsh::parse(&m.0).unwrap_err(),
        err(ErrorKind::MissingKey, Field::IhshRanges, 0)
    );

    let phsh = |page_size: u16, d: &[u8]| {
        let mut m = Mp::default();
        m.map(3)
            .s("shard_name")
            .s("weights.shard0")
            .s("page_size")
            .u(page_size);
        m.s("digests").0.push(0x91);
        m.bin(d);
        m.0
    };
    let p = phsh(1024, &digest);
    let ph = Phsh::parse(&p).unwrap();
    assert_eq!(
        (
            ph.shard_name,
            ph.page_size,
            ph.digests().collect::<Vec<_>>()
        ),
        ("weights.shard0", 1024, vec![&digest])
    );
    let e = Phsh::parse(&phsh(0, &digest)).unwrap_err();
    assert_eq!(e, err(ErrorKind::BadValue(0), Field::PhshPageSize, 37));
    // Padded, so the count fits the bytes left; the digest itself is short.
    let mut short = phsh(1024, &digest[..5]);
    short.resize(short.len() + 40, 0);
    let e = Phsh::parse(&short).unwrap_err();
    assert_eq!(e, err(ErrorKind::BadValue(5), Field::PhshDigests, 49));
    let mut m = Mp::default();
    m.map(1).s("page_size").u(1);
    assert_eq!(
        Phsh::parse(&m.0).unwrap_err(),
        err(ErrorKind::MissingKey, Field::PhshShardName, 0)
    );
}
