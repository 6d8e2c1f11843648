//! Compares two tensor sources tensor by tensor: what `aerotensor diff`
//! reports. A side is an AERO file, an AEROSET, or a safetensors or GGUF
//! file read as `convert` would hold it ([`crate::foreign::ForeignFile`]),
//! so `diff model.safetensors model.aero` checks a conversion.
//!
//! - tensors only in one side;
//! - for tensors in both: dtype (a packed GGUF tensor's dtype is its ggml
//!   type name, `Q4_K`) and shape changes, and whether the bytes are
//!   identical;
//! - whether the tensors common to both come in another order;
//! - with [`DiffOptions::numeric`], per differing tensor: max absolute and
//!   relative error and cosine similarity of the values, packed tensors
//!   dequantized (f64 accumulation). Memory: both tensors' f32 values.
//!
//! Trust: every tensor present in both sides is read through
//! [`TensorSource::verified`] on both sides — checked against the strongest
//! hash its file records (`hash_b3`, else PHSH pages, else the shard hash)
//! — and the verified bytes are compared. A recorded `hash_b3` is never
//! taken as the bytes' content without that check: two files recording the
//! same `hash_b3` over different (damaged) bytes are not "identical", they
//! are an error. So a damaged side is the error of reading it (a
//! [`StateDictError`] whose [`StateDictError::is_invalid_data`] is true,
//! naming the file, the tensor and the offset that failed), never a
//! report; a report is only made of verified bytes. Safetensors and GGUF
//! record no hashes: their bytes are compared as stored. Cost: one read of
//! every common tensor on each side (local files are mapped, so the
//! comparison itself copies nothing).
//!
//! Shapes are compared row-major and bytes are the tensors' own: files of
//! the reference GGUF converter (GGUF order, spec §15) are recognised by
//! aero-io's rule ([`aero_io::ShapeOrder`]), their shapes reversed and the
//! alignment padding their tensors may carry (spec §16.5) left out, so such
//! a file and this project's conversion of the same GGUF compare identical.
//!
//! ```no_run
//! use aero_convert::diff::{diff, DiffOptions};
//! let a = aero_io::AeroFile::open("a.aero")?;
//! let b = aero_io::AeroFile::open("b.aero")?;
//! let r = diff(&a, &b, &DiffOptions { numeric: true })?;
//! println!("identical: {}", r.identical());
//! # Ok::<(), aero_convert::state_dict::StateDictError>(())
//! ```

pub mod foreign;

use aero_io::TensorInfo;
use serde::Serialize;

use crate::floats::F32Pieces;
use crate::state_dict::{StateDictError, TensorSource};
use aero_io::ShapeOrder;

/// What to compare beyond names, dtypes, shapes and bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiffOptions {
    /// Compute max abs/rel error and cosine similarity of differing tensors.
    pub numeric: bool,
}

/// One side's view of a tensor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Side {
    /// The dtype name (`f16`, …), or the ggml type name (`Q4_K`) of a
    /// packed tensor converted from GGUF.
    pub dtype: String,
    /// Row-major shape.
    pub shape: Vec<u64>,
    /// The tensor's bytes (stored bytes less the alignment padding of a
    /// reference GGUF-origin tensor, [`aero_io::TensorInfo::tensor_len`]).
    pub bytes: u64,
}

/// Numeric comparison of two tensors' values.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Numeric {
    /// Both tensors' values were compared.
    Compared {
        /// Elements compared.
        elements: u64,
        /// max |a − b| (infinite when one side is NaN or infinite and the
        /// other is not the same value).
        max_abs_err: f64,
        /// max |a − b| / max(|a|, |b|) over elements not both zero.
        max_rel_err: f64,
        /// a·b / (|a| |b|) over the elements finite on both sides; `None`
        /// (JSON `null`) when it is undefined: a side with no finite
        /// non-zero value (all zeros, all NaN) has no direction.
        cosine: Option<f64>,
    },
    /// The element counts differ.
    ElementCountDiffers,
    /// A side cannot be expressed as floats (e.g. a ggml type that cannot be
    /// dequantized, FP8).
    Unavailable {
        /// Why (the dtype or ggml type). Free text, shown in the diff; the
        /// variant is what a caller acts on.
        reason: String,
    },
}

