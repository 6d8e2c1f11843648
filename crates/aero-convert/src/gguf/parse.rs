//! Parsing a GGUF header from a byte prefix or a reader (see the module
//! docs of [`super`] for the two v2 layouts and the caps).

use super::*;

/// Cursor over the prefix; every read past its end is `NeedMore`. `ctx`
/// names what is being read (`header`, `key "…"`, `tensor "…"`) for errors;
/// `wide` picks the u64 layout for counts, lengths and dims (else u32).
struct Cur<'a> {
    buf: &'a [u8],
    pos: u64,
    ctx: String,
    wide: bool,
}

impl<'a> Cur<'a> {
    /// Demands that `n` more bytes be available; returns their end.
    fn need(&self, n: u64) -> Result<u64, GgufError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= MAX_HEADER_BYTES);
        let need = self.pos.saturating_add(n);
        let end = end.ok_or(GgufError::HeaderTooLarge {
            need,
            limit: MAX_HEADER_BYTES,
        })?;
        if end > self.buf.len() as u64 {
            return Err(GgufError::NeedMore { need: end });
        }
        Ok(end)
    }

    fn bytes(&mut self, n: u64) -> Result<&'a [u8], GgufError> {
        let end = self.need(n)?;
        let range = usize::try_from(self.pos)
            .ok()
            .zip(usize::try_from(end).ok());
        let s = range.and_then(|(a, b)| self.buf.get(a..b));
        self.pos = end;
        s.ok_or(GgufError::NeedMore { need: end })
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let s = self.bytes(N as u64)?.first_chunk::<N>().copied();
        s.ok_or(GgufError::NeedMore { need: self.pos })
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        self.arr().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        self.arr().map(u64::from_le_bytes)
    }

    /// A count or length: u64, or u32 in the u32 layout.
    fn len(&mut self) -> Result<u64, GgufError> {
        if self.wide {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    /// A length (see [`Self::len`]), at most `cap`, then that many bytes.
    fn string(&mut self, cap: u64, field: &'static str) -> Result<&'a [u8], GgufError> {
        let at = self.pos;
        let len = self.len()?;
        if len > cap {
            let why = format!("length {len} exceeds the cap of {cap} bytes");
            bail!(field, self.ctx, at, why);
        }
        self.bytes(len)
    }

    /// A key or tensor name: UTF-8, at most `MAX_KEY_LEN` bytes.
    fn name(&mut self, field: &'static str) -> Result<String, GgufError> {
        let at = self.pos;
        match std::str::from_utf8(self.string(MAX_KEY_LEN, field)?) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => bail!(field, self.ctx, at, "not valid UTF-8"),
        }
    }

    /// Checks that `count` entries of at least `min` bytes each fit in the prefix.
    fn count(&self, count: u64, min: u64, field: &'static str, at: u64) -> Result<(), GgufError> {
        match count.checked_mul(min) {
            Some(bytes) => self.need(bytes).map(|_| ()),
            None => bail!(field, self.ctx, at, format!("{count} overflows")),
        }
    }

    fn value(&mut self, ty: u32, depth: u32) -> Result<GgufValue, GgufError> {
        use GgufValue as V;
        let at = self.pos;
        let Some(vt) = GgufValueType::from_id(ty) else {
            bail!("value type", self.ctx, at, format!("unknown type id {ty}"));
        };
        Ok(match vt {
            GgufValueType::U8 => V::U8(u8::from_le_bytes(self.arr()?)),
            GgufValueType::I8 => V::I8(i8::from_le_bytes(self.arr()?)),
            GgufValueType::U16 => V::U16(u16::from_le_bytes(self.arr()?)),
            GgufValueType::I16 => V::I16(i16::from_le_bytes(self.arr()?)),
            GgufValueType::U32 => V::U32(self.u32()?),
            GgufValueType::I32 => V::I32(i32::from_le_bytes(self.arr()?)),
            GgufValueType::F32 => V::F32(f32::from_bits(self.u32()?)),
            GgufValueType::U64 => V::U64(self.u64()?),
            GgufValueType::I64 => V::I64(i64::from_le_bytes(self.arr()?)),
            GgufValueType::F64 => V::F64(f64::from_bits(self.u64()?)),
            GgufValueType::Bool => match self.arr()? {
                [0] => V::Bool(false),
                [1] => V::Bool(true),
                [b] => bail!("bool value", self.ctx, at, format!("{b} is not 0 or 1")),
            },
            GgufValueType::String => {
                V::String(self.string(MAX_STRING_LEN, "string length")?.to_vec())
            }
            GgufValueType::Array => {
                if depth >= MAX_DEPTH {
                    let why = format!("nested deeper than {MAX_DEPTH} levels");
                    bail!("array", self.ctx, at, why);
                }
                let et = self.u32()?;
                let Some(elem_type) = GgufValueType::from_id(et) else {
                    let why = format!("unknown type id {et}");
                    bail!("array element type", self.ctx, at, why);
                };
                let n_at = self.pos;
                let n = self.len()?;
                self.count(n, elem_type.min_size(self.wide), "array length", n_at)?;
                if let Some(w) = elem_type.width() {
                    // Scalars stay as their bytes: memory equals input.
                    let bytes = self.bytes(n.saturating_mul(w as u64))?.to_vec();
                    match GgufArray::from_le_bytes(elem_type, bytes) {
                        Some(a) => V::Array(a),
                        None => bail!("bool value", self.ctx, n_at, "not 0 or 1"),
                    }
                } else {
                    // `count` bounded n by the prefix length, so this
                    // allocation is too.
                    let mut items = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
                    for _ in 0..n {
                        items.push(self.value(et, depth.saturating_add(1))?);
                    }
                    V::Array(GgufArray {
                        elem_type,
                        items: Items::Values(items),
                    })
                }
            }
        })
    }

    /// One tensor info, after its name.
    fn tensor(&mut self, name: String, alignment: u64) -> Result<GgufTensorInfo, GgufError> {
        let nd_at = self.pos;
        let n_dims = self.u32()?;
        if n_dims > MAX_DIMS {
            let why = format!("{n_dims} dimensions, at most {MAX_DIMS}");
            bail!("n_dims", self.ctx, nd_at, why);
        }
        let at = self.pos;
        let dims: Vec<u64> = (0..n_dims).map(|_| self.len()).collect::<Result<_, _>>()?;
        let elems = dims.iter().try_fold(1u64, |a, d| a.checked_mul(*d));
        if elems.is_none_or(|n| i64::try_from(n).is_err()) {
            let why = format!("element count of {dims:?} overflows i64");
            bail!("dims", self.ctx, at, why);
        }
        let ty_at = self.pos;
        let id = self.u32()?;
        let Some(ty) = GgmlType::from_id(id) else {
            return Err(GgufError::UnknownGgmlType {
                tensor: name,
                id,
                offset: ty_at,
            });
        };
        let Some(size) = ty.tensor_bytes(&dims) else {
            match dims.first() {
                Some(d0) if d0.checked_rem(ty.block_elems) != Some(0) => {
                    let why = format!(
                        "first dimension {d0} is not a multiple of the {} block size {}",
                        ty.name, ty.block_elems
                    );
                    bail!("dims", self.ctx, at, why)
                }
                _ => {
                    let why = format!("byte size of {dims:?} x {} overflows", ty.name);
                    bail!("dims", self.ctx, at, why)
                }
            }
        };
        let off_at = self.pos;
        let offset = self.u64()?;
        if offset.checked_rem(alignment) != Some(0) {
            let why = format!("{offset} is not a multiple of the alignment {alignment}");
            bail!("offset", self.ctx, off_at, why);
        }
        if offset.checked_add(size).is_none() {
            let why = format!("{offset} + size {size} overflows");
            bail!("offset", self.ctx, off_at, why);
        }
        Ok(GgufTensorInfo {
            name,
            dims,
            ggml_type: ty,
            offset,
            size,
        })
    }
}

/// Parses the GGUF header from a prefix of the file.
///
/// Returns [`GgufError::NeedMore`] with the total number of bytes (from the
/// file start) needed to make progress when the prefix ends inside the
/// header; the padding after the tensor infos is not needed. A caller that
/// knows the file length should treat a `need` beyond it as a truncated or
/// hostile file. Any other error is final.
///
/// A v2 header is read in the u64 layout (llama.cpp's) and, only if that
/// fails with a final error, in the u32 layout (AERO.md §15; see the module
/// docs). The answer is then: a clean u64 parse; else `NeedMore` while the
/// u64 layout still can make progress (with the smaller `need` of the two if
/// the u32 layout can too, so that neither is asked for more than it needs);
/// else the u32 layout's result, be it a header or `NeedMore`; and if both
/// fail, the error of the layout that got further into the prefix (u64 on a
/// tie). A clean u64 parse is never second-guessed: a u32-layout file with
/// metadata reads in the u64 layout as at least 2^32 tensors and fails at
/// once.
pub fn parse(prefix: &[u8]) -> Result<GgufHeader, GgufError> {
    let mut c = Cur {
        buf: prefix,
        pos: 0,
        ctx: "header".into(),
        wide: true,
    };
    let found = c.arr::<4>()?;
    if found != MAGIC {
        return Err(GgufError::BadMagic { found });
    }
    let version = c.u32()?;
    let hint = match version {
        2 | 3 => "",
        1 => "GGUF v1 (32-bit counts) is obsolete; only v2 and v3 are supported",
        v if v & 0xFFFF == 0 => {
            "this looks like a big-endian GGUF; only little-endian is supported"
        }
        _ => "only v2 and v3 are supported",
    };
    if !hint.is_empty() {
        return Err(GgufError::UnsupportedVersion { version, hint });
    }
    let body_at = c.pos;
    let wide = parse_body(&mut c, version);
    if version != 2 {
        return wide;
    }
    let wide_err = match wide {
        Ok(h) => return Ok(h),
        Err(e) => e,
    };
    let mut n = Cur {
        buf: prefix,
        pos: body_at,
        ctx: "header".into(),
        wide: false,
    };
    let narrow = parse_body(&mut n, version);
    match (wide_err, narrow) {
        (GgufError::NeedMore { need: a }, Err(GgufError::NeedMore { need: b })) => {
            Err(GgufError::NeedMore { need: a.min(b) })
        }
        (e @ GgufError::NeedMore { .. }, _) => Err(e),
        (_, Ok(h)) => Ok(h),
        (_, Err(e @ GgufError::NeedMore { .. })) => Err(e),
        (we, Err(ne)) => Err(if n.pos > c.pos { ne } else { we }),
    }
}

/// Parses everything after the version, in the layout `c.wide` picks.
fn parse_body(c: &mut Cur<'_>, version: u32) -> Result<GgufHeader, GgufError> {
    let len = len_size(c.wide);
    // Fewest bytes of a kv: key length, 4 (type), 1 (value); of a tensor
    // info: name length, 4 (n_dims), 4 (type), 8 (offset).
    let (min_kv, min_tensor) = (len.saturating_add(5), len.saturating_add(16));
    let n_tensors = c.len()?;
    if n_tensors > MAX_TENSORS {
        let why = format!("{n_tensors} exceeds the cap of {MAX_TENSORS}");
        bail!("tensor count", c.ctx, 8, why);
    }
    let kv_at = c.pos;
    let n_kv = c.len()?;
    if !c.wide && n_kv == 0 {
        // A u64-layout file reads in the u32 layout as its tensor count and
        // 0 kvs (the count's high half); only metadata tells the two apart.
        bail!(
            "kv count",
            c.ctx,
            kv_at,
            "0, which the u32 layout does not accept"
        );
    }
    c.count(n_kv, min_kv, "kv count", kv_at)?;

    let mut metadata = Vec::new();
    let mut keys = HashSet::new();
    let mut alignment = DEFAULT_ALIGNMENT;
    for i in 0..n_kv {
        let key_at = c.pos;
        c.ctx = format!("key #{i}");
        let key = c.name("key")?;
        c.ctx = format!("key {key:?}");
        if !keys.insert(key.clone()) {
            bail!("key", c.ctx, key_at, "duplicate key");
        }
        let ty_at = c.pos;
        let ty = c.u32()?;
        let value = c.value(ty, 0)?;
        if key == ALIGNMENT_KEY {
            alignment = match value {
                GgufValue::U32(a) if valid_alignment(a.into()) => a.into(),
                _ => {
                    let why =
                        format!("{value:?} is not a power-of-two u32 of at most {MAX_ALIGNMENT}");
                    bail!("alignment", c.ctx, ty_at, why)
                }
            };
        }
        metadata.push((key, value));
    }

    c.ctx = "header".into();
    c.count(n_tensors, min_tensor, "tensor count", 8)?;
    let mut tensors = Vec::new();
    let mut names = HashSet::new();
    for i in 0..n_tensors {
        let name_at = c.pos;
        c.ctx = format!("tensor #{i}");
        let name = c.name("name")?;
        c.ctx = format!("tensor {name:?}");
        if !names.insert(name.clone()) {
            bail!("name", c.ctx, name_at, "duplicate tensor name");
        }
        tensors.push(c.tensor(name, alignment)?);
    }
    let header_len = c.pos;
    let data_offset = align_up(header_len, alignment).ok_or(GgufError::HeaderTooLarge {
        need: header_len,
        limit: MAX_HEADER_BYTES,
    })?;
    Ok(GgufHeader {
        version,
        metadata,
        tensors,
        alignment,
        header_len,
        data_offset,
    })
}

/// Reads and parses the header from a stream, buffering at most about
/// `max_header_bytes` (the buffer grows geometrically, re-parsing each time).
///
/// Returns the header and the bytes already read past `data_offset`; the
/// reader is left at `data_offset + leftover.len()` (or at EOF if the file
/// ends inside the padding).
pub fn parse_reader<R: Read>(
    r: &mut R,
    max_header_bytes: u64,
) -> Result<(GgufHeader, Vec<u8>), GgufError> {
    let mut buf = Vec::new();
    let mut want = max_header_bytes.min(64 << 10);
    loop {
        let have = buf.len() as u64;
        let got = r
            .by_ref()
            .take(want.saturating_sub(have))
            .read_to_end(&mut buf)? as u64;
        let eof = got < want.saturating_sub(have);
        match parse(&buf) {
            Ok(h) => {
                let have = buf.len() as u64;
                if let Some(skip) = h.data_offset.checked_sub(have) {
                    io::copy(&mut r.by_ref().take(skip), &mut io::sink())?;
                    return Ok((h, Vec::new()));
                }
                let split = usize::try_from(h.data_offset).unwrap_or(buf.len());
                let rest = buf.split_off(split.min(buf.len()));
                return Ok((h, rest));
            }
            Err(GgufError::NeedMore { need }) if need > max_header_bytes => {
                return Err(GgufError::HeaderTooLarge {
                    need,
                    limit: max_header_bytes,
                });
            }
            Err(GgufError::NeedMore { need }) if eof => {
                return Err(GgufError::Truncated {
                    need,
                    got: buf.len() as u64,
                });
            }
            Err(GgufError::NeedMore { need }) => {
                want = need
                    .max((buf.len() as u64).saturating_mul(2))
                    .min(max_header_bytes);
            }
            Err(e) => return Err(e),
        }
    }
}
