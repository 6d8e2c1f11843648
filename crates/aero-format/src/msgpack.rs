//! A bounded, non-allocating MessagePack token reader.
//!
//! Marker classification comes from [`rmp::Marker`]; this module adds what a
//! borrowing, panic-free reader needs on top: lengths checked against the
//! remaining input, borrowed strings, and skipping whole values iteratively
//! (no recursion, so hostile nesting cannot exhaust the stack).

use crate::error::{Error, ErrorKind, Field};
use crate::limits;
use rmp::Marker;

/// One MessagePack token. Arrays and maps carry only their element count; the
/// elements follow as further tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Token<'a> {
    /// nil
    Nil,
    /// true / false
    Bool(bool),
    /// A non-negative integer (positive fixint, uint 8–64, or a non-negative int 8–64).
    Uint(u64),
    /// A negative integer.
    Int(i64),
    /// float 32
    F32(f32),
    /// float 64
    F64(f64),
    /// str (raw bytes; not yet checked as UTF-8)
    Str(&'a [u8]),
    /// bin
    Bin(&'a [u8]),
    /// array header with element count
    Array(u32),
    /// map header with pair count
    Map(u32),
    /// ext with type and data
    Ext(i8, &'a [u8]),
}

/// A cursor over MessagePack bytes.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Current offset into the buffer.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The bytes between two positions (for capturing raw values).
    pub fn slice(&self, start: usize, end: usize) -> &'a [u8] {
        self.buf.get(start..end).unwrap_or(&[])
    }

    fn err(&self, kind: ErrorKind, field: Field) -> Error {
        Error::new(kind, field, self.pos as u64)
    }

    fn take(&mut self, n: usize, field: Field) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(self.err(
                ErrorKind::Truncated {
                    need: (self.pos as u64).saturating_add(n as u64),
                },
                field,
            ))?;
        let s = self.buf.get(self.pos..end).unwrap_or(&[]);
        self.pos = end;
        Ok(s)
    }

    fn be<const N: usize>(&mut self, field: Field) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn len8(&mut self, f: Field) -> Result<usize, Error> {
        Ok(usize::from(self.be::<1>(f)?[0]))
    }
    fn len16(&mut self, f: Field) -> Result<usize, Error> {
        Ok(usize::from(u16::from_be_bytes(self.be(f)?)))
    }
    fn len32(&mut self, f: Field) -> Result<usize, Error> {
        usize::try_from(u32::from_be_bytes(self.be(f)?))
            .map_err(|_| self.err(ErrorKind::WrongType, f))
    }

    fn count(&self, n: u32, per_elem: u64, field: Field) -> Result<u32, Error> {
        // Every element takes at least one byte, so a count larger than the
        // remaining input is a lie that must not drive a loop or an allocation.
        if u64::from(n).saturating_mul(per_elem) > self.remaining() as u64 {
            return Err(self.err(
                ErrorKind::Truncated {
                    need: u64::from(n).saturating_mul(per_elem),
                },
                field,
            ));
        }
        Ok(n)
    }

    /// Reads the next token. `field` names what is being read, for errors.
    pub fn next(&mut self, field: Field) -> Result<Token<'a>, Error> {
        let b = self.be::<1>(field)?[0];
        // Fast paths for the tokens a TIDX is made of.
        if b <= 0x7f {
            return Ok(Token::Uint(u64::from(b)));
        }
        if (0xa0..=0xbf).contains(&b) {
            return Ok(Token::Str(self.take(usize::from(b & 0x1f), field)?));
        }
        let m = Marker::from_u8(b);
        Ok(match m {
            Marker::FixPos(v) => Token::Uint(u64::from(v)),
            Marker::FixNeg(v) => Token::Int(i64::from(v)),
            Marker::Null => Token::Nil,
            Marker::True => Token::Bool(true),
            Marker::False => Token::Bool(false),
            Marker::U8 => Token::Uint(u64::from(u8::from_be_bytes(self.be(field)?))),
            Marker::U16 => Token::Uint(u64::from(u16::from_be_bytes(self.be(field)?))),
            Marker::U32 => Token::Uint(u64::from(u32::from_be_bytes(self.be(field)?))),
            Marker::U64 => Token::Uint(u64::from_be_bytes(self.be(field)?)),
            Marker::I8 => int(i64::from(i8::from_be_bytes(self.be(field)?))),
            Marker::I16 => int(i64::from(i16::from_be_bytes(self.be(field)?))),
            Marker::I32 => int(i64::from(i32::from_be_bytes(self.be(field)?))),
            Marker::I64 => int(i64::from_be_bytes(self.be(field)?)),
            Marker::F32 => Token::F32(f32::from_be_bytes(self.be(field)?)),
            Marker::F64 => Token::F64(f64::from_be_bytes(self.be(field)?)),
            Marker::FixStr(n) => Token::Str(self.take(usize::from(n), field)?),
            Marker::Str8 => {
                let n = self.len8(field)?;
                Token::Str(self.take(n, field)?)
            }
            Marker::Str16 => {
                let n = self.len16(field)?;
                Token::Str(self.take(n, field)?)
            }
            Marker::Str32 => {
                let n = self.len32(field)?;
                Token::Str(self.take(n, field)?)
            }
            Marker::Bin8 => {
                let n = self.len8(field)?;
                Token::Bin(self.take(n, field)?)
            }
            Marker::Bin16 => {
                let n = self.len16(field)?;
                Token::Bin(self.take(n, field)?)
            }
            Marker::Bin32 => {
                let n = self.len32(field)?;
                Token::Bin(self.take(n, field)?)
            }
            Marker::FixArray(n) => Token::Array(self.count(u32::from(n), 1, field)?),
            Marker::Array16 => {
                let n = u32::from(u16::from_be_bytes(self.be(field)?));
                Token::Array(self.count(n, 1, field)?)
            }
            Marker::Array32 => {
                let n = u32::from_be_bytes(self.be(field)?);
                Token::Array(self.count(n, 1, field)?)
            }
            Marker::FixMap(n) => Token::Map(self.count(u32::from(n), 2, field)?),
            Marker::Map16 => {
                let n = u32::from(u16::from_be_bytes(self.be(field)?));
                Token::Map(self.count(n, 2, field)?)
            }
            Marker::Map32 => {
                let n = u32::from_be_bytes(self.be(field)?);
                Token::Map(self.count(n, 2, field)?)
            }
            Marker::FixExt1 => self.ext(1, field)?,
            Marker::FixExt2 => self.ext(2, field)?,
            Marker::FixExt4 => self.ext(4, field)?,
            Marker::FixExt8 => self.ext(8, field)?,
            Marker::FixExt16 => self.ext(16, field)?,
            Marker::Ext8 => {
                let n = self.len8(field)?;
                self.ext(n, field)?
            }
            Marker::Ext16 => {
                let n = self.len16(field)?;
                self.ext(n, field)?
            }
            Marker::Ext32 => {
                let n = self.len32(field)?;
                self.ext(n, field)?
            }
            Marker::Reserved => return Err(self.err(ErrorKind::WrongType, field)),
        })
    }

    fn ext(&mut self, n: usize, field: Field) -> Result<Token<'a>, Error> {
        let ty = i8::from_be_bytes(self.be(field)?);
        Ok(Token::Ext(ty, self.take(n, field)?))
    }

    /// Skips one complete value (including nested arrays and maps) and returns
    /// its raw bytes. Iterative: nesting costs no stack, and nesting deeper
    /// than [`limits::MAX_MSGPACK_DEPTH`] is an error ([`ErrorKind::TooDeep`]
    /// at the offset of the container that would go deeper).
    pub fn skip(&mut self, field: Field) -> Result<&'a [u8], Error> {
        const LEVELS: usize = limits::MAX_MSGPACK_DEPTH as usize + 1;
        let start = self.pos;
        // Values still to read at each open nesting level; level 0 is the value itself.
        let mut pending = [0u64; LEVELS];
        let mut depth = 0usize;
        if let Some(p) = pending.first_mut() {
            *p = 1;
        }
        loop {
            // Close finished levels.
            while pending.get(depth).is_some_and(|&p| p == 0) {
                if depth == 0 {
                    return Ok(self.slice(start, self.pos));
                }
                depth = depth.saturating_sub(1);
            }
            if let Some(p) = pending.get_mut(depth) {
                *p = p.saturating_sub(1);
            }
            let at = self.pos;
            let n = match self.next(field)? {
                Token::Array(n) => u64::from(n),
                Token::Map(n) => u64::from(n).saturating_mul(2),
                _ => continue,
            };
            if n == 0 {
                continue;
            }
            depth = depth.saturating_add(1);
            match pending.get_mut(depth) {
                Some(p) => *p = n,
                None => return Err(Error::new(ErrorKind::TooDeep, field, at as u64)),
            }
        }
    }

    /// Reads a non-negative integer.
    pub fn read_u64(&mut self, field: Field) -> Result<u64, Error> {
        let at = self.pos as u64;
        match self.next(field)? {
            Token::Uint(v) => Ok(v),
            _ => Err(Error::new(ErrorKind::WrongType, field, at)),
        }
    }

    /// Reads a string's raw bytes (not checked as UTF-8: for matching keys).
    pub fn read_str_bytes(&mut self, field: Field) -> Result<&'a [u8], Error> {
        let at = self.pos as u64;
        match self.next(field)? {
            Token::Str(b) => Ok(b),
            _ => Err(Error::new(ErrorKind::WrongType, field, at)),
        }
    }

    /// Reads a UTF-8 string.
    pub fn read_str(&mut self, field: Field) -> Result<&'a str, Error> {
        let at = self.pos as u64;
        match self.next(field)? {
            Token::Str(b) => {
                core::str::from_utf8(b).map_err(|_| Error::new(ErrorKind::InvalidUtf8, field, at))
            }
            _ => Err(Error::new(ErrorKind::WrongType, field, at)),
        }
    }

    /// Reads an array header.
    pub fn read_array_len(&mut self, field: Field) -> Result<u32, Error> {
        let at = self.pos as u64;
        match self.next(field)? {
            Token::Array(n) => Ok(n),
            _ => Err(Error::new(ErrorKind::WrongType, field, at)),
        }
    }

    /// Reads a map header.
    pub fn read_map_len(&mut self, field: Field) -> Result<u32, Error> {
        let at = self.pos as u64;
        match self.next(field)? {
            Token::Map(n) => Ok(n),
            _ => Err(Error::new(ErrorKind::WrongType, field, at)),
        }
    }
}