/// A tensor present on both sides.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorDiff {
    /// Its name.
    pub name: String,
    /// Side A.
    pub a: Side,
    /// Side B.
    pub b: Side,
    /// Whether the dtypes (or ggml types) differ.
    pub dtype_changed: bool,
    /// Whether the shapes differ.
    pub shape_changed: bool,
    /// Whether dtype, shape and bytes are all the same.
    pub identical: bool,
    /// Whether the stored bytes are the same (both sides verified first).
    pub bytes_identical: bool,
    /// With [`DiffOptions::numeric`], for tensors that are not identical.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numeric: Option<Numeric>,
}

/// The result of [`diff`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DiffReport {
    /// Names only side A has, in A's order.
    pub only_in_a: Vec<String>,
    /// Names only side B has, in B's order.
    pub only_in_b: Vec<String>,
    /// Tensors in both, in A's order.
    pub tensors: Vec<TensorDiff>,
    /// Whether the tensors common to both come in a different order in B.
    pub order_changed: bool,
}

impl DiffReport {
    /// No tensor only in one side and every common tensor identical (the
    /// order may differ: the same tensors in another order are the same
    /// model).
    pub fn identical(&self) -> bool {
        self.only_in_a.is_empty()
            && self.only_in_b.is_empty()
            && self.tensors.iter().all(|t| t.identical)
    }

    /// The common tensors that are not identical.
    pub fn changed(&self) -> impl Iterator<Item = &TensorDiff> {
        self.tensors.iter().filter(|t| !t.identical)
    }
}

fn side(t: &TensorInfo, order: ShapeOrder) -> Side {
    let dtype = crate::describe::dtype_name(t);
    Side {
        dtype,
        shape: t.row_major_shape(order),
        bytes: t.tensor_len(order),
    }
}

/// Compares `a` with `b` (see the module docs). Errors are those of reading
/// either side: a tensor failing verification is an error, not a
/// difference. A tensor that cannot be compared numerically is reported,
/// not an error.
pub fn diff(
    a: &dyn TensorSource,
    b: &dyn TensorSource,
    opts: &DiffOptions,
) -> Result<DiffReport, StateDictError> {
    let (ia, ib) = (a.tensor_index()?, b.tensor_index()?);
    let (order_a, order_b) = (a.shape_order()?, b.shape_order()?);
    let mut report = DiffReport {
        only_in_a: Vec::new(),
        only_in_b: Vec::new(),
        tensors: Vec::new(),
        order_changed: false,
    };
    let b_pos: std::collections::HashMap<&str, usize> = ib
        .tensors()
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let mut b_positions = Vec::new();
    for ta in ia.tensors() {
        let Some((tb, pos)) = b_pos
            .get(ta.name.as_str())
            .and_then(|&p| Some((ib.tensors().get(p)?, p)))
        else {
            report.only_in_a.push(ta.name.clone());
            continue;
        };
        b_positions.push(pos);
        let (sa, sb) = (side(ta, order_a), side(tb, order_b));
        let dtype_changed = sa.dtype != sb.dtype;
        let shape_changed = sa.shape != sb.shape;
        // Both sides proven first (see the module docs), then compared.
        let same_bytes = {
            let va = a.verified(&ta.name)?;
            let vb = b.verified(&tb.name)?;
            va.bytes() == vb.bytes()
        };
        let identical = same_bytes && !dtype_changed && !shape_changed;
        let numeric = (opts.numeric && !identical)
            .then(|| numeric(a, b, &ta.name))
            .transpose()?;
        report.tensors.push(TensorDiff {
            name: ta.name.clone(),
            a: sa,
            b: sb,
            dtype_changed,
            shape_changed,
            identical,
            bytes_identical: same_bytes,
            numeric,
        });
    }
    let a_names: std::collections::HashSet<&str> =
        ia.tensors().iter().map(|t| t.name.as_str()).collect();
    report.order_changed = b_positions.windows(2).any(|w| w[0] > w[1]);
    for tb in ib.tensors() {
        if !a_names.contains(tb.name.as_str()) {
            report.only_in_b.push(tb.name.clone());
        }
    }
    Ok(report)
}

/// Bytes of f32 values each side of `diff --numeric` holds at a time.
const PIECE: u64 = 4 << 20;

