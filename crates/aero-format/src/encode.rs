//! Encoders: the bytes a writer produces, exactly as the reference emits them
//! (spec §1–§9, §11). Needs the `alloc` feature.
//!
//! MessagePack is written the reference's way: maps in the documented key
//! order, every integer in its smallest encoding, strings as `str`, digests
//! as `bin`. Every writer in the workspace builds its header, TOC and string
//! table with [`encode_prologue`], and its metadata payloads here, so the
//! bytes of the format are written in one place.

use alloc::string::String;
use alloc::vec::Vec;

use crate::fourcc::{ChunkFlags, FourCc};
use crate::layout::Prologue;
use crate::structs::{
    FILE_HEADER_LEN, FileHeader, MAGIC, TOC_ENTRY_LEN, TOC_HEADER_LEN, TocEntry, TocHeader,
};
use crate::{DType, limits};

// ---------------------------------------------------------------- MessagePack

/// Appends MessagePack to a byte vector in the smallest encodings.
#[derive(Debug, Default)]
pub struct MsgPack(pub Vec<u8>);

impl MsgPack {
    fn marker_len(&mut self, small: Option<u8>, n: u64, m8: Option<u8>, m16: u8, m32: u8) {
        match (small, m8) {
            (Some(base), _) if n < if base == 0xa0 { 32 } else { 16 } => {
                self.0.push(base | n as u8);
            }
            (_, Some(m)) if n <= 0xff => {
                self.0.push(m);
                self.0.push(n as u8);
            }
            _ if n <= 0xffff => {
                self.0.push(m16);
                self.0.extend_from_slice(&(n as u16).to_be_bytes());
            }
            _ => {
                self.0.push(m32);
                self.0
                    .extend_from_slice(&(n.min(u64::from(u32::MAX)) as u32).to_be_bytes());
            }
        }
    }

    /// A non-negative integer (positive fixint, uint 8/16/32/64).
    pub fn uint(&mut self, v: u64) -> &mut Self {
        if v < 0x80 {
            self.0.push(v as u8);
        } else if v <= 0xff {
            self.0.extend_from_slice(&[0xcc, v as u8]);
        } else if v <= 0xffff {
            self.0.push(0xcd);
            self.0.extend_from_slice(&(v as u16).to_be_bytes());
        } else if v <= 0xffff_ffff {
            self.0.push(0xce);
            self.0.extend_from_slice(&(v as u32).to_be_bytes());
        } else {
            self.0.push(0xcf);
            self.0.extend_from_slice(&v.to_be_bytes());
        }
        self
    }

    /// A UTF-8 string (fixstr, str 8/16/32).
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.marker_len(Some(0xa0), s.len() as u64, Some(0xd9), 0xda, 0xdb);
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    /// Binary data (bin 8/16/32).
    pub fn bin(&mut self, b: &[u8]) -> &mut Self {
        self.marker_len(None, b.len() as u64, Some(0xc4), 0xc5, 0xc6);
        self.0.extend_from_slice(b);
        self
    }

    /// A map header of `n` pairs (fixmap, map 16/32).
    pub fn map(&mut self, n: usize) -> &mut Self {
        self.marker_len(Some(0x80), n as u64, None, 0xde, 0xdf);
        self
    }

    /// An array header of `n` items (fixarray, array 16/32).
    pub fn array(&mut self, n: usize) -> &mut Self {
        self.marker_len(Some(0x90), n as u64, None, 0xdc, 0xdd);
        self
    }

    /// `true` or `false`.
    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.0.push(if b { 0xc3 } else { 0xc2 });
        self
    }

    /// Already-encoded MessagePack, copied as is.
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
}

// ---------------------------------------------------------------- prologue

/// The string table for these names (each followed by a NUL, padded to a
/// multiple of 8) and each name's `(name_off, name_len)`.
pub fn string_table<'a>(names: impl IntoIterator<Item = &'a str>) -> (Vec<u8>, Vec<(u32, u32)>) {
    let mut st = Vec::new();
    let mut refs = Vec::new();
    for n in names {
        refs.push((st.len() as u32, n.len() as u32));
        st.extend_from_slice(n.as_bytes());
        st.push(0);
    }
    let padded = crate::layout::align8(st.len() as u64).unwrap_or(st.len() as u64);
    st.resize(padded as usize, 0);
    (st, refs)
}

/// The standard file header of a writer's output with this prologue.
pub fn file_header(pro: &Prologue, uuid: [u8; 16]) -> FileHeader {
    FileHeader {
        magic: MAGIC,
        version_major: crate::VERSION.0,
        version_minor: crate::VERSION.1,
        header_size: FILE_HEADER_LEN as u32,
        toc_offset: pro.toc_offset,
        toc_length: pro.toc_length,
        string_table_offset: pro.string_table_offset,
        string_table_length: pro.string_table_length,
        file_flags: 0,
        uuid,
        reserved: [0; 28],
    }
}

