//! Builders for the hostile files of issue 11 ("Fuzzing for real"). Used by
//! the regression tests and by `cargo xtask fuzz-seeds`, which writes them to
//! `fuzz/regressions/` (so both reproduce the same defects).
#![allow(dead_code)]

use std::io::Write;

use aero_format::FourCc;
use aero_io::write::raw::{ChunkSpec, encode_chunks};

/// MessagePack string (fixstr / str8 / str16).
pub(crate) fn mstr(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    match b.len() {
        n if n < 32 => out.push(0xa0 | n as u8),
        n if n < 256 => out.extend_from_slice(&[0xd9, n as u8]),
        n => {
            out.push(0xda);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(b);
}

/// MessagePack unsigned integer in its smallest encoding.
pub(crate) fn muint(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=0x7f => out.push(v as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, v as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
        _ => {
            out.push(0xcf);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// MessagePack map header.
pub(crate) fn mmap(out: &mut Vec<u8>, n: u32) {
    match n {
        0..=15 => out.push(0x80 | n as u8),
        16..=0xffff => {
            out.push(0xde);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdf);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// MessagePack array header.
pub(crate) fn marr(out: &mut Vec<u8>, n: u32) {
    match n {
        0..=15 => out.push(0x90 | n as u8),
        16..=0xffff => {
            out.push(0xdc);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdd);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// A TIDX payload with one f32 tensor `w` of shape `[n]` at offset 0.
pub(crate) fn tidx_one(n: u64) -> Vec<u8> {
    let mut t = Vec::new();
    mmap(&mut t, 1);
    mstr(&mut t, "tensors");
    marr(&mut t, 1);
    mmap(&mut t, 7);
    mstr(&mut t, "name");
    mstr(&mut t, "w");
    mstr(&mut t, "dtype");
    muint(&mut t, 1);
    mstr(&mut t, "shape");
    marr(&mut t, 1);
    muint(&mut t, n);
    for (k, v) in [
        ("shard_id", 0),
        ("data_off", 0),
        ("data_len", 4 * n),
        ("flags", 0),
    ] {
        mstr(&mut t, k);
        muint(&mut t, v);
    }
    t
}

/// A valid small file: MJSN `meta`, TIDX with one f32 tensor of 4 values,
/// the shard, plus `extra` chunks.
pub(crate) fn file_with(meta: &str, extra: Vec<ChunkSpec>) -> Vec<u8> {
    let mut chunks = vec![
        ChunkSpec::standard(FourCc::MJSN, "meta.json", meta.as_bytes().to_vec()),
        ChunkSpec::standard(FourCc::TIDX, "tensors", tidx_one(4)),
        ChunkSpec::standard(
            FourCc::WTSH,
            "weights.shard0",
            [1.0f32, 2.0, 3.0, 4.0]
                .iter()
                .flat_map(|f| f.to_le_bytes())
                .collect(),
        ),
    ];
    chunks.extend(extra);
    encode_chunks([0x11; 16], &chunks).expect("encode")
}

/// Issue 11: an MMSG whose map key is a map, nested `depth` deep
/// (`{{{…{1: 2}…: 2}: 2}: 2}`). Converting it to JSON used to escape the
/// inner key's quotes again at every level: 2^depth bytes.
pub(crate) fn nested_map_key_mmsg(depth: usize) -> Vec<u8> {
    let mut m = Vec::new();
    for _ in 0..depth {
        mmap(&mut m, 1);
    }
    muint(&mut m, 1);
    for _ in 0..depth {
        muint(&mut m, 2);
    }
    file_with(
        r#"{"model_name":"x"}"#,
        vec![ChunkSpec::standard(FourCc::MMSG, "manifest", m)],
    )
}

/// zstd frame (content size recorded) of `head` followed by `zeros` zero
/// bytes, without holding the zeros in memory.
pub(crate) fn zstd_with_zeros(head: &[u8], zeros: u64) -> Vec<u8> {
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).expect("zstd");
    enc.include_contentsize(true).expect("zstd");
    enc.set_pledged_src_size(Some(head.len() as u64 + zeros))
        .expect("zstd");
    enc.write_all(head).expect("zstd");
    std::io::copy(&mut std::io::repeat(0).take(zeros), &mut enc).expect("zstd");
    enc.finish().expect("zstd")
}

use std::io::Read as _;

/// Replaces chunk `index`'s stored bytes (the last chunk of `file`, which
/// must be at its end) by `stored`, flagging it compressed with `ulen`.
/// The TOC hash is zeroed ("not recorded"), which a reader accepts.
pub(crate) fn replace_last_chunk(
    mut file: Vec<u8>,
    index: usize,
    stored: &[u8],
    ulen: u64,
) -> Vec<u8> {
    let e = 112 + 80 * index;
    let off = u64::from_le_bytes(file[e + 8..e + 16].try_into().unwrap()) as usize;
    file.truncate(off);
    file.extend_from_slice(stored);
    let flags = u32::from_le_bytes(file[e + 4..e + 8].try_into().unwrap()) | 1;
    file[e + 4..e + 8].copy_from_slice(&flags.to_le_bytes());
    file[e + 16..e + 24].copy_from_slice(&(stored.len() as u64).to_le_bytes());
    file[e + 24..e + 32].copy_from_slice(&ulen.to_le_bytes());
    file[e + 48..e + 80].fill(0);
    file
}

/// Issue 11: a compressed PHSH (the last chunk) that inflates to
/// `10 + 2^count_log2` bytes declaring 2^count_log2 digests: enough bytes for
/// a one-byte-per-digest check, and `32 × count` bytes of `Vec` once trusted.
/// `count_log2 = 27` is a 10 KiB file that asked for 4 GiB.
pub(crate) fn phsh_huge_count(count_log2: u32) -> Vec<u8> {
    let count = 1u64 << count_log2;
    let mut p = Vec::new();
    mmap(&mut p, 3);
    mstr(&mut p, "shard_name");
    mstr(&mut p, "weights.shard0");
    mstr(&mut p, "page_size");
    muint(&mut p, 4096);
    mstr(&mut p, "digests");
    marr(&mut p, count as u32);
    let ulen = p.len() as u64 + count;
    let stored = zstd_with_zeros(&p, count);
    let placeholder = ChunkSpec::standard(FourCc::PHSH, "weights.shard0.phsh", vec![0; 16]);
    let file = file_with(r#"{"model_name":"x"}"#, vec![placeholder]);
    replace_last_chunk(file, 3, &stored, ulen)
}

/// Issue 11: an MJSN (the last chunk) flagged compressed that inflates to
/// `ulen` bytes (`{}` then spaces): 65 KiB of it once became 2.1 GB.
pub(crate) fn mjsn_bomb(ulen: u64) -> Vec<u8> {
    let chunks = vec![
        ChunkSpec::standard(FourCc::TIDX, "tensors", tidx_one(0)),
        ChunkSpec::standard(FourCc::WTSH, "weights.shard0", Vec::new()),
        ChunkSpec::standard(FourCc::MJSN, "meta.json", b"{}".to_vec()),
    ];
    let file = encode_chunks([0x11; 16], &chunks).expect("encode");
    let stored = zstd_with_zeros(b"{}", ulen - 2);
    replace_last_chunk(file, 2, &stored, ulen)
}

/// A TIDX payload of `records` tensors, each with `extras` one-byte extra
/// keys of nil (`"\u{1}": nil` ...): 3 input bytes per extra, which an
/// owned index once turned into about 130 bytes.
pub(crate) fn tidx_many_extras(records: u32, extras: u32) -> Vec<u8> {
    let mut t = Vec::new();
    mmap(&mut t, 1);
    mstr(&mut t, "tensors");
    marr(&mut t, records);
    for i in 0..records {
        mmap(&mut t, 6 + extras);
        mstr(&mut t, "name");
        mstr(&mut t, &format!("t{i}"));
        mstr(&mut t, "dtype");
        muint(&mut t, 5);
        mstr(&mut t, "shape");
        marr(&mut t, 1);
        muint(&mut t, 0);
        for k in ["shard_id", "data_off", "data_len"] {
            mstr(&mut t, k);
            muint(&mut t, 0);
        }
        for _ in 0..extras {
            t.extend_from_slice(&[0xa1, b'x', 0xc0]);
        }
    }
    t
}

/// Issue 11: a compressed TIDX (the last chunk) whose records carry
/// thousands of tiny extra keys, inflating to about `ulen` bytes.
pub(crate) fn tidx_extras_bomb(records: u32, extras: u32) -> Vec<u8> {
    let payload = tidx_many_extras(records, extras);
    let chunks = vec![
        ChunkSpec::standard(FourCc::MJSN, "meta.json", b"{}".to_vec()),
        ChunkSpec::standard(FourCc::WTSH, "weights.shard0", Vec::new()),
        ChunkSpec::standard(FourCc::TIDX, "tensors", payload),
    ];
    encode_chunks([0x11; 16], &chunks).expect("encode")
}

/// A compressed MMSG (the last chunk) of `ulen` bytes: an array of nils,
/// the cheapest MessagePack per JSON value.
pub(crate) fn mmsg_nil_bomb(ulen: u64) -> Vec<u8> {
    let mut head = Vec::new();
    marr(&mut head, (ulen - 5) as u32);
    let file = file_with(
        r#"{"model_name":"x"}"#,
        vec![ChunkSpec::standard(FourCc::MMSG, "manifest", vec![0x80])],
    );
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).expect("zstd");
    enc.include_contentsize(true).expect("zstd");
    enc.set_pledged_src_size(Some(ulen)).expect("zstd");
    enc.write_all(&head).expect("zstd");
    std::io::copy(&mut std::io::repeat(0xc0).take(ulen - 5), &mut enc).expect("zstd");
    let stored = enc.finish().expect("zstd");
    replace_last_chunk(file, 3, &stored, ulen)
}

/// A compressed IHSH (the first chunk is not required: the reader takes
/// the first IHSH) inflating to `ulen` bytes of `covered_ranges` pairs.
pub(crate) fn ihsh_bomb(ulen: u64) -> Vec<u8> {
    let n = (ulen - 32) / 3;
    let mut head = Vec::new();
    mmap(&mut head, 1);
    mstr(&mut head, "covered_ranges");
    marr(&mut head, n as u32);
    let file = file_with(
        r#"{"model_name":"x"}"#,
        vec![ChunkSpec::standard(
            FourCc::IHSH,
            "control.integrity",
            vec![0; 256],
        )],
    );
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).expect("zstd");
    enc.include_contentsize(true).expect("zstd");
    let body = n * 3;
    enc.set_pledged_src_size(Some(head.len() as u64 + body))
        .expect("zstd");
    enc.write_all(&head).expect("zstd");
    let pair = [0x92u8, 0x00, 0x00];
    std::io::copy(
        &mut std::io::repeat(0)
            .take(0)
            .chain(PairReader { left: n, pair }),
        &mut enc,
    )
    .expect("zstd");
    let stored = enc.finish().expect("zstd");
    replace_last_chunk(file, 3, &stored, head.len() as u64 + body)
}

struct PairReader {
    left: u64,
    pair: [u8; 3],
}

impl std::io::Read for PairReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while self.left > 0 && n + 3 <= buf.len() {
            buf[n..n + 3].copy_from_slice(&self.pair);
            n += 3;
            self.left -= 1;
        }
        Ok(n)
    }
}

/// Issue 11: a valid file whose MJSN keeps `gguf.alignment = alignment`
/// (0 made `export-gguf` divide by zero; 2^31 made a 4 GiB GGUF).
pub(crate) fn gguf_alignment_aero(alignment: u64) -> Vec<u8> {
    let meta = format!(
        r#"{{"gguf":{{"alignment":{alignment},"metadata":[],"tensor_order":["w"],"version":3}},"model_name":"x"}}"#
    );
    file_with(&meta, Vec::new())
}

/// Issue 11: a valid file with a packed tensor (safetensors F8_E4M3,
/// shape `[4]`) whose data_len is 3, not 4: `export-safetensors` wrote a file
/// no safetensors reader accepts.
pub(crate) fn packed_len_mismatch_aero() -> Vec<u8> {
    let mut t = Vec::new();
    mmap(&mut t, 1);
    mstr(&mut t, "tensors");
    marr(&mut t, 1);
    mmap(&mut t, 9);
    mstr(&mut t, "name");
    mstr(&mut t, "w");
    mstr(&mut t, "dtype");
    muint(&mut t, 0x8000);
    mstr(&mut t, "shape");
    marr(&mut t, 1);
    muint(&mut t, 4);
    for (k, v) in [
        ("shard_id", 0),
        ("data_off", 0),
        ("data_len", 3),
        ("flags", 0),
    ] {
        mstr(&mut t, k);
        muint(&mut t, v);
    }
    mstr(&mut t, "quant_id");
    muint(&mut t, 0);
    mstr(&mut t, "quant_params");
    mmap(&mut t, 1);
    mstr(&mut t, "safetensors_dtype");
    mstr(&mut t, "F8_E4M3");
    let chunks = vec![
        ChunkSpec::standard(FourCc::MJSN, "meta.json", br#"{"model_name":"x"}"#.to_vec()),
        ChunkSpec::standard(FourCc::TIDX, "tensors", t),
        ChunkSpec::standard(FourCc::WTSH, "weights.shard0", vec![1, 2, 3]),
    ];
    encode_chunks([0x11; 16], &chunks).expect("encode")
}

/// Issue 11: a GGUF v3 file with one `u8` array of `n` items (key `a`) and
/// one f32 tensor `w` of 8 values: 16 MiB of it made `convert-gguf` peak
/// at 2.9 GB (32 bytes per parsed item, 72 per JSON item).
pub(crate) fn gguf_u8_array(n: u64) -> Vec<u8> {
    let mut g = Vec::new();
    g.extend_from_slice(b"GGUF");
    g.extend_from_slice(&3u32.to_le_bytes());
    g.extend_from_slice(&1u64.to_le_bytes()); // tensors
    g.extend_from_slice(&1u64.to_le_bytes()); // kvs
    g.extend_from_slice(&1u64.to_le_bytes());
    g.push(b'a');
    g.extend_from_slice(&9u32.to_le_bytes()); // array
    g.extend_from_slice(&0u32.to_le_bytes()); // of u8
    g.extend_from_slice(&n.to_le_bytes());
    g.extend((0..n).map(|i| (i % 251) as u8));
    g.extend_from_slice(&1u64.to_le_bytes());
    g.push(b'w');
    g.extend_from_slice(&1u32.to_le_bytes()); // n_dims
    g.extend_from_slice(&8u64.to_le_bytes());
    g.extend_from_slice(&0u32.to_le_bytes()); // F32
    g.extend_from_slice(&0u64.to_le_bytes()); // offset
    g.resize(g.len().div_ceil(32) * 32, 0);
    g.extend((0..8).flat_map(|i| (i as f32).to_le_bytes()));
    g
}
