//! BLAKE3 tree arithmetic: chaining values of subtrees and how they merge
//! into a root hash (`blake3::hazmat`). Everything in this crate that
//! hashes a range as independent pieces ([`crate::verify::hash_range`] on
//! a local file, the one-pass shard scan of `validate --full`) takes its
//! pieces and their merge from here.
//!
//! A piece of the input is a subtree when it starts at a multiple of a
//! power of two at least as large as the piece; windows of a power-of-two
//! size laid end to end from offset 0 are such pieces, and so is each half
//! of one (split at [`left_subtree_len`]).

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root,
};

/// Subtrees at most this long are hashed by one rayon job.
const LEAF: usize = 2 << 20;

/// The chaining value of `bytes`, a subtree at input offset `at`, hashed
/// on the calling thread.
pub(crate) fn leaf_cv(bytes: &[u8], at: u64) -> ChainingValue {
    let mut h = blake3::Hasher::new();
    h.set_input_offset(at);
    h.update(bytes);
    h.finalize_non_root()
}

/// The chaining value of the subtree `bytes` at input offset `at` (which
/// the caller guarantees is a BLAKE3 subtree), split across rayon jobs.
pub(crate) fn subtree_cv(bytes: &[u8], at: u64) -> ChainingValue {
    if bytes.len() <= LEAF {
        return leaf_cv(bytes, at);
    }
    let left = left_subtree_len(bytes.len() as u64) as usize;
    let (l, r) = bytes.split_at(left);
    let (a, b) = rayon::join(|| subtree_cv(l, at), || subtree_cv(r, at + left as u64));
    merge_subtrees_non_root(&a, &b, Mode::Hash)
}

/// The BLAKE3 of a whole input, split across rayon jobs.
pub(crate) fn root_hash(bytes: &[u8]) -> blake3::Hash {
    if bytes.len() <= LEAF {
        return blake3::hash(bytes);
    }
    let left = left_subtree_len(bytes.len() as u64) as usize;
    let (l, r) = bytes.split_at(left);
    let (a, b) = rayon::join(|| subtree_cv(l, 0), || subtree_cv(r, left as u64));
    merge_subtrees_root(&a, &b, Mode::Hash)
}

/// Merges the chaining values of windows of `window` bytes (a power of two
/// of at least 1 KiB) that cover `len > window` bytes from offset 0 into
/// the root hash, as the BLAKE3 tree dictates; `None` when `cvs` holds too
/// few windows.
pub(crate) fn merge_windows(cvs: &[ChainingValue], window: u64, len: u64) -> Option<[u8; 32]> {
    let subtree = |lo: u64, hi: u64| -> Option<ChainingValue> {
        fn go(cvs: &[ChainingValue], w: u64, lo: u64, hi: u64) -> Option<ChainingValue> {
            if hi - lo <= w {
                return cvs.get((lo / w) as usize).copied();
            }
            let left = left_subtree_len(hi - lo);
            Some(merge_subtrees_non_root(
                &go(cvs, w, lo, lo + left)?,
                &go(cvs, w, lo + left, hi)?,
                Mode::Hash,
            ))
        }
        go(cvs, window, lo, hi)
    };
    let left = left_subtree_len(len);
    let l = subtree(0, left)?;
    let r = subtree(left, len)?;
    Some(*merge_subtrees_root(&l, &r, Mode::Hash).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        aero_test_support::bytes(0x2545_f491, n)
    }

    /// Windows hashed apart and merged give the plain BLAKE3 of the input,
    /// for every window count and a short last window.
    #[test]
    fn merged_windows_are_the_hash_of_the_whole() {
        let w = 4096u64;
        for n in [w + 1, 2 * w, 3 * w + 17, 8 * w, 9 * w - 1] {
            let b = data(n as usize);
            let cvs: Vec<ChainingValue> = b
                .chunks(w as usize)
                .enumerate()
                .map(|(i, c)| leaf_cv(c, i as u64 * w))
                .collect();
            assert_eq!(
                merge_windows(&cvs, w, n),
                Some(*blake3::hash(&b).as_bytes()),
                "n={n}"
            );
            assert_eq!(merge_windows(&cvs[..cvs.len() - 1], w, n), None);
        }
        let b = data(3 * LEAF + 5);
        assert_eq!(root_hash(&b), blake3::hash(&b));
    }

    #[test]
    fn a_page_digest_is_not_a_subtree_of_the_shard() {
        // Why the shard scan hashes pages separately: page 1 hashed on its
        // own differs from the same bytes as a subtree of the shard.
        let b = data(2 << 20);
        let (p0, p1) = b.split_at(1 << 20);
        let as_subtree = leaf_cv(p1, 1 << 20);
        let standalone = blake3::hash(p1);
        assert_ne!(&as_subtree, standalone.as_bytes());
        let cv0 = leaf_cv(p0, 0);
        assert_eq!(
            merge_subtrees_root(&cv0, &as_subtree, Mode::Hash),
            blake3::hash(&b)
        );
    }
}
