//! Tensor readers that verify their input while a copy streams.
//!
//! Rewriting a file (repack, export) must not copy damaged bytes, but a
//! separate verification pass reads every weight twice. These readers hash
//! each WTSH shard as its tensors stream past — the gaps between tensors
//! included — and fail the read at the end of the shard if its BLAKE3 does
//! not match the TOC. Writers are atomic, so a failure leaves nothing behind.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use crate::file::AeroFile;
use crate::index::TensorInfo;
use crate::source::SourceRef;

struct ShardState {
    hasher: blake3::Hasher,
    /// Shard-relative offset hashed so far.
    pos: u64,
}

struct Shard {
    name: String,
    offset: u64,
    length: u64,
    expected: Option<[u8; 32]>,
    state: Mutex<ShardState>,
}

/// Reads one tensor, hashing it (and the gap before it) into its shard's
/// state. Also an [`Observer`](crate::write::Observer), for writers that
/// stream the bytes from a mapping themselves.
pub(crate) struct TeeReader<'a> {
    src: SourceRef<'a>,
    shard: Arc<Shard>,
    start: u64,
    end: u64,
    pos: u64,
    last_in_shard: bool,
    started: bool,
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl TeeReader<'_> {
    fn lock(&self) -> io::Result<std::sync::MutexGuard<'_, ShardState>> {
        self.shard
            .state
            .lock()
            .map_err(|_| bad("shard state poisoned".into()))
    }

    /// Hashes the shard's bytes from where its state stands up to `to`
    /// (shard-relative) and returns the state, still locked.
    fn hash_up_to(&self, to: u64) -> io::Result<std::sync::MutexGuard<'_, ShardState>> {
        let mut st = self.lock()?;
        let from = st.pos;
        let hasher = &mut st.hasher;
        crate::verify::for_each_window(
            self.src,
            self.shard.offset + from,
            to - from,
            |w| {
                hasher.update(w);
            },
            |_| {},
        )?;
        st.pos = to;
        Ok(st)
    }

    fn begin(&mut self) -> io::Result<()> {
        if !self.started {
            self.started = true;
            drop(self.hash_up_to(self.start)?);
        }
        Ok(())
    }

    fn absorb(&mut self, block: &[u8]) -> io::Result<()> {
        // Locks the field, not `self` (`self.pos` moves below).
        let mut st = self
            .shard
            .state
            .lock()
            .map_err(|_| bad("shard state poisoned".into()))?;
        if block.len() >= 1 << 20 {
            st.hasher.update_rayon(block);
        } else {
            st.hasher.update(block);
        }
        self.pos += block.len() as u64;
        st.pos = self.pos;
        drop(st);
        if self.pos == self.end && self.last_in_shard {
            self.last_in_shard = false;
            self.finish_shard()?;
        }
        Ok(())
    }

    fn finish_shard(&self) -> io::Result<()> {
        let st = self.hash_up_to(self.shard.length)?;
        if let Some(want) = self.shard.expected
            && *st.hasher.finalize().as_bytes() != want
        {
            // Not this tensor's fault as far as anyone knows here: the
            // caller locates the damage (`AeroFile::locate_damage`).
            return Err(crate::error::ShardMismatch::io(&self.shard.name));
        }
        Ok(())
    }
}

impl Read for TeeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.begin()?;
        let n = (self.end - self.pos).min(buf.len() as u64) as usize;
        if n > 0 {
            let abs = self.shard.offset + self.pos;
            self.src.bytes().read_exact_at(abs, &mut buf[..n])?;
            self.absorb(&buf[..n])?;
        }
        Ok(n)
    }
}

