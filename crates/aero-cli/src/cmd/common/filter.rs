//! `--filter PATTERN` of `inspect`, `list` and `inspect-set`.

use aero_io::TensorInfo;

use crate::out;

/// `--filter PATTERN`: a glob (`*`, `?`, `[…]`) matched against the whole
/// tensor name, or, without glob characters, a substring.
pub(crate) enum NameFilter {
    /// No filter: every name.
    All,
    /// A substring.
    Contains(String),
    /// A glob over the whole name.
    Glob(glob::Pattern),
}

impl NameFilter {
    pub(crate) fn new(pattern: Option<&str>) -> anyhow::Result<NameFilter> {
        Ok(match pattern {
            None => NameFilter::All,
            Some(p) if p.contains(['*', '?', '[']) => NameFilter::Glob(
                glob::Pattern::new(p).map_err(|e| anyhow::anyhow!("--filter {p:?}: {e}"))?,
            ),
            Some(p) => NameFilter::Contains(p.to_owned()),
        })
    }

    pub(crate) fn matches(&self, name: &str) -> bool {
        match self {
            NameFilter::All => true,
            NameFilter::Contains(s) => name.contains(s.as_str()),
            NameFilter::Glob(g) => g.matches(name),
        }
    }
}

/// The tensors `--filter` keeps.
pub(crate) fn filtered(
    tensors: &[TensorInfo],
    pattern: Option<&str>,
) -> anyhow::Result<Vec<TensorInfo>> {
    let f = NameFilter::new(pattern)?;
    Ok(tensors
        .iter()
        .filter(|t| f.matches(&t.name))
        .cloned()
        .collect())
}

/// Says on stderr that `--filter` left nothing to show (stdout keeps its
/// format: an empty table or `"tensors": []`).
pub(crate) fn no_match(filter: Option<&str>) {
    if let Some(f) = filter {
        eprintln!(
            "aerotensor: note: no tensor name matches {}",
            out::clean(&format!("{f:?}"))
        );
    }
}
