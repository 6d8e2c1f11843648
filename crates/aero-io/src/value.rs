//! MessagePack ⇄ JSON conversion for metadata that callers see as JSON
//! (manifest, unknown TIDX keys) and the canonical JSON encoding of MJSN.

use aero_format::Field;
use aero_format::msgpack::{Reader, Token};
use serde_json::{Map, Number, Value};

/// Maximum nesting accepted when converting MessagePack to JSON.
const MAX_DEPTH: u32 = 64;

/// Bytes a conversion may always spend, whatever the input size.
pub const JSON_BUDGET_BASE: usize = 64 << 10;
/// Beyond [`JSON_BUDGET_BASE`], bytes a conversion may spend per input byte.
/// A `serde_json::Value` takes 72 bytes (with `preserve_order`), so a
/// one-byte `nil` becomes 72; real manifests cost about 15 bytes per
/// MessagePack byte.
pub const JSON_BUDGET_PER_BYTE: usize = 80;

/// Bytes charged for one map entry beside its key and value (`IndexMap`
/// bucket: hash, key and value, plus an index slot).
const MAP_ENTRY_COST: usize = 120;

/// Most elements reserved up front for one array or map; more grow as
/// they are converted.
const RESERVE_MAX: usize = 4096;

/// The budget for converting the MMSG manifest of a file of `file_len`
/// bytes: 4 MiB, or 32 bytes per file byte (a manifest entry costs about
/// 800 bytes as JSON and describes a chunk whose TOC entry alone takes 80).
/// Bounding by the file, not the inflated payload, keeps a compressed
/// manifest from costing 64 × 80 times its stored size.
pub fn manifest_budget(file_len: u64) -> usize {
    usize::try_from(file_len.saturating_mul(32))
        .unwrap_or(usize::MAX)
        .max(4 << 20)
}

/// Converts one MessagePack value to JSON. `bin` becomes a lowercase hex
/// string, `ext` an object `{"ext": type, "hex": ...}`. A map key that is
/// not a string becomes a bounded, deterministic string: a scalar its JSON
/// text (`1`, `true`, `null`), `bin` its hex, and an array, map or ext
/// `msgpack:` followed by the hex of its MessagePack bytes (so keys never
/// nest and nothing is escaped twice).
///
/// Memory is bounded by the input: the estimated size of the result may be
/// at most [`JSON_BUDGET_BASE`] + [`JSON_BUDGET_PER_BYTE`] × `raw.len()`
/// bytes, else the conversion fails with `LimitExceeded`.
pub fn msgpack_to_json(raw: &[u8]) -> Result<Value, aero_format::Error> {
    msgpack_to_json_within(raw, json_budget(raw))
}

/// The default budget for converting `raw`: [`JSON_BUDGET_BASE`] +
/// [`JSON_BUDGET_PER_BYTE`] × its length.
pub fn json_budget(raw: &[u8]) -> usize {
    JSON_BUDGET_PER_BYTE
        .saturating_mul(raw.len())
        .saturating_add(JSON_BUDGET_BASE)
}

/// [`msgpack_to_json`] with an explicit budget: the estimated bytes the
/// resulting [`Value`] occupies (values, map entries, strings).
pub fn msgpack_to_json_within(raw: &[u8], budget: usize) -> Result<Value, aero_format::Error> {
    let mut c = Converter {
        r: Reader::new(raw),
        left: budget,
        budget,
    };
    c.convert(0)
}

struct Converter<'a> {
    r: Reader<'a>,
    left: usize,
    budget: usize,
}