/// Bytes `[0, payload_start)` of a file: header, TOC header, TOC entries
/// and string table at the offsets of `pro`, zeros between.
pub fn encode_prologue(
    pro: &Prologue,
    uuid: [u8; 16],
    entries: &[TocEntry],
    strtab: &[u8],
) -> Vec<u8> {
    let mut p = alloc::vec![0; pro.payload_start as usize];
    let mut put = |at: usize, bytes: &[u8]| {
        if let Some(dst) = p.get_mut(at..at.saturating_add(bytes.len())) {
            dst.copy_from_slice(bytes);
        }
    };
    put(0, &file_header(pro, uuid).encode());
    let toc = pro.toc_offset as usize;
    put(
        toc,
        &TocHeader {
            entry_count: entries.len() as u32,
            ..TocHeader::default()
        }
        .encode(),
    );
    let mut at = toc.saturating_add(TOC_HEADER_LEN);
    for e in entries {
        put(at, &e.encode());
        at = at.saturating_add(TOC_ENTRY_LEN);
    }
    put(pro.string_table_offset as usize, strtab);
    p
}

/// The flags the spec prescribes for a chunk type (§4).
pub const fn standard_flags(fourcc: FourCc) -> ChunkFlags {
    ChunkFlags(match fourcc {
        FourCc::MMSG => ChunkFlags::COMPRESSED,
        FourCc::TIDX => ChunkFlags::COMPRESSED | ChunkFlags::INDEX,
        FourCc::WTSH => ChunkFlags::MMAP_CRITICAL,
        FourCc::IHSH | FourCc::PHSH | FourCc::FILE => ChunkFlags::OPTIONAL,
        _ => 0,
    })
}

// ---------------------------------------------------------------- MMSG

/// One entry of the manifest's `chunks` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestChunk {
    /// Chunk type.
    pub fourcc: FourCc,
    /// TOC position.
    pub toc_index: u64,
    /// Shard id for WTSH and PHSH.
    pub shard_id: Option<u64>,
}

/// One entry of the manifest's `shards` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestShard {
    /// Shard id.
    pub shard_id: u64,
    /// TOC position of its WTSH.
    pub toc_index: u64,
    /// Payload size.
    pub size_bytes: u64,
    /// Tensors stored in it.
    pub tensor_count: u64,
}

/// Everything an MMSG payload says (spec §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Model name.
    pub model_name: String,
    /// Architecture.
    pub architecture: String,
    /// Chunks in TOC order.
    pub chunks: Vec<ManifestChunk>,
    /// One per WTSH.
    pub shards: Vec<ManifestShard>,
}

impl Manifest {
    /// Encodes the MMSG payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = MsgPack(Vec::with_capacity(
            self.chunks.len().saturating_mul(48).saturating_add(256),
        ));
        w.map(4).str("format").map(2).str("name").str("AERO");
        w.str("version").array(2).uint(0).uint(1);
        w.str("model").map(2);
        w.str("name").str(&self.model_name);
        w.str("architecture").str(&self.architecture);
        w.str("chunks").array(self.chunks.len());
        for c in &self.chunks {
            w.map(if c.shard_id.is_some() { 4 } else { 3 });
            w.str("role").str(c.fourcc.role());
            w.str("fourcc").str(c.fourcc.as_str().unwrap_or("????"));
            w.str("toc_index").uint(c.toc_index);
            if let Some(id) = c.shard_id {
                w.str("shard_id").uint(id);
            }
        }
        w.str("shards").array(self.shards.len());
        for sh in &self.shards {
            w.map(5);
            w.str("shard_id").uint(sh.shard_id);
            w.str("toc_index").uint(sh.toc_index);
            w.str("size_bytes").uint(sh.size_bytes);
            w.str("tensor_count").uint(sh.tensor_count);
            w.str("mmap_critical").bool(true);
        }
        w.0
    }
}

// ---------------------------------------------------------------- TIDX

/// One TIDX entry to encode, borrowed from whatever the writer holds.
#[derive(Clone, Copy, Debug)]
pub struct TensorEntry<'a> {
    /// Tensor name.
    pub name: &'a str,
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub shape: &'a [u64],
    /// WTSH shard id.
    pub shard_id: u64,
    /// Offset inside the shard.
    pub data_off: u64,
    /// Byte length.
    pub data_len: u64,
    /// Reserved flags.
    pub flags: u64,
    /// Extra keys (`quant_id`, `quant_params`, unknown ones) with their raw
    /// MessagePack values, written in this order after the standard keys.
    pub extras: &'a [(String, Vec<u8>)],
    /// BLAKE3 of the bytes, written last as 64 lowercase hex digits.
    pub hash_b3: Option<&'a [u8; 32]>,
}

