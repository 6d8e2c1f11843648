//! The prologue step of [`super::write_to`]: once every payload is placed,
//! the header, TOC and string table are written at offset 0, and the IHSH
//! digest over them (spec §8) is patched into its placeholder.

use std::io::{Seek, SeekFrom, Write};

use aero_format::TocEntry;

use super::out::Out;
use super::place::{FilePlan, Toc};
use crate::error::{Error, Result};
use crate::integrity::{control_digest, encode_ihsh};

/// Writes the prologue of `plan` with `toc`'s entries, IHSH first.
pub(super) fn finish(out: Out<'_>, plan: &FilePlan, uuid: [u8; 16], toc: &mut Toc) -> Result<()> {
    let path = out.path;
    let io = |e| Error::io(path, e);
    let pro = &plan.prologue;
    let build = |entries: &[TocEntry]| {
        aero_format::encode::encode_prologue(pro, uuid, entries, &plan.strtab)
    };
    let w = out.w.into_inner().map_err(|e| io(e.into_error()))?;
    if let Some(i) = plan.chunks.ihsh {
        let count = toc.entries.len() as u32;
        let digest = control_digest(&build(&toc.entries), pro.toc_offset, count);
        let payload = encode_ihsh(pro.payload_start, &digest);
        toc.entries[i].blake3 = *blake3::hash(&payload).as_bytes();
        w.seek(SeekFrom::Start(toc.entries[i].chunk_offset))
            .map_err(io)?;
        w.write_all(&payload).map_err(io)?;
    }
    w.seek(SeekFrom::Start(0)).map_err(io)?;
    w.write_all(&build(&toc.entries)).map_err(io)?;
    w.flush().map_err(io)?;
    Ok(())
}
