//! Suggested fixes: what a rule's `suggest` gets (the finding, the line it is commented on, a way to read
//! the head's lines), and line-editing helpers shared by the rules whose fix is a mechanical edit of one line.
//! A suggestion replaces the commented line (empty deletes it); it must leave valid YAML (or a valid
//! Dockerfile) and make the finding go away, which the tests check by applying it.

use crate::finding::Finding;

/// Where a suggestion would go.
pub struct FixCx<'a> {
    pub finding: &'a Finding,
    /// The commented file and line (1-based), and what kind of place it is (`manifest`, `values`,
    /// `template`, `resource`, `dockerfile`, …).
    pub file: &'a str,
    pub line: u32,
    pub kind: &'static str,
    /// A line of the head side (`file`, 1-based `line`), secrets redacted.
    pub head_line: &'a dyn Fn(&str, u32) -> Option<String>,
}

impl FixCx<'_> {
    /// The commented line's text.
    pub fn text(&self) -> Option<String> {
        (self.head_line)(self.file, self.line)
    }

    /// The commented line replaced by `text` (empty deletes it).
    pub fn replace_line(&self, text: String) -> Suggestion {
        Suggestion { first: self.line, last: self.line, text }
    }
}

/// A suggested edit of the head side: lines `first..=last` (1-based; they include the commented line) replaced by
/// `text` (its lines; empty deletes them). GitHub shows a range as a multi-line comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub first: u32,
    pub last: u32,
    pub text: String,
}

/// `key: value` of a block-mapping line (key unquoted, not a list item), value without its comment.
pub fn key_value(line: &str) -> Option<(&str, &str)> {
    let t = line.trim();
    if t.starts_with('-') || t.starts_with('#') {
        return None;
    }
    let (key, rest) = t.split_once(':')?;
    let key = key.trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return None;
    }
    Some((key, strip_comment(rest).trim()))
}

pub fn strip_comment(value: &str) -> &str {
    match value.find(" #") {
        Some(i) => &value[..i],
        None => value,
    }
}

/// A scalar wholly on this line, so deleting the line leaves valid YAML.
pub fn deletable_value(value: &str) -> bool {
    if value.is_empty() {
        return false;
    }
    if value.starts_with("{{") {
        return true;
    }
    let quoted_open = |q: char| value.starts_with(q) && (value.len() < 2 || !value.ends_with(q));
    !value.starts_with(['|', '>', '{', '[', '&', '!']) && !quoted_open('"') && !quoted_open('\'')
}

/// `  namespace: default` → `  namespace: NAME`, keeping indentation, quotes and a trailing comment.
pub fn replace_default_namespace(line: &str, name: &str) -> Option<String> {
    let indent = line.len() - line.trim_start().len();
    let after_key = indent + line[indent..].strip_prefix("namespace:").map(|_| "namespace:".len())?;
    let rest = &line[after_key..];
    let value = strip_comment(rest);
    let start = after_key + (value.len() - value.trim_start().len());
    let token = value.trim();
    if !matches!(token, "default" | "\"default\"" | "'default'") {
        return None;
    }
    let end = start + token.len();
    Some(format!("{}{}{}", &line[..start], token.replace("default", name), &line[end..]))
}

/// The app name from the labels of the document around `line` (`app.kubernetes.io/name`, `app`,
/// `app.kubernetes.io/part-of`, `app.kubernetes.io/instance`, as `Object::app_name`), read through
/// `head_line` up to [`APP_SCAN`] lines each way and never past a `---`. Templated values are skipped.
pub fn app_name_near(head_line: &dyn Fn(&str, u32) -> Option<String>, file: &str, line: u32) -> Option<String> {
    let mut lines = Vec::new();
    let mut l = line;
    while l > 1 && line - l < APP_SCAN {
        l -= 1;
        match head_line(file, l) {
            Some(t) if !t.starts_with("---") => lines.push(t),
            _ => break,
        }
    }
    let mut l = line;
    while l - line < APP_SCAN {
        let Some(next) = l.checked_add(1) else { break };
        l = next;
        match head_line(file, l) {
            Some(t) if !t.starts_with("---") => lines.push(t),
            _ => break,
        }
    }
    ["app.kubernetes.io/name", "app", "app.kubernetes.io/part-of", "app.kubernetes.io/instance"].iter().find_map(
        |label| {
            lines.iter().find_map(|t| {
                let (key, value) = key_value(t)?;
                let key = key.trim_matches(['"', '\'']);
                let value = value.trim_matches(['"', '\'']);
                (key == *label && is_dns_label(value)).then(|| value.to_string())
            })
        },
    )
}