fn int(v: i64) -> Token<'static> {
    match u64::try_from(v) {
        Ok(u) => Token::Uint(u),
        Err(_) => Token::Int(v),
    }
}

/// Decodes 64 hex characters into 32 bytes (either case accepted).
///
/// Table-driven and branch-free per character: the digits of a hash are
/// random, so a `match` on digit/lower/upper mispredicts about half the
/// time (that was most of the cost of iterating a TIDX with `hash_b3`).
pub fn decode_hex32(s: &[u8]) -> Option<[u8; 32]> {
    let s: &[u8; 64] = s.try_into().ok()?;
    let mut out = [0u8; 32];
    // Invalid characters map to 0xff; OR-ing every value keeps the high
    // bit set if any character was invalid.
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(s.as_chunks::<2>().0) {
        let (hi, lo) = (hex_val(pair[0]), hex_val(pair[1]));
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0x0f);
    }
    (bad & 0x80 == 0).then_some(out)
}

/// The value of a hex digit ('0'-'9', 'a'-'f', 'A'-'F'); 0xff otherwise.
#[inline(always)]
fn hex_val(c: u8) -> u8 {
    // A u8 always indexes a 256-entry table.
    #[allow(clippy::indexing_slicing)]
    HEX_VAL[usize::from(c)]
}

