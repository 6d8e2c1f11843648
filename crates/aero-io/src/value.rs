//! MessagePack ⇄ JSON conversion for metadata that callers see as JSON
//! (manifest, unknown TIDX keys) and the canonical JSON encoding of MJSN.

use aero_format::Field;
use aero_format::msgpack::{Reader, Token};
use serde_json::{Map, Number, Value};

/// Maximum nesting accepted when converting MessagePack to JSON.
const MAX_DEPTH: u32 = 64;

/// Converts one MessagePack value to JSON. `bin` becomes a lowercase hex
/// string, `ext` an object `{"ext": type, "hex": ...}`, non-string map keys
/// their JSON text. Lengths were bounded by the input by the reader.
pub fn msgpack_to_json(raw: &[u8]) -> Result<Value, aero_format::Error> {
    let mut r = Reader::new(raw);
    convert(&mut r, 0)
}

fn convert(r: &mut Reader<'_>, depth: u32) -> Result<Value, aero_format::Error> {
    if depth > MAX_DEPTH {
        return Err(aero_format::Error {
            kind: aero_format::ErrorKind::TooDeep,
            field: Field::MsgPack,
            offset: r.position() as u64,
            index: None,
        });
    }
    Ok(match r.next(Field::MsgPack)? {
        Token::Nil => Value::Null,
        Token::Bool(b) => Value::Bool(b),
        Token::Uint(u) => Value::Number(u.into()),
        Token::Int(i) => Value::Number(i.into()),
        Token::F32(f) => Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number),
        Token::F64(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Token::Str(s) => Value::String(String::from_utf8_lossy(s).into_owned()),
        Token::Bin(b) => Value::String(hex::encode(b)),
        Token::Ext(t, b) => serde_json::json!({"ext": t, "hex": hex::encode(b)}),
        Token::Array(n) => {
            let mut v = Vec::new();
            for _ in 0..n {
                v.push(convert(r, depth + 1)?);
            }
            Value::Array(v)
        }
        Token::Map(n) => {
            let mut m = Map::new();
            for _ in 0..n {
                let k = match convert(r, depth + 1)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                let v = convert(r, depth + 1)?;
                m.insert(k, v);
            }
            Value::Object(m)
        }
    })
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
