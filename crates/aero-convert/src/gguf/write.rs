//! Writing a GGUF header back, byte for byte, in the layout it came from.

use super::*;

/// Writer that counts its bytes; `wide` picks the u64 layout (else u32).
pub(super) struct Out<'a, W: Write> {
    pub(super) w: &'a mut W,
    pub(super) pos: u64,
    pub(super) wide: bool,
}

impl<W: Write> Out<'_, W> {
    fn put(&mut self, b: &[u8]) -> Result<(), GgufError> {
        self.w.write_all(b)?;
        self.pos = self.pos.saturating_add(b.len() as u64);
        Ok(())
    }

    /// A count, length or dim: u64, or u32 in the u32 layout.
    fn len(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<(), GgufError> {
        if self.wide {
            return self.put(&n.to_le_bytes());
        }
        match u32::try_from(n) {
            Ok(n) => self.put(&n.to_le_bytes()),
            Err(_) => Err(GgufError::Unwritable(format!(
                "{} is {n}, too big for the u32 layout",
                what()
            ))),
        }
    }

    fn string(&mut self, s: &[u8], cap: u64, what: &str) -> Result<(), GgufError> {
        let len = s.len() as u64;
        if len > cap {
            return Err(GgufError::Unwritable(format!(
                "{what} is {len} bytes, over the cap of {cap}"
            )));
        }
        self.len(len, &|| format!("the length of {what}"))?;
        self.put(s)
    }

    fn value(&mut self, v: &GgufValue, depth: u32, key: &str) -> Result<(), GgufError> {
        match v {
            GgufValue::U8(x) => self.put(&x.to_le_bytes()),
            GgufValue::I8(x) => self.put(&x.to_le_bytes()),
            GgufValue::U16(x) => self.put(&x.to_le_bytes()),
            GgufValue::I16(x) => self.put(&x.to_le_bytes()),
            GgufValue::U32(x) => self.put(&x.to_le_bytes()),
            GgufValue::I32(x) => self.put(&x.to_le_bytes()),
            GgufValue::F32(x) => self.put(&x.to_bits().to_le_bytes()),
            GgufValue::Bool(x) => self.put(&[u8::from(*x)]),
            GgufValue::U64(x) => self.put(&x.to_le_bytes()),
            GgufValue::I64(x) => self.put(&x.to_le_bytes()),
            GgufValue::F64(x) => self.put(&x.to_bits().to_le_bytes()),
            GgufValue::String(s) => {
                self.string(s, MAX_STRING_LEN, &format!("a string of key {key:?}"))
            }
            GgufValue::Array(a) => {
                if depth >= MAX_DEPTH {
                    return Err(GgufError::Unwritable(format!(
                        "key {key:?}: arrays nested deeper than {MAX_DEPTH}"
                    )));
                }
                let values = match &a.items {
                    Items::Packed(_) => &[][..],
                    Items::Values(v) => v.as_slice(),
                };
                if values.iter().any(|i| i.value_type() != a.elem_type) {
                    return Err(GgufError::Unwritable(format!(
                        "key {key:?}: array items differ from {:?}",
                        a.elem_type
                    )));
                }
                self.put(&(a.elem_type as u32).to_le_bytes())?;
                let what = || format!("the length of an array of key {key:?}");
                self.len(a.len() as u64, &what)?;
                if let Items::Packed(b) = &a.items {
                    return self.put(b);
                }
                values
                    .iter()
                    .try_for_each(|i| self.value(i, depth.saturating_add(1), key))
            }
        }
    }
}

/// Writes magic, version, counts, key/values, tensor infos and zero padding
/// up to the alignment (taken from `general.alignment` in the metadata, which
/// must agree with `h.alignment`). Returns the bytes written, i.e. the data
/// section offset. For a file with zero padding, `write_header(parse(x))`
/// reproduces `x[..data_offset]`.
///
/// Version 3, and version 2 unless [`GgufHeader::counts_u32`] says so, are
/// written in the u64 layout; a v2 header parsed from a u32-layout file is
/// written in the u32 layout (where every count, length and dim must fit a
/// u32).
pub fn write_header<W: Write>(h: &GgufHeader, out: &mut W) -> Result<u64, GgufError> {
    if !matches!(h.version, 2 | 3) {
        return Err(GgufError::Unwritable(format!(
            "version {} (only 2 and 3 are supported)",
            h.version
        )));
    }
    let alignment = match h.get(ALIGNMENT_KEY) {
        None => DEFAULT_ALIGNMENT,
        Some(GgufValue::U32(a)) if valid_alignment((*a).into()) => (*a).into(),
        Some(v) => return Err(GgufError::Unwritable(format!("{ALIGNMENT_KEY} = {v:?}"))),
    };
    if alignment != h.alignment {
        return Err(GgufError::Unwritable(format!(
            "alignment {} disagrees with the metadata's {alignment}",
            h.alignment
        )));
    }
    let mut o = Out {
        w: out,
        pos: 0,
        wide: !h.counts_u32(),
    };
    write_body(h, &mut o)?;
    let end = align_up(o.pos, alignment).unwrap_or(o.pos);
    let pad = usize::try_from(end.saturating_sub(o.pos)).unwrap_or(0);
    o.put(&vec![0u8; pad])?; // pad < alignment <= MAX_ALIGNMENT
    Ok(o.pos)
}

/// Writes magic, version, counts, key/values and tensor infos in the layout
/// `o.wide` picks (no alignment checks, no padding).
pub(super) fn write_body<W: Write>(h: &GgufHeader, o: &mut Out<'_, W>) -> Result<(), GgufError> {
    o.put(&MAGIC)?;
    o.put(&h.version.to_le_bytes())?;
    o.len(h.tensors.len() as u64, &|| "the tensor count".into())?;
    o.len(h.metadata.len() as u64, &|| "the kv count".into())?;
    for (key, value) in &h.metadata {
        o.string(key.as_bytes(), MAX_KEY_LEN, &format!("key {key:?}"))?;
        o.put(&(value.value_type() as u32).to_le_bytes())?;
        o.value(value, 0, key)?;
    }
    for t in &h.tensors {
        o.string(
            t.name.as_bytes(),
            MAX_KEY_LEN,
            &format!("tensor name {:?}", t.name),
        )?;
        let n_dims = u32::try_from(t.dims.len()).ok().filter(|n| *n <= MAX_DIMS);
        let n_dims = n_dims.ok_or_else(|| {
            GgufError::Unwritable(format!("tensor {:?} has {} dims", t.name, t.dims.len()))
        })?;
        o.put(&n_dims.to_le_bytes())?;
        let what = || format!("a dim of tensor {:?}", t.name);
        t.dims.iter().try_for_each(|d| o.len(*d, &what))?;
        o.put(&t.ggml_type.id.to_le_bytes())?;
        o.put(&t.offset.to_le_bytes())?;
    }
    Ok(())
}
