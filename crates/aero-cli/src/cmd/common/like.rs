//! `--like OLD_SET`: write a converted AEROSET as a new revision of
//! OLD_SET, on its plan (`aero_set::plan`), so every part whose tensors did
//! not change comes out byte-identical.

use std::path::{Path, PathBuf};

use aero_set::{SetPlan, SetWriteSummary};
use anyhow::Context;
use clap::Args;
use serde_json::{Map, Value, json};

use crate::out;
use crate::remote::Opener;

/// The `--like` flag of the commands that write AEROSETs.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct LikeArgs {
    /// Write the AEROSET as a new revision of OLD_SET (a set, its manifest
    /// or URL; often OUT itself): its part file names, tensor-to-part
    /// assignment, shard ids and UUIDs are kept, so every part whose tensors
    /// did not change comes out byte-identical and an update ships only the
    /// changed parts (plus index and manifest). New tensors go to new parts;
    /// use the same writer flags as for OLD_SET.
    #[arg(long, value_name = "OLD_SET", conflicts_with = "uuid")]
    pub(crate) like: Option<PathBuf>,
}

impl LikeArgs {
    /// The plan of OLD_SET, when given: read from its manifest, index and
    /// part headers (no weights).
    pub(crate) fn plan(&self, opener: &Opener) -> anyhow::Result<Option<SetPlan>> {
        let Some(like) = &self.like else {
            return Ok(None);
        };
        let set = opener
            .open_set(like)
            .with_context(|| format!("--like {}", like.display()))?;
        let plan = SetPlan::of_set(&set).with_context(|| format!("--like {}", like.display()))?;
        Ok(Some(plan))
    }

    /// The parts identical to OLD_SET's and the others (new or changed).
    fn split<'s>(&self, s: &'s SetWriteSummary) -> (&'s [String], Vec<&'s str>) {
        let changed = s
            .manifest
            .parts
            .iter()
            .map(|p| p.file.path.as_str())
            .filter(|p| !s.identical_parts.iter().any(|i| i == p))
            .collect();
        (&s.identical_parts, changed)
    }

    /// After the write, for `--json`: `like`, `identical_parts` and
    /// `changed_parts` (new or changed) in the summary.
    pub(crate) fn json(&self, s: &SetWriteSummary, extra: &mut Map<String, Value>) {
        let Some(like) = &self.like else {
            return;
        };
        let (identical, changed) = self.split(s);
        extra.insert("like".into(), json!(show(like)));
        extra.insert("identical_parts".into(), json!(identical));
        extra.insert("changed_parts".into(), json!(changed));
    }

    /// After the write's summary line: which parts are identical to
    /// OLD_SET's, on stderr.
    pub(crate) fn print(&self, s: &SetWriteSummary) {
        let Some(like) = &self.like else {
            return;
        };
        let (identical, changed) = self.split(s);
        eprintln!(
            "  {} of {} parts identical to {}; new or changed: {}",
            identical.len(),
            s.manifest.parts.len(),
            out::clean(&show(like)),
            if changed.is_empty() {
                "none".to_string()
            } else {
                out::clean(&changed.join(", ")).into_owned()
            }
        );
    }
}

fn show(p: &Path) -> String {
    p.display().to_string()
}
