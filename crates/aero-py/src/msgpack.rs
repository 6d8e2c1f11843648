//! MessagePack → Python objects, as `msgpack.unpackb(data, raw=False)`
//! returns them (str as `str`, bin as `bytes`, maps as `dict` in stored
//! order, arrays as `list`), on top of aero-format's bounded token reader.
//!
//! Hostile input cannot exhaust the stack (nesting is capped at
//! [`MAX_DEPTH`]) or memory: every object is charged against a budget
//! proportional to the payload (see [`Budget`]), and declared lengths are
//! checked against the bytes left before they drive a loop.

use aero_format::Field;
use aero_format::msgpack::{Reader, Token};
use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyModule, PyString, PyTuple};

use crate::errors::{Failure, Res};

/// Deepest nesting accepted (the reference's files nest 4 levels).
pub(crate) const MAX_DEPTH: usize = 64;

/// Estimated bytes a Python object costs beyond its content.
const OBJECT_COST: usize = 64;

/// What decoding may still allocate, in estimated bytes of Python objects:
/// 64 per object plus its content, at most `per_byte` × the payload (and
/// at least 64 MiB).
pub(crate) struct Budget(usize);

impl Budget {
    pub(crate) fn for_payload(len: usize) -> Budget {
        Budget(len.saturating_mul(32).max(64 << 20))
    }

    fn spend(&mut self, n: usize) -> Res<()> {
        match self.0.checked_sub(OBJECT_COST.saturating_add(n)) {
            Some(left) => {
                self.0 = left;
                Ok(())
            }
            None => Err(Failure::aero(
                "metadata",
                "MessagePack payload would decode to more Python objects than its size allows",
            )),
        }
    }
}

/// Payloads from this size on are decoded with the cyclic GC paused.
const GC_PAUSE_BYTES: usize = 64 << 10;

/// Disables Python's cyclic garbage collector until dropped, if it was
/// enabled (`gc.disable()` / `gc.enable()`).
struct GcPause<'py> {
    gc: Option<Bound<'py, PyModule>>,
}

impl<'py> GcPause<'py> {
    fn new(py: Python<'py>) -> PyResult<GcPause<'py>> {
        let gc = py.import("gc")?;
        if gc.call_method0("isenabled")?.is_truthy()? {
            gc.call_method0("disable")?;
            Ok(GcPause { gc: Some(gc) })
        } else {
            Ok(GcPause { gc: None })
        }
    }
}

impl Drop for GcPause<'_> {
    fn drop(&mut self) {
        if let Some(gc) = &self.gc {
            // Nothing to do if re-enabling fails: the interpreter is
            // shutting down.
            let _ = gc.call_method0("enable");
        }
    }
}

/// Map keys seen so far (a TIDX repeats the same few thousands of times).
struct Keys<'a, 'py> {
    seen: Vec<(&'a [u8], Bound<'py, PyString>)>,
}

impl<'a, 'py> Keys<'a, 'py> {
    fn get(&mut self, py: Python<'py>, raw: &'a [u8], what: &str) -> Res<Bound<'py, PyAny>> {
        if let Some((_, s)) = self.seen.iter().find(|(k, _)| *k == raw) {
            return Ok(s.clone().into_any());
        }
        let s = PyString::new(py, utf8(raw, what)?);
        if self.seen.len() < 64 && raw.len() <= 64 {
            self.seen.push((raw, s.clone()));
        }
        Ok(s.into_any())
    }
}

fn utf8<'a>(raw: &'a [u8], what: &str) -> Res<&'a str> {
    std::str::from_utf8(raw)
        .map_err(|_| Failure::aero("metadata", format!("{what}: a string is not valid UTF-8")))
}

fn bad(what: &str, e: aero_format::Error) -> Failure {
    Failure::aero("metadata", format!("{what}: invalid MessagePack: {e}"))
}

/// Decodes exactly one MessagePack value from `data`; bytes after it must
/// be zero padding (IHSH and PHSH payloads are padded) or nothing.
pub(crate) fn unpack<'py>(py: Python<'py>, data: &[u8], what: &str) -> Res<Bound<'py, PyAny>> {
    // A large TIDX becomes hundreds of thousands of lists and dicts; the
    // cyclic GC would scan them over and over while they are built (none
    // can be part of a cycle), which costs as much as building them.
    let _paused = (data.len() >= GC_PAUSE_BYTES)
        .then(|| GcPause::new(py))
        .transpose()?;
    let mut r = Reader::new(data);
    let mut budget = Budget::for_payload(data.len());
    let mut keys = Keys { seen: Vec::new() };
    let v = value(py, &mut r, &mut budget, &mut keys, 0, what)?;
    let rest = r.slice(r.position(), data.len());
    if rest.iter().any(|&b| b != 0) {
        return Err(Failure::aero(
            "metadata",
            format!(
                "{what}: {} unexpected bytes after the MessagePack value",
                rest.len()
            ),
        ));
    }
    Ok(v)
}

fn value<'a, 'py>(
    py: Python<'py>,
    r: &mut Reader<'a>,
    budget: &mut Budget,
    keys: &mut Keys<'a, 'py>,
    depth: usize,
    what: &str,
) -> Res<Bound<'py, PyAny>> {
    if depth > MAX_DEPTH {
        return Err(Failure::aero(
            "metadata",
            format!("{what}: MessagePack nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    let tok = r.next(Field::MsgPack).map_err(|e| bad(what, e))?;
    let py_err = Failure::Py;
    Ok(match tok {
        Token::Nil => py.None().into_bound(py),
        Token::Bool(b) => b.into_bound_py_any(py).map_err(py_err)?,
        Token::Uint(n) => {
            budget.spend(0)?;
            n.into_bound_py_any(py).map_err(py_err)?
        }
        Token::Int(n) => {
            budget.spend(0)?;
            n.into_bound_py_any(py).map_err(py_err)?
        }
        Token::F32(x) => f64::from(x).into_bound_py_any(py).map_err(py_err)?,
        Token::F64(x) => x.into_bound_py_any(py).map_err(py_err)?,
        Token::Str(s) => {
            budget.spend(s.len())?;
            PyString::new(py, utf8(s, what)?).into_any()
        }
        Token::Bin(b) => {
            budget.spend(b.len())?;
            PyBytes::new(py, b).into_any()
        }
        Token::Ext(code, data) => {
            budget.spend(data.len())?;
            PyTuple::new(
                py,
                [
                    code.into_bound_py_any(py)?,
                    PyBytes::new(py, data).into_any(),
                ],
            )
            .map_err(py_err)?
            .into_any()
        }
        Token::Array(n) => {
            budget.spend(8usize.saturating_mul(n as usize))?;
            let list = PyList::empty(py);
            for _ in 0..n {
                list.append(value(py, r, budget, keys, depth + 1, what)?)
                    .map_err(py_err)?;
            }
            list.into_any()
        }
        Token::Map(n) => {
            budget.spend(48usize.saturating_mul(n as usize))?;
            let dict = PyDict::new(py);
            for _ in 0..n {
                let k = match r.clone().next(Field::MsgPack) {
                    Ok(Token::Str(s)) => {
                        r.next(Field::MsgPack).map_err(|e| bad(what, e))?;
                        keys.get(py, s, what)?
                    }
                    _ => value(py, r, budget, keys, depth + 1, what)?,
                };
                let v = value(py, r, budget, keys, depth + 1, what)?;
                dict.set_item(k, v).map_err(|e| {
                    Failure::aero("metadata", format!("{what}: unusable map key: {e}"))
                })?;
            }
            dict.into_any()
        }
    })
}