impl Converter<'_> {
    fn err(&self, kind: aero_format::ErrorKind) -> aero_format::Error {
        aero_format::Error {
            kind,
            field: Field::MsgPack,
            offset: self.r.position() as u64,
            index: None,
        }
    }

    fn spend(&mut self, bytes: usize) -> Result<(), aero_format::Error> {
        match self.left.checked_sub(bytes) {
            Some(l) => {
                self.left = l;
                Ok(())
            }
            None => Err(self.err(aero_format::ErrorKind::LimitExceeded {
                value: (self.budget - self.left).saturating_add(bytes) as u64,
                limit: self.budget as u64,
            })),
        }
    }

    fn convert(&mut self, depth: u32) -> Result<Value, aero_format::Error> {
        if depth > MAX_DEPTH {
            return Err(self.err(aero_format::ErrorKind::TooDeep));
        }
        self.spend(std::mem::size_of::<Value>())?;
        Ok(match self.r.next(Field::MsgPack)? {
            Token::Nil => Value::Null,
            Token::Bool(b) => Value::Bool(b),
            Token::Uint(u) => Value::Number(u.into()),
            Token::Int(i) => Value::Number(i.into()),
            Token::F32(f) => Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number),
            Token::F64(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            Token::Str(s) => {
                self.spend(s.len())?;
                Value::String(String::from_utf8_lossy(s).into_owned())
            }
            Token::Bin(b) => {
                self.spend(b.len().saturating_mul(2))?;
                Value::String(hex::encode(b))
            }
            Token::Ext(t, b) => {
                self.spend(b.len().saturating_mul(2).saturating_add(3 * MAP_ENTRY_COST))?;
                serde_json::json!({"ext": t, "hex": hex::encode(b)})
            }
            Token::Array(n) => {
                // The reader checked that n elements fit in the input; the
                // budget caps what is reserved before they are converted
                // (and a small first reservation keeps a lying count cheap).
                let cap = (n as usize)
                    .min(self.left / std::mem::size_of::<Value>())
                    .min(RESERVE_MAX);
                let mut v = Vec::with_capacity(cap);
                for _ in 0..n {
                    v.push(self.convert(depth + 1)?);
                }
                Value::Array(v)
            }
            Token::Map(n) => {
                let mut m = Map::with_capacity(
                    (n as usize)
                        .min(self.left / MAP_ENTRY_COST)
                        .min(RESERVE_MAX),
                );
                for _ in 0..n {
                    self.spend(MAP_ENTRY_COST)?;
                    let k = self.key()?;
                    self.spend(k.len())?;
                    let v = self.convert(depth + 1)?;
                    m.insert(k, v);
                }
                Value::Object(m)
            }
        })
    }

    /// A map key as a string, at most about twice its MessagePack size.
    fn key(&mut self) -> Result<String, aero_format::Error> {
        let mut peek = self.r.clone();
        Ok(match peek.next(Field::MsgPack)? {
            Token::Str(s) => {
                self.r = peek;
                String::from_utf8_lossy(s).into_owned()
            }
            Token::Bin(b) => {
                self.r = peek;
                hex::encode(b)
            }
            Token::Nil => {
                self.r = peek;
                "null".into()
            }
            Token::Bool(b) => {
                self.r = peek;
                b.to_string()
            }
            Token::Uint(u) => {
                self.r = peek;
                u.to_string()
            }
            Token::Int(i) => {
                self.r = peek;
                i.to_string()
            }
            Token::F32(f) => {
                self.r = peek;
                Value::from(f64::from(f)).to_string()
            }
            Token::F64(f) => {
                self.r = peek;
                Value::from(f).to_string()
            }
            Token::Array(_) | Token::Map(_) | Token::Ext(..) => {
                let raw = self.r.skip(Field::MsgPack)?;
                format!("msgpack:{}", hex::encode(raw))
            }
        })
    }
}

/// Encodes JSON as the reference does for MJSN (Python `json.dumps(obj,
/// sort_keys=True, separators=(",", ":"))`, i.e. `ensure_ascii`): keys sorted
/// at every level, no spaces, every non-ASCII character escaped as `\uXXXX`
/// (surrogate pairs above U+FFFF).
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&python_number(n)),
        Value::String(s) => write_str(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            // Python sorts str keys by code point; Rust's str order is by
            // UTF-8 bytes, which gives the same order.
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
    }
}

/// Python's `repr(float)` for the common cases; integers verbatim.
fn python_number(n: &Number) -> String {
    if n.is_f64() {
        let f = n.as_f64().unwrap_or(0.0);
        if f.is_finite() && f == f.trunc() && f.abs() < 1e16 {
            return format!("{f:.1}");
        }
        let s = format!("{f:e}");
        // Rust prints 1e-5 where Python prints 1e-05; keep Rust's shortest
        // digits but use Python's exponent style for |exp| < 10.
        if let Some((mant, exp)) = s.split_once('e') {
            let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
            let e: i32 = digits.parse().unwrap_or(0);
            if (-4..16).contains(&(if sign == "-" { -e } else { e })) {
                return format!("{f}");
            }
            return format!("{mant}e{sign}{digits:0>2}");
        }
        s
    } else {
        n.to_string()
    }
}

