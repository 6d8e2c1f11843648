//! Nearest tensor names, for "no tensor named …" messages: every reader
//! (the CLI, the C ABI, Python) names the tensors a mistyped name most
//! likely meant.

/// At most this many suggestions.
pub const MAX_SUGGESTIONS: usize = 3;

/// The names in `candidates` closest to `wanted`, best first (at most
/// [`MAX_SUGGESTIONS`]): names that contain `wanted` or end with it
/// (`q_proj.weight` → `model.layers.0.self_attn.q_proj.weight`), then
/// names similar by Jaro-Winkler (≥ 0.85: a typo, a wrong layer number).
/// Ties keep the candidates' order; empty when nothing is close.
pub fn nearest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut scored: Vec<(f64, usize, &str)> = Vec::new();
    for (i, c) in candidates.into_iter().enumerate() {
        // Containment only for a name long enough to mean something
        // (`x` is in half the names).
        let contained = wanted.len() >= 4 && c.contains(wanted);
        let score = if contained {
            // Containment beats any similarity; the shorter extra text wins.
            2.0 - (c.len().abs_diff(wanted.len()) as f64 / (c.len() + wanted.len()) as f64)
        } else {
            strsim::jaro_winkler(wanted, c)
        };
        if score >= 0.85 {
            scored.push((score, i, c));
        }
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, _, c)| c.to_owned())
        .collect()
}

/// `" (did you mean 'a', 'b'?)"`, or nothing without suggestions: the tail
/// of a "no tensor named" message.
pub fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        return String::new();
    }
    let list: Vec<String> = suggestions.iter().map(|s| format!("'{s}'")).collect();
    format!(" (did you mean {}?)", list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_and_suffixes_find_their_names() {
        let names = [
            "model.layers.0.self_attn.q_proj.weight",
            "model.layers.0.self_attn.k_proj.weight",
            "model.norm.weight",
            "lm_head.weight",
        ];
        assert_eq!(nearest("lm_haed.weight", names), ["lm_head.weight"]);
        assert_eq!(
            nearest("q_proj.weight", names),
            ["model.layers.0.self_attn.q_proj.weight"]
        );
        assert!(nearest("zzzz", names).is_empty());
        assert_eq!(did_you_mean(&[]), "");
        assert_eq!(
            did_you_mean(&["a".into(), "b".into()]),
            " (did you mean 'a', 'b'?)"
        );
    }
}
