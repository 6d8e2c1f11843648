//! The llama family's side of the state dict: llama.cpp's GGUF tensor names
//! mapped to Hugging Face names, and the Q/K row permutation
//! `convert_hf_to_gguf.py` applies, undone (with the head counts it needs
//! from the GGUF key/values kept in MJSN).

use serde_json::Value;

/// The Hugging Face name of a llama-family GGUF tensor name, `None` for a
/// name without one (it is then kept as it is).
///
/// ```
/// use aero_convert::state_dict::hf_name;
/// assert_eq!(hf_name("token_embd.weight").as_deref(), Some("model.embed_tokens.weight"));
/// assert_eq!(
///     hf_name("blk.3.attn_q.weight").as_deref(),
///     Some("model.layers.3.self_attn.q_proj.weight")
/// );
/// assert_eq!(hf_name("blk.0.ffn_norm.weight").as_deref(),
///            Some("model.layers.0.post_attention_layernorm.weight"));
/// assert_eq!(hf_name("rope_freqs.weight"), None);
/// ```
pub fn hf_name(gguf: &str) -> Option<String> {
    let (stem, suffix) = gguf.rsplit_once('.')?;
    if suffix != "weight" && suffix != "bias" {
        return None;
    }
    let top = match stem {
        "token_embd" => Some("model.embed_tokens"),
        "output_norm" => Some("model.norm"),
        "output" => Some("lm_head"),
        _ => None,
    };
    if let Some(t) = top {
        return Some(format!("{t}.{suffix}"));
    }
    let rest = stem.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    if layer.is_empty() || !layer.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hf = match part {
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{suffix}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Qk {
    Q,
    K,
}

/// `blk.N.attn_q.{weight,bias}` / `attn_k`: (N, which).
pub(super) fn qk_tensor(name: &str) -> Option<(u64, Qk)> {
    let rest = name.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: u64 = layer.parse().ok()?;
    let kind = match part {
        "attn_q.weight" | "attn_q.bias" => Qk::Q,
        "attn_k.weight" | "attn_k.bias" => Qk::K,
        _ => return None,
    };
    Some((layer, kind))
}

/// Architectures whose Q/K rows llama.cpp's `convert_hf_to_gguf.py`
/// permutes (`LlamaModel.permute`): the `llama` architecture (Llama 1–3,
/// Mistral and Mixtral are all written as `llama`).
const PERMUTED_ARCHITECTURES: &[&str] = &["llama"];

/// Head counts from MJSN `gguf.metadata` (kept by our GGUF converter).
#[derive(Clone, Debug, Default)]
pub(super) struct HeadCounts {
    /// `general.architecture`, when known.
    arch: Option<String>,
    head_count: Option<Counts>,
    head_count_kv: Option<Counts>,
}

/// A scalar or a per-layer array (`{arch}.attention.head_count` may be either).
#[derive(Clone, Debug)]
enum Counts {
    All(u64),
    PerLayer(Vec<u64>),
}

impl Counts {
    fn parse(v: &Value) -> Option<Counts> {
        if let Some(n) = v.as_u64() {
            return Some(Counts::All(n));
        }
        let items = v.get("items")?.as_array()?;
        items
            .iter()
            .map(Value::as_u64)
            .collect::<Option<Vec<u64>>>()
            .map(Counts::PerLayer)
    }

    fn layer(&self, layer: u64) -> Option<u64> {
        match self {
            Counts::All(n) => Some(*n),
            Counts::PerLayer(v) => v.get(usize::try_from(layer).ok()?).copied(),
        }
    }
}

impl HeadCounts {
    pub(super) fn from_meta(meta: &Value) -> HeadCounts {
        let kv = meta
            .pointer("/gguf/metadata")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let get = |key: &str| {
            kv.iter()
                .find(|e| e.get(0).and_then(Value::as_str) == Some(key))
                .and_then(|e| e.get(2))
        };
        let arch = get("general.architecture")
            .and_then(Value::as_str)
            .or_else(|| meta.get("architecture").and_then(Value::as_str))
            .map(str::to_owned);
        let (head_count, head_count_kv) = match &arch {
            Some(a) => (
                get(&format!("{a}.attention.head_count")).and_then(Counts::parse),
                get(&format!("{a}.attention.head_count_kv")).and_then(Counts::parse),
            ),
            None => (None, None),
        };
        HeadCounts {
            arch,
            head_count,
            head_count_kv,
        }
    }

    /// The head count to undo the permutation of layer `layer`'s Q or K
    /// with; `None` when the architecture's converter does not permute.
    pub(super) fn for_tensor(
        &self,
        layer: u64,
        kind: Qk,
    ) -> std::result::Result<Option<u64>, String> {
        let Some(arch) = self.arch.as_deref() else {
            return Err(
                "the GGUF architecture is unknown, so whether llama.cpp permuted \
                        its Q/K rows cannot be told"
                    .into(),
            );
        };
        if !PERMUTED_ARCHITECTURES.contains(&arch) {
            return Ok(None);
        }
        let missing = || {
            format!(
                "{arch}.attention.head_count is not in MJSN gguf.metadata (a file from the \
                 reference converter loses the GGUF key/values; convert the GGUF with \
                 aerotensor), so llama.cpp's Q/K permutation cannot be undone"
            )
        };
        let q = self
            .head_count
            .as_ref()
            .and_then(|c| c.layer(layer))
            .ok_or_else(missing)?;
        Ok(Some(match kind {
            Qk::Q => q,
            Qk::K => self
                .head_count_kv
                .as_ref()
                .and_then(|c| c.layer(layer))
                .unwrap_or(q),
        }))
    }
}

/// Undoes llama.cpp's Q/K row permutation: `convert_hf_to_gguf.py` stores
/// `w.reshape(n_head, 2, rows / n_head / 2, ...).swapaxes(1, 2)`, so GGUF
/// row `h·d + 2j + i` holds Hugging Face row `h·d + i·d/2 + j` (`d` =
/// rows / n_head). `data` is `rows` rows of `row_len` values; returns the
/// rows in Hugging Face order. Returns `data` unchanged when `rows` is not
/// a multiple of `2 · n_head` (the planner refuses those).
///
/// ```
/// use aero_convert::state_dict::unpermute_rows;
/// // One head of 4 rows: GGUF order is HF rows 0, 2, 1, 3.
/// assert_eq!(unpermute_rows(&[0, 2, 1, 3], 4, 1, 1), vec![0, 1, 2, 3]);
/// ```
pub fn unpermute_rows<T: Copy>(data: &[T], rows: usize, row_len: usize, n_head: usize) -> Vec<T> {
    let mut out = data.to_vec();
    if n_head == 0 || !rows.is_multiple_of(2 * n_head) || data.len() != rows * row_len {
        return out;
    }
    let d = rows / n_head;
    let half = d / 2;
    for h in 0..n_head {
        for j in 0..half {
            for i in 0..2 {
                let src = (h * d + 2 * j + i) * row_len;
                let dst = (h * d + i * half + j) * row_len;
                out[dst..dst + row_len].copy_from_slice(&data[src..src + row_len]);
            }
        }
    }
    out
}