const HEX_VAL: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut c = 0u8;
    loop {
        // In range: the table has 256 entries and `c` is a u8.
        #[allow(clippy::indexing_slicing)]
        {
            t[c as usize] = match c {
                b'0'..=b'9' => c.wrapping_sub(b'0'),
                b'a'..=b'f' => c.wrapping_sub(b'a').wrapping_add(10),
                b'A'..=b'F' => c.wrapping_sub(b'A').wrapping_add(10),
                _ => 0xff,
            };
        }
        if c == u8::MAX {
            break;
        }
        c = c.wrapping_add(1);
    }
    t
};

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used
)]
mod tests {
    use super::decode_hex32;

    /// The same hex digit in both cases, then every byte as both digits.
    #[test]
    fn decode_hex32_accepts_hex_digits_only() {
        let mut s = [b'0'; 64];
        for (i, c) in b"0123456789abcdefABCDEF".iter().enumerate() {
            s[i] = *c;
        }
        let d = decode_hex32(&s).unwrap();
        assert_eq!(
            d[..11],
            [
                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xab, 0xcd, 0xef
            ]
        );
        assert!(d[11..].iter().all(|&b| b == 0));
        for c in 0..=255u8 {
            let want = match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            };
            for pos in [0, 1, 62, 63] {
                let mut s = [b'0'; 64];
                s[pos] = c;
                let got = decode_hex32(&s);
                match want {
                    None => assert_eq!(got, None, "byte {c:#x} at {pos}"),
                    Some(v) => {
                        let b = got.unwrap()[pos / 2];
                        assert_eq!(b, if pos % 2 == 0 { v << 4 } else { v }, "{c:#x}");
                    }
                }
            }
        }
        assert_eq!(decode_hex32(&[b'0'; 63]), None);
        assert_eq!(decode_hex32(&[b'0'; 65]), None);
    }
}