const APP_SCAN: u32 = 200;

/// A valid namespace name (RFC 1123 label).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// How far [`same_key_under_sibling`] reads around the commented line.
const SIBLING_SCAN: u32 = 40;

pub fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

pub fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// For a block-mapping line `key: value` under `parent:` (e.g. `memory: 1Gi` under `limits:`), the value of
/// the same `key` under the parent's sibling block `sibling:` (e.g. `requests:`), read through `head_line`
/// within [`SIBLING_SCAN`] lines, never past a `---`. `None` for flow style, templates, or anything unsure.
pub fn same_key_under_sibling(
    head_line: &dyn Fn(&str, u32) -> Option<String>,
    file: &str,
    line: u32,
    parent: &str,
    sibling: &str,
) -> Option<String> {
    let here = head_line(file, line)?;
    let (key, _) = key_value(&here)?;
    let child_indent = indent_of(&here);
    // The parent: the nearest line above with less indentation.
    let mut at = line;
    let (parent_line, parent_indent) = loop {
        at = at.checked_sub(1).filter(|l| *l >= 1 && line - *l <= SIBLING_SCAN)?;
        let text = head_line(file, at)?;
        if text.trim_start().starts_with("---") {
            return None;
        }
        if is_blank_or_comment(&text) || indent_of(&text) >= child_indent {
            continue;
        }
        let indent = indent_of(&text);
        break (text, indent);
    };
    if key_value(&parent_line) != Some((parent, "")) {
        return None;
    }
    // The sibling block: a line at the parent's indentation, above or below, within the grandparent block.
    let in_block = |l: u32| -> Option<Option<String>> {
        let text = head_line(file, l)?;
        if text.trim_start().starts_with("---") || (!is_blank_or_comment(&text) && indent_of(&text) < parent_indent) {
            return None;
        }
        Some(Some(text))
    };
    let mut sibling_at = None;
    for direction in [-1i64, 1] {
        let mut l = i64::from(at);
        for _ in 0..SIBLING_SCAN {
            l += direction;
            let Ok(candidate) = u32::try_from(l) else { break };
            if candidate == 0 {
                break;
            }
            let Some(Some(text)) = in_block(candidate) else { break };
            if indent_of(&text) == parent_indent && key_value(&text) == Some((sibling, "")) {
                sibling_at = Some(candidate);
                break;
            }
        }
        if sibling_at.is_some() {
            break;
        }
    }
    // The same key among the sibling block's children.
    let start = sibling_at?;
    for l in start + 1..=start + SIBLING_SCAN {
        let text = head_line(file, l)?;
        if is_blank_or_comment(&text) {
            continue;
        }
        if indent_of(&text) <= parent_indent {
            return None;
        }
        if let Some((k, v)) = key_value(&text)
            && k == key
        {
            return (!v.is_empty() && !v.contains("{{") && deletable_value(v)).then(|| v.to_string());
        }
    }
    None
}

/// `  key: old  # note` → `  key: NEW  # note`, keeping indentation and a trailing comment.
pub fn replace_value(line: &str, value: &str) -> Option<String> {
    let (key, old) = key_value(line)?;
    if old.is_empty() {
        return None;
    }
    let key_end = line.find(key)? + key.len();
    let colon = key_end + line[key_end..].find(':')?;
    let old_start = colon + 1 + line[colon + 1..].find(old)?;
    Some(format!("{}{}{}", &line[..old_start], value, &line[old_start + old.len()..]))
}
