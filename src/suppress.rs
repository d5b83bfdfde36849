//! Suppression: `# kpath:ignore rule-id[,rule-id] reason` comments (on the finding's line or the line
//! above), the `kpath/ignore` object annotation, and `.kpath.yml` waivers. Suppressed findings are kept
//! and marked, so JSON output still shows them with the reason.

use std::collections::HashMap;

use crate::config::Config;
use crate::finding::{Finding, Suppression};

/// The rules an object's `kpath/ignore` annotation lists (comma-separated), if any.
pub fn annotated(object: &crate::model::Object<'_>) -> Option<Vec<String>> {
    let rules: Vec<String> =
        object.annotation("kpath/ignore")?.split(',').map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).collect();
    (!rules.is_empty()).then_some(rules)
}

/// One `# kpath:ignore` comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreComment {
    pub line: u32,
    pub rules: Vec<String>,
    pub reason: String,
    /// True when the comment is the whole line (it then covers the line below).
    pub own_line: bool,
}

/// Finds `kpath:ignore` comments in YAML or Dockerfile text. A `#` inside a quoted YAML string is
/// not a comment; we only accept `#` at the start of the line or after whitespace, as YAML does.
pub fn scan_comments(text: &str) -> Vec<IgnoreComment> {
    let mut out = Vec::new();
    if !text.contains("kpath:ignore") {
        return out;
    }
    for (i, line) in text.lines().enumerate() {
        let Some(idx) = line.find("kpath:ignore") else { continue };
        let before = &line[..idx];
        let Some(hash) = before.rfind('#') else { continue };
        if !before[hash + 1..].trim().is_empty() || (hash > 0 && !before[..hash].ends_with([' ', '\t'])) {
            continue;
        }
        let rest = line[idx + "kpath:ignore".len()..].trim();
        let (ids, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let rules: Vec<String> = ids.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        if rules.is_empty() {
            continue;
        }
        out.push(IgnoreComment {
            line: i as u32 + 1,
            rules,
            reason: reason.trim().to_string(),
            own_line: before[..hash].trim().is_empty(),
        });
    }
    out
}

/// Everything needed to decide whether a finding is suppressed.
#[derive(Debug, Default)]
pub struct SuppressionIndex {
    pub comments: HashMap<String, Vec<IgnoreComment>>,
    /// (file, document) → rules listed in the object's `kpath/ignore` annotation.
    pub annotations: HashMap<(String, usize), Vec<String>>,
}

fn names(rules: &[String], rule: &str) -> bool {
    rules.iter().any(|r| r == rule || r == "*" || r == "all")
}

impl SuppressionIndex {
    pub fn apply(&self, finding: &mut Finding, config: &Config, today: (i32, u32, u32)) {
        if let Some(comments) = self.comments.get(&finding.file) {
            let hit = comments.iter().find(|c| {
                names(&c.rules, finding.rule) && (c.line == finding.line || (c.own_line && c.line + 1 == finding.line))
            });
            if let Some(c) = hit {
                finding.suppressed = Some(Suppression {
                    kind: "comment",
                    reason: if c.reason.is_empty() { "kpath:ignore comment".into() } else { c.reason.clone() },
                });
                return;
            }
        }
        if let Some(doc) = finding.document
            && let Some(rules) =
                self.annotations.get(&(finding.origin.clone().unwrap_or_else(|| finding.file.clone()), doc))
            && names(rules, finding.rule)
        {
            finding.suppressed = Some(Suppression { kind: "annotation", reason: "kpath/ignore annotation".into() });
            return;
        }
        for waiver in &config.waivers {
            if !waiver.matches(finding.rule, &finding.file, finding.object.as_deref()) {
                continue;
            }
            if waiver.expired(today) {
                let (y, m, d) = waiver.expires.unwrap_or_default();
                finding.help.to_mut().push_str(&format!(
                    " (a waiver at {}:{} matched but expired on {y:04}-{m:02}-{d:02})",
                    config.source.as_deref().unwrap_or(crate::config::FILE_NAME),
                    waiver.line
                ));
                continue;
            }
            finding.suppressed = Some(Suppression { kind: "waiver", reason: waiver.reason.clone() });
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments() {
        let text = "a: 1 # kpath:ignore image-latest pinned upstream\n# kpath:ignore rule-a,rule-b\nb: 2\nc: \"#kpath:ignore x\"\n";
        let c = scan_comments(text);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].line, 1);
        assert!(!c[0].own_line);
        assert_eq!(c[0].reason, "pinned upstream");
        assert_eq!(c[1].rules, vec!["rule-a", "rule-b"]);
        assert!(c[1].own_line);
    }
}