/// Encodes a TIDX payload: `{"tensors": [...]}` with keys name, dtype,
/// shape, shard_id, data_off, data_len, flags, then the extras in their
/// order, then `hash_b3` (spec §5).
pub fn encode_tidx<'a>(tensors: impl ExactSizeIterator<Item = TensorEntry<'a>>) -> Vec<u8> {
    let mut w = MsgPack(Vec::with_capacity(
        tensors.len().saturating_mul(96).saturating_add(64),
    ));
    w.map(1).str("tensors").array(tensors.len());
    for t in tensors {
        w.map(
            t.extras
                .len()
                .saturating_add(7)
                .saturating_add(usize::from(t.hash_b3.is_some())),
        );
        w.str("name").str(t.name);
        w.str("dtype").uint(u64::from(t.dtype.code()));
        w.str("shape").array(t.shape.len());
        for &d in t.shape {
            w.uint(d);
        }
        w.str("shard_id").uint(t.shard_id);
        w.str("data_off").uint(t.data_off);
        w.str("data_len").uint(t.data_len);
        w.str("flags").uint(t.flags);
        for (k, v) in t.extras {
            w.str(k).raw(v);
        }
        if let Some(h) = t.hash_b3 {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            let digit = |n: u8| DIGITS.get(usize::from(n)).copied().unwrap_or(b'0');
            let mut hex = [0u8; 64];
            for (pair, b) in hex.chunks_exact_mut(2).zip(h) {
                pair.copy_from_slice(&[digit(b >> 4), digit(b & 0xf)]);
            }
            w.str("hash_b3")
                .str(core::str::from_utf8(&hex).unwrap_or_default());
        }
    }
    w.0
}

// ---------------------------------------------------------------- IHSH, PHSH

/// The 256-byte IHSH payload (spec §8): a digest over bytes `[0, p)`,
/// zero-padded.
pub fn encode_ihsh(p: u64, digest: &[u8; 32]) -> Vec<u8> {
    let mut w = MsgPack(Vec::with_capacity(limits::IHSH_PAYLOAD_LEN as usize));
    w.map(3).str("algo").str("blake3-256");
    w.str("covered_ranges").array(1).array(2).uint(0).uint(p);
    w.str("digest").bin(digest);
    w.0.resize(limits::IHSH_PAYLOAD_LEN as usize, 0);
    w.0
}

/// A PHSH payload (spec §9): the page digests of one shard.
pub fn encode_phsh(shard_name: &str, page_size: u64, digests: &[[u8; 32]]) -> Vec<u8> {
    let mut w = MsgPack(Vec::with_capacity(
        digests.len().saturating_mul(35).saturating_add(64),
    ));
    w.map(3).str("shard_name").str(shard_name);
    w.str("page_size").uint(page_size);
    w.str("digests").array(digests.len());
    for d in digests {
        w.bin(d);
    }
    w.0
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_lengths_take_their_smallest_encodings() {
        let mut w = MsgPack::default();
        for v in [
            0u64,
            127,
            128,
            255,
            256,
            65535,
            65536,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
        ] {
            w.uint(v);
        }
        assert_eq!(
            w.0,
            [
                &[
                    0x00, 0x7f, 0xcc, 0x80, 0xcc, 0xff, 0xcd, 0x01, 0x00, 0xcd, 0xff, 0xff
                ][..],
                &[0xce, 0x00, 0x01, 0x00, 0x00, 0xce, 0xff, 0xff, 0xff, 0xff],
                &[0xcf, 0, 0, 0, 1, 0, 0, 0, 0],
            ]
            .concat()
        );
        let len = |n: usize, f: fn(&mut MsgPack, usize)| {
            let mut w = MsgPack::default();
            f(&mut w, n);
            w.0
        };
        let s = |w: &mut MsgPack, n: usize| {
            w.str(&"x".repeat(n));
        };
        assert_eq!(len(31, s)[0], 0xbf);
        assert_eq!(&len(32, s)[..2], &[0xd9, 32]);
        assert_eq!(&len(256, s)[..3], &[0xda, 1, 0]);
        let m = |w: &mut MsgPack, n: usize| {
            w.map(n);
        };
        assert_eq!(len(15, m), [0x8f]);
        assert_eq!(len(16, m), [0xde, 0, 16]);
        let a = |w: &mut MsgPack, n: usize| {
            w.array(n);
        };
        assert_eq!(len(15, a), [0x9f]);
        assert_eq!(len(70000, a), [0xdd, 0, 1, 0x11, 0x70]);
        let b = |w: &mut MsgPack, n: usize| {
            w.bin(&alloc::vec![0; n]);
        };
        assert_eq!(&len(32, b)[..2], &[0xc4, 32]);
        assert_eq!(&len(300, b)[..3], &[0xc5, 1, 44]);
    }

    #[test]
    fn the_test_vector_prologue_round_trips() {
        let bytes = crate::testdata::TEST_VECTOR;
        let cp = crate::ControlPlane::parse(bytes, bytes.len() as u64).unwrap();
        let entries: Vec<TocEntry> = cp.entries().map(|c| c.entry).collect();
        let names: Vec<&str> = cp.entries().map(|c| c.name).collect();
        let (st, _) = string_table(names.iter().copied());
        let names_len: u64 = names.iter().map(|n| n.len() as u64 + 1).sum();
        let pro = Prologue::new(entries.len() as u64, names_len).unwrap();
        let p = encode_prologue(&pro, [0x11; 16], &entries, &st);
        assert_eq!(&bytes[..p.len()], &p[..]);
    }
}