/// A tensor's values as f32 pieces, or why they cannot be had.
/// Verification and I/O failures are errors; a tensor that is not
/// expressible as floats is `Err(Ok(reason))`.
fn pieces<'a>(
    src: &'a dyn TensorSource,
    name: &str,
) -> Result<Result<F32Pieces<'a>, String>, StateDictError> {
    match F32Pieces::new(src, name, PIECE) {
        Ok(p) => Ok(Ok(p)),
        Err(e @ (StateDictError::Unsupported { .. } | StateDictError::Invalid { .. })) => {
            Ok(Err(e.to_string()))
        }
        Err(e) => Err(e),
    }
}

/// Compares the two tensors' values piece by piece (memory: a piece of
/// each, not two whole tensors of f32).
fn numeric(
    a: &dyn TensorSource,
    b: &dyn TensorSource,
    name: &str,
) -> Result<Numeric, StateDictError> {
    let mut pa = match pieces(a, name)? {
        Ok(p) => p,
        Err(reason) => return Ok(Numeric::Unavailable { reason }),
    };
    let mut pb = match pieces(b, name)? {
        Ok(p) => p,
        Err(reason) => return Ok(Numeric::Unavailable { reason }),
    };
    if pa.elements != pb.elements {
        return Ok(Numeric::ElementCountDiffers);
    }
    let (mut va, mut vb) = (Vec::new(), Vec::new());
    let (mut ia, mut ib) = (0usize, 0usize);
    let mut acc = Acc::default();
    loop {
        if ia == va.len() {
            if !pa.next_into(&mut va)? {
                break;
            }
            ia = 0;
            continue;
        }
        if ib == vb.len() {
            if !pb.next_into(&mut vb)? {
                break;
            }
            ib = 0;
            continue;
        }
        let k = (va.len() - ia).min(vb.len() - ib);
        acc.add(&va[ia..ia + k], &vb[ib..ib + k]);
        ia += k;
        ib += k;
    }
    Ok(acc.finish())
}

/// Running max abs/rel error and the sums of the cosine similarity.
#[derive(Default)]
struct Acc {
    max_abs: f64,
    max_rel: f64,
    dot: f64,
    na: f64,
    nb: f64,
    n: u64,
}

impl Acc {
    fn add(&mut self, a: &[f32], b: &[f32]) {
        for (&x, &y) in a.iter().zip(b) {
            let (x, y) = (f64::from(x), f64::from(y));
            let same = x == y || (x.is_nan() && y.is_nan());
            let d = if same { 0.0 } else { (x - y).abs() };
            let d = if d.is_nan() { f64::INFINITY } else { d };
            self.max_abs = self.max_abs.max(d);
            let m = x.abs().max(y.abs());
            if d > 0.0 && m > 0.0 {
                let r = if m.is_finite() { d / m } else { f64::INFINITY };
                self.max_rel = self.max_rel.max(r);
            }
            if x.is_finite() && y.is_finite() {
                self.dot += x * y;
                self.na += x * x;
                self.nb += y * y;
            }
        }
        self.n += a.len().min(b.len()) as u64;
    }

    fn finish(self) -> Numeric {
        let cosine =
            (self.na > 0.0 && self.nb > 0.0).then(|| self.dot / (self.na.sqrt() * self.nb.sqrt()));
        Numeric::Compared {
            elements: self.n,
            max_abs_err: self.max_abs,
            max_rel_err: self.max_rel,
            cosine,
        }
    }
}

/// Max abs/rel error and cosine similarity of two equally long slices.
pub fn compare(a: &[f32], b: &[f32]) -> Numeric {
    let mut acc = Acc::default();
    acc.add(a, b);
    acc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_basics() {
        let Numeric::Compared {
            max_abs_err,
            max_rel_err,
            cosine,
            ..
        } = compare(&[1.0, 2.0, 0.0], &[1.0, 2.5, 0.0])
        else {
            panic!("not compared")
        };
        assert_eq!(max_abs_err, 0.5);
        assert_eq!(max_rel_err, 0.2);
        assert!(cosine.is_some_and(|c| c > 0.99 && c < 1.0));
        for (a, b) in [([0.0f32], [0.0f32]), ([0.0], [1.0]), ([f32::NAN], [1.0])] {
            assert!(matches!(
                compare(&a, &b),
                Numeric::Compared { cosine: None, .. }
            ));
        }
    }
}