impl crate::write::Observer for TeeReader<'_> {
    fn start(&mut self) -> io::Result<()> {
        self.begin()
    }
    fn bytes(&mut self, block: &[u8]) -> io::Result<()> {
        self.absorb(block)
    }
    fn end(&mut self) -> io::Result<()> {
        if self.pos != self.end {
            return Err(bad(format!(
                "{}: tensor bytes ended early",
                self.shard.name
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
/// Readers for every tensor of `f`, in TIDX order, that verify each weight
/// shard's BLAKE3 as the bytes go by (see the module docs). Returns `None`
/// when some shard's tensors are not in increasing, non-overlapping offset
/// order in the TIDX (then verify the file first with [`crate::validate()`]).
/// Shards holding no tensor are verified here, up front.
pub(crate) fn verified_tensor_readers(
    f: &AeroFile,
) -> crate::Result<Option<Vec<Box<dyn Read + Send + '_>>>> {
    let tensors = f.index()?.tensors();
    Ok(verifiers(f)?.map(|v| {
        v.into_iter()
            .zip(tensors)
            .map(|(tee, t)| match tee {
                Some(tee) => Box::new(tee) as Box<dyn Read + Send + '_>,
                None => f
                    .tensor_reader_unverified(t)
                    .unwrap_or_else(|_| Box::new(io::empty())),
            })
            .collect()
    }))
}

/// Like [`verified_tensor_readers`], but the verifying readers themselves (in
/// TIDX order; `None` for a tensor whose shard was verified up front), which
/// are also [`crate::write::Observer`]s.
pub(crate) fn verifiers(f: &AeroFile) -> crate::Result<Option<Vec<Option<TeeReader<'_>>>>> {
    let idx = f.index()?;
    let tensors: &[TensorInfo] = idx.tensors();
    let mut shards: std::collections::HashMap<u64, (Arc<Shard>, u64, usize)> =
        std::collections::HashMap::new();
    // Check ordering per shard and find each shard's last tensor.
    for (i, t) in tensors.iter().enumerate() {
        let (abs, _) = f.tensor_range(t)?;
        let chunk = f.shard(t.shard_id)?;
        let entry = shards.entry(t.shard_id).or_insert_with(|| {
            (
                Arc::new(Shard {
                    name: chunk.name.clone(),
                    offset: chunk.offset,
                    length: chunk.length,
                    expected: chunk.hash_recorded().then_some(chunk.blake3),
                    state: Mutex::new(ShardState {
                        hasher: blake3::Hasher::new(),
                        pos: 0,
                    }),
                }),
                0,
                i,
            )
        });
        let rel = abs - chunk.offset;
        if rel < entry.1 {
            return Ok(None);
        }
        entry.1 = rel + t.data_len;
        // Writers never read an empty tensor, so only a non-empty one can
        // close the shard.
        if t.data_len > 0 {
            entry.2 = i;
        }
    }
    // A shard whose tensors are all empty is verified up front, like an unused one.
    shards.retain(|_, (_, _, last)| tensors.get(*last).is_some_and(|t| t.data_len > 0));
    // Shards no tensor lives in still need checking.
    for c in f
        .chunks()
        .iter()
        .filter(|c| c.fourcc == aero_format::FourCc::WTSH)
    {
        let used = c
            .shard_id()
            .is_some_and(|id| shards.get(&id).is_some_and(|s| s.0.name == c.name));
        if !used && c.hash_recorded() {
            let h = crate::verify::hash_range(f.source_ref(), c.offset, c.length, |_| {})
                .map_err(|e| crate::Error::io(f.path(), e))?;
            if *h.as_bytes() != c.blake3 {
                return Err(crate::Error::HashMismatch {
                    path: f.path().to_path_buf(),
                    index: c.index,
                    fourcc: c.fourcc,
                    name: c.name.clone(),
                });
            }
        }
    }
    let mut out: Vec<Option<TeeReader<'_>>> = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        let Some((shard, _, last)) = shards.get(&t.shard_id) else {
            out.push(None);
            continue;
        };
        out.push(Some(TeeReader {
            src: f.source_ref(),
            shard: shard.clone(),
            start: t.data_off,
            end: t.data_off + t.data_len,
            pos: t.data_off,
            last_in_shard: *last == i,
            started: false,
        }));
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::path::PathBuf;

    use super::verified_tensor_readers;
    use crate::AeroFile;

    fn golden() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden")
    }

    fn read_all(f: &AeroFile) -> std::io::Result<Vec<Vec<u8>>> {
        let readers = verified_tensor_readers(f)
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
            .filter(|c| c.fourcc == crate::FourCc::WTSH)
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
}