fn write_str(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_matches_python_json_dumps() {
        let v: Value =
            serde_json::from_str(r#"{"z":1,"a":{"y":[1,"é😀"],"b":null},"m":"q\"\n"}"#).unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"b":null,"y":[1,"\u00e9\ud83d\ude00"]},"m":"q\"\n","z":1}"#
        );
    }

    /// Issue 11: a map used as a map key was rendered as JSON text and
    /// escaped again at every level, so output grew exponentially with depth.
    #[test]
    fn nested_map_keys_stay_linear() {
        for depth in [1usize, 10, 40, 60] {
            // {{{...{1: 2}...: 2}: 2}: 2}
            let mut buf = Vec::new();
            for _ in 0..depth {
                rmp::encode::write_map_len(&mut buf, 1).unwrap();
            }
            rmp::encode::write_uint(&mut buf, 1).unwrap();
            for _ in 0..depth {
                rmp::encode::write_uint(&mut buf, 2).unwrap();
            }
            let v = msgpack_to_json(&buf).unwrap();
            let text = v.to_string();
            assert!(
                text.len() <= 8 * buf.len() + 64,
                "depth {depth}: {} bytes of JSON from {} bytes",
                text.len(),
                buf.len()
            );
        }
        let mut buf = Vec::new();
        rmp::encode::write_map_len(&mut buf, 1).unwrap();
        rmp::encode::write_array_len(&mut buf, 1).unwrap();
        rmp::encode::write_uint(&mut buf, 7).unwrap();
        rmp::encode::write_nil(&mut buf).unwrap();
        assert_eq!(
            msgpack_to_json(&buf).unwrap(),
            serde_json::json!({"msgpack:9107": null})
        );
    }

    #[test]
    fn scalar_keys_become_their_text() {
        let mut buf = Vec::new();
        rmp::encode::write_map_len(&mut buf, 3).unwrap();
        rmp::encode::write_uint(&mut buf, 5).unwrap();
        rmp::encode::write_nil(&mut buf).unwrap();
        rmp::encode::write_bool(&mut buf, true).unwrap();
        rmp::encode::write_nil(&mut buf).unwrap();
        rmp::encode::write_bin(&mut buf, &[0xab]).unwrap();
        rmp::encode::write_nil(&mut buf).unwrap();
        assert_eq!(
            msgpack_to_json(&buf).unwrap(),
            serde_json::json!({"5": null, "true": null, "ab": null})
        );
    }

    #[test]
    fn conversion_cost_is_bounded_by_the_input() {
        // One-entry maps: 264 bytes of Value per 3 input bytes.
        let n = 1 << 18;
        let mut buf = Vec::new();
        rmp::encode::write_array_len(&mut buf, n).unwrap();
        for _ in 0..n {
            rmp::encode::write_map_len(&mut buf, 1).unwrap();
            rmp::encode::write_str(&mut buf, "").unwrap();
            rmp::encode::write_nil(&mut buf).unwrap();
        }
        let e = msgpack_to_json(&buf).unwrap_err();
        assert!(
            matches!(e.kind, aero_format::ErrorKind::LimitExceeded { .. }),
            "{e}"
        );
        // An array of nils costs 72 bytes per input byte and passes.
        let mut buf = Vec::new();
        rmp::encode::write_array_len(&mut buf, n).unwrap();
        buf.resize(buf.len() + n as usize, 0xc0);
        assert_eq!(
            msgpack_to_json(&buf).unwrap().as_array().unwrap().len(),
            n as usize
        );
    }

    #[test]
    fn msgpack_bin_becomes_hex() {
        let mut buf = Vec::new();
        rmp::encode::write_map_len(&mut buf, 1).unwrap();
        rmp::encode::write_str(&mut buf, "d").unwrap();
        rmp::encode::write_bin(&mut buf, &[0xab, 0x01]).unwrap();
        assert_eq!(
            msgpack_to_json(&buf).unwrap(),
            serde_json::json!({"d": "ab01"})
        );
    }
}
