//! What kpath changes in `helm template`'s output before checking it, always by editing the text at the
//! positions kpath's YAML parser gives (and keeping the original when the edited text does not read back
//! as intended):
//! - the release namespace: when nothing says where a chart is installed, it is rendered into
//!   [`RELEASE_NAMESPACE`], and a `metadata.namespace` holding it is removed, so each object looks as
//!   `helm install -n <ns>` leaves it before the API server fills the namespace in;
//! - generated values: Secret values that differ between two renders of the same chart were produced
//!   at render time; they are replaced by a stable placeholder ([`GENERATED_TEXT`], [`GENERATED_BASE64`]).

use crate::yaml::{self, Node, NodeKind, Pos, Route, Segment, Style};

/// The namespace a chart is rendered into when its release namespace is decided at install time: a valid
/// DNS label that no chart is expected to write itself.
pub const RELEASE_NAMESPACE: &str = "kpath-release-namespace";

/// What a generated `stringData` (or other plain) value reads after rendering.
pub const GENERATED_TEXT: &str = "kpath-generated";
/// What a generated `data` value reads after rendering: [`GENERATED_TEXT`] in base64, so `data` stays valid.
pub const GENERATED_BASE64: &str = "a3BhdGgtZ2VuZXJhdGVk";

/// Template functions whose result changes from one render to the next (random text and bytes, UUIDs, keys
/// and certificates; `lookup`, which `helm template` answers with nothing, so charts fall back to one of
/// the others). From Sprig's string and crypto functions (<https://masterminds.github.io/sprig/strings.html>,
/// <https://masterminds.github.io/sprig/crypto.html>, <https://masterminds.github.io/sprig/uuid.html>) and
/// Helm's `lookup` (<https://helm.sh/docs/chart_template_guide/functions_and_pipelines/#using-the-lookup-function>).
///
/// `derivePassword` is not one: it derives the same password from a master password every time, and that
/// master password is written in the chart or its values. `bcrypt`, `htpasswd` and `encryptAES` salt a value
/// written elsewhere: they do not make a chart render twice, but in a chart that does, their output differs
/// too and is taken as generated (the plain value they hash is in a values file).
pub const GENERATING_FUNCTIONS: &[&str] = &[
    "randAlphaNum",
    "randAlpha",
    "randNumeric",
    "randAscii",
    "randBytes",
    "randInt",
    "uuidv4",
    "genPrivateKey",
    "genCA",
    "genCAWithKey",
    "genSelfSignedCert",
    "genSelfSignedCertWithKey",
    "genSignedCert",
    "genSignedCertWithKey",
    "lookup",
];

/// Whether a template's text calls one of [`GENERATING_FUNCTIONS`] (by word: `myrandAlphaNum` is not one).
/// Over-matching (the word in a comment) costs only a second render.
pub fn calls_generating_function(text: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    GENERATING_FUNCTIONS.iter().any(|name| {
        text.match_indices(name).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + name.len()..].chars().next();
            !before.is_some_and(|c| word(c) || c == '.' || c == '$') && !after.is_some_and(word)
        })
    })
}

/// Byte offsets of a text's lines, to turn parser positions (1-based line, column in characters) into edits.
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Lines { text, starts }
    }

    fn start(&self, line: u32) -> Option<usize> {
        self.starts.get(usize::try_from(line).ok()?.checked_sub(1)?).copied()
    }

    /// Offset of the line's `\n` (or the end of the text).
    fn end(&self, line: u32) -> Option<usize> {
        let start = self.start(line)?;
        Some(self.text[start..].find('\n').map_or(self.text.len(), |i| start + i))
    }

    fn offset(&self, pos: Pos) -> Option<usize> {
        let start = self.start(pos.line)?;
        let end = self.end(pos.line)?;
        let skip = usize::try_from(pos.col).ok()?.checked_sub(1)?;
        let line = &self.text[start..end];
        match line.char_indices().nth(skip) {
            Some((i, _)) => Some(start + i),
            None if line.chars().count() == skip => Some(end),
            None => None,
        }
    }
}

/// Applies non-overlapping `(start, end, replacement)` edits.
fn apply(text: &str, mut edits: Vec<(usize, usize, String)>) -> Option<String> {
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_string();
    let mut limit = text.len();
    for (start, end, replacement) in edits {
        if end > limit || start > end {
            return None;
        }
        out.replace_range(start..end, &replacement);
        limit = start;
    }
    Some(out)
}

/// Length of `value` as written at the start of `rest`: plain, or in single or double quotes.
fn written_len(rest: &str, value: &str) -> Option<usize> {
    let ends_plain = |tail: &str| tail.chars().next().is_none_or(|c| c.is_whitespace() || ",}]#".contains(c));
    if let Some(tail) = rest.strip_prefix(value)
        && ends_plain(tail)
    {
        return Some(value.len());
    }
    for quote in ['"', '\''] {
        if let Some(tail) = rest.strip_prefix(quote).and_then(|r| r.strip_prefix(value))
            && tail.starts_with(quote)
        {
            return Some(value.len() + 2);
        }
    }
    None
}

/// The edit that removes a mapping entry written on one line: the whole line in block style, the entry and
/// one comma beside it in flow style.
fn entry_removal(lines: &Lines<'_>, key: Pos, value: Pos, written: &str) -> Option<(usize, usize)> {
    if key.line != value.line {
        return None;
    }
    let text = lines.text;
    let (key_at, value_at) = (lines.offset(key)?, lines.offset(value)?);
    let value_end = value_at + written_len(&text[value_at..], written)?;
    let (line_start, line_end) = (lines.start(key.line)?, lines.end(key.line)?);
    let before = &text[line_start..key_at];
    let after = &text[value_end..line_end];
    if before.trim().is_empty() && (after.trim().is_empty() || after.trim_start().starts_with('#')) {
        return Some((line_start, (line_end + 1).min(text.len())));
    }
    if let Some(comma) = after.trim_start().strip_prefix(',') {
        let spaces = comma.len() - comma.trim_start_matches(' ').len();
        return Some((key_at, line_end - comma.len() + spaces));
    }
    let trimmed = before.trim_end_matches(' ');
    if trimmed.ends_with(',') {
        return Some((line_start + trimmed.len() - 1, value_end));
    }
    Some((key_at, value_end))
}

/// Removes `metadata.namespace: kpath-release-namespace` from a rendered document. Returns the text and
/// whether the entry was there; the text is unchanged when the edit would not read back (then the object
/// keeps the placeholder namespace, which is neither missing nor `default`).
pub fn remove_release_namespace(text: &str) -> (String, bool) {
    if !text.contains(RELEASE_NAMESPACE) {
        return (text.to_string(), false);
    }
    let (docs, broken) = yaml::parse_stream(text);
    if !broken.is_empty() {
        return (text.to_string(), false);
    }
    let lines = Lines::new(text);
    let mut edits = Vec::new();
    for root in docs.iter().filter_map(|d| d.root.as_ref()) {
        let Some(entry) = root.get("metadata").and_then(|m| m.entry("namespace")) else { continue };
        if entry.value.scalar().is_none_or(|s| s.text != RELEASE_NAMESPACE) {
            continue;
        }
        if let Some((start, end)) = entry_removal(&lines, entry.key.pos, entry.value.pos, RELEASE_NAMESPACE) {
            edits.push((start, end, String::new()));
        }
    }
    if edits.is_empty() {
        return (text.to_string(), false);
    }
    let Some(edited) = apply(text, edits) else { return (text.to_string(), false) };
    let (again, broken) = yaml::parse_stream(&edited);
    let clean = broken.is_empty()
        && again.len() == docs.len()
        && again
            .iter()
            .filter_map(|d| d.root.as_ref())
            .all(|root| root.get_path(&["metadata", "namespace"]).and_then(Node::as_text) != Some(RELEASE_NAMESPACE));
    if clean { (edited, true) } else { (text.to_string(), false) }
}

/// Whether a document is a core `v1` Secret.
pub fn is_secret(root: &Node) -> bool {
    root.get("kind").and_then(Node::as_text) == Some("Secret")
        && root.get("apiVersion").and_then(Node::as_text) == Some("v1")
}

fn single_root(text: &str) -> Option<Node> {
    let (docs, broken) = yaml::parse_stream(text);
    if !broken.is_empty() || docs.len() != 1 {
        return None;
    }
    docs.into_iter().next()?.root
}

/// Routes of the scalar values that differ between two renders of the same Secret document (`data.password`);
/// empty when the first is not a Secret.
pub fn differing_secret_values(first: &str, second: &str) -> Vec<Route> {
    let (Some(a), Some(b)) = (single_root(first), single_root(second)) else { return Vec::new() };
    if !is_secret(&a) {
        return Vec::new();
    }
    let mut out = Vec::new();
    differ(&a, &b, Route::root(), &mut out);
    out
}

fn differ(a: &Node, b: &Node, route: Route, out: &mut Vec<Route>) {
    match (&a.kind, &b.kind) {
        (NodeKind::Map(entries), NodeKind::Map(_)) => {
            for entry in entries {
                let (Some(key), Some(other)) = (entry.key.as_key(), entry.key.as_key().and_then(|k| b.get(k))) else {
                    continue;
                };
                differ(&entry.value, other, route.key(key), out);
            }
        }
        (NodeKind::Seq(items), NodeKind::Seq(others)) => {
            for (i, (item, other)) in items.iter().zip(others).enumerate() {
                differ(item, other, route.index(i), out);
            }
        }
        (NodeKind::Scalar(x), NodeKind::Scalar(y)) if x.text != y.text => out.push(route),
        _ => {}
    }
}

/// The placeholder a generated value at `route` is replaced by.
pub fn placeholder(route: &Route) -> &'static str {
    match route.0.first() {
        Some(Segment::Key(k)) if k == "data" => GENERATED_BASE64,
        _ => GENERATED_TEXT,
    }
}

/// Where a scalar is written, as byte offsets: a one-line quoted scalar up to its closing quote, a one-line
/// plain scalar (checked against its text), a block scalar from its `|`/`>` indicator on its key's line to
/// its last line (lines indented deeper than its key). `None` for any other shape (the text is then left
/// as it is).
fn scalar_span(lines: &Lines<'_>, node: &Node, key: Option<Pos>) -> Option<(usize, usize)> {
    let scalar = node.scalar()?;
    let text = lines.text;
    if scalar.style == Style::Block {
        // The parser places a block scalar at its first content line; the indicator is on the key's line.
        let key = key?;
        let key_at = lines.offset(key)?;
        let key_line = &text[key_at..lines.end(key.line)?];
        let indicator = key_line.rfind(['|', '>'])?;
        let after = key_line[indicator + 1..].trim_start_matches(|c: char| c == '-' || c == '+' || c.is_ascii_digit());
        if !(after.trim().is_empty() || after.trim_start().starts_with('#')) {
            return None;
        }
        let indent = usize::try_from(key.col).ok()?.checked_sub(1)?;
        let mut end = lines.end(key.line)?;
        let mut line = key.line + 1;
        while let (Some(s), Some(e)) = (lines.start(line), lines.end(line)) {
            let body = &text[s..e];
            if !body.trim().is_empty() {
                if body.len() - body.trim_start_matches(' ').len() <= indent {
                    break;
                }
                end = e;
            }
            line += 1;
        }
        return Some((key_at + indicator, end));
    }
    let start = lines.offset(node.pos)?;
    let rest = &text[start..lines.end(node.pos.line)?];
    match scalar.style {
        Style::Plain => {
            let end = rest.find(|c: char| c.is_whitespace() || ",}]".contains(c)).unwrap_or(rest.len());
            (rest[..end] == scalar.text).then_some((start, start + end))
        }
        _ => {
            let quote = rest.chars().next().filter(|q| *q == '"' || *q == '\'')?;
            let mut chars = rest.char_indices().skip(1);
            while let Some((i, c)) = chars.next() {
                if quote == '"' && c == '\\' {
                    chars.next();
                } else if c == quote {
                    if quote == '\'' && rest[i + 1..].starts_with('\'') {
                        chars.next();
                        continue;
                    }
                    return Some((start, start + i + 1));
                }
            }
            None
        }
    }
}

/// Replaces the values at `routes` by their [`placeholder`]. The text is unchanged when an edit would not
/// read back as the placeholder.
pub fn replace_generated(text: &str, routes: &[Route]) -> String {
    if routes.is_empty() {
        return text.to_string();
    }
    let Some(root) = single_root(text) else { return text.to_string() };
    let lines = Lines::new(text);
    let mut edits = Vec::new();
    for route in routes {
        let Some((last, parent)) = route.0.split_last() else { continue };
        let Some(parent) = Route(parent.to_vec()).resolve(&root) else { continue };
        let (node, key) = match last {
            Segment::Key(k) => match parent.entry(k) {
                Some(e) => (&e.value, Some(e.key.pos)),
                None => continue,
            },
            Segment::Index(i) => match parent.items().get(*i) {
                Some(n) => (n, None),
                None => continue,
            },
        };
        let Some((start, end)) = scalar_span(&lines, node, key) else { continue };
        edits.push((start, end, format!("\"{}\"", placeholder(route))));
    }
    let Some(edited) = apply(text, edits) else { return text.to_string() };
    let reads_back = single_root(&edited).is_some_and(|again| {
        routes.iter().all(|r| r.resolve(&again).and_then(Node::as_text).is_some_and(|t| t == placeholder(r)))
    });
    if reads_back { edited } else { text.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns_removed(text: &str) -> String {
        let (out, removed) = remove_release_namespace(text);
        assert!(removed, "{text}");
        out
    }

    #[test]
    fn the_release_namespace_is_removed_in_block_and_flow_style() {
        assert_eq!(
            ns_removed("kind: ConfigMap\nmetadata:\n  name: a\n  namespace: kpath-release-namespace\n  labels: {}\n"),
            "kind: ConfigMap\nmetadata:\n  name: a\n  labels: {}\n"
        );
        assert_eq!(
            ns_removed("metadata:\n  namespace: \"kpath-release-namespace\" # set by helm\n  name: a\n"),
            "metadata:\n  name: a\n"
        );
        assert_eq!(ns_removed("metadata: {name: a, namespace: kpath-release-namespace}\n"), "metadata: {name: a}\n");
        assert_eq!(ns_removed("metadata: {namespace: 'kpath-release-namespace', name: a}\n"), "metadata: {name: a}\n");
        assert_eq!(ns_removed("metadata: {namespace: kpath-release-namespace}\n"), "metadata: {}\n");
        // No trailing newline, multi-byte text before it.
        assert_eq!(
            ns_removed("metadata:\n  name: \"é\"\n  namespace: kpath-release-namespace"),
            "metadata:\n  name: \"é\"\n"
        );
    }

    #[test]
    fn other_namespaces_and_other_places_stay() {
        for text in [
            "metadata:\n  namespace: default\n",
            "metadata:\n  namespace: kpath-release-namespace-x\n",
            "metadata:\n  name: a\nspec:\n  namespace: kpath-release-namespace\n",
            "subjects:\n  - namespace: kpath-release-namespace\n",
        ] {
            let (out, removed) = remove_release_namespace(text);
            assert!(!removed, "{text}");
            assert_eq!(out, text);
        }
        // Elsewhere in the object (a DNS name, a RoleBinding subject) the placeholder stays as rendered.
        let text =
            "metadata:\n  namespace: kpath-release-namespace\ndata:\n  url: http://db.kpath-release-namespace.svc\n";
        assert_eq!(ns_removed(text), "metadata:\ndata:\n  url: http://db.kpath-release-namespace.svc\n");
    }

    #[test]
    fn generating_functions_are_found_by_word() {
        assert!(calls_generating_function("password: {{ randAlphaNum 16 | b64enc }}"));
        assert!(calls_generating_function("{{- $ca := genCA \"x\" 365 }}"));
        assert!(calls_generating_function("{{ (lookup \"v1\" \"Secret\" .Release.Namespace \"x\") }}"));
        assert!(!calls_generating_function("name: {{ .Values.randAlphaNum }}"));
        assert!(!calls_generating_function("{{ myrandAlphaNum 3 }} {{ derivePassword 1 \"long\" .a .b .c }}"));
        assert!(!calls_generating_function("{{ genCAx 1 }}"));
    }

    const FIRST: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: \"YWJj\"\n  user: YWRtaW4=\nstringData:\n  token: abc123\n  key: |\n    -----BEGIN RSA PRIVATE KEY-----\n    AAAA\n    -----END RSA PRIVATE KEY-----\n  fixed: same\ntype: Opaque\n";
    const SECOND: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: \"eHl6\"\n  user: YWRtaW4=\nstringData:\n  token: zz9\n  key: |\n    -----BEGIN RSA PRIVATE KEY-----\n    BBBB\n    -----END RSA PRIVATE KEY-----\n  fixed: same\ntype: Opaque\n";

    #[test]
    fn values_that_differ_between_renders_are_generated_and_replaced() {
        let routes = differing_secret_values(FIRST, SECOND);
        let shown: Vec<String> = routes.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["data.password", "stringData.token", "stringData.key"]);
        let out = replace_generated(FIRST, &routes);
        assert_eq!(
            out,
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: \"a3BhdGgtZ2VuZXJhdGVk\"\n  user: YWRtaW4=\nstringData:\n  token: \"kpath-generated\"\n  key: \"kpath-generated\"\n  fixed: same\ntype: Opaque\n"
        );
        // The same placeholder whatever was generated: the text is stable across renders.
        assert_eq!(replace_generated(SECOND, &differing_secret_values(SECOND, FIRST)), out);
        assert_eq!(placeholder(&Route::parse("data.x")), GENERATED_BASE64);
    }

    #[test]
    fn only_secrets_are_compared() {
        let cm = |v: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata: {{id: {v}}}\n");
        assert!(differing_secret_values(&cm("a"), &cm("b")).is_empty());
        assert!(differing_secret_values(FIRST, FIRST).is_empty());
    }

    #[test]
    fn flow_values_are_replaced_and_unknown_shapes_kept() {
        let text = "apiVersion: v1\nkind: Secret\ndata: {a: YWJj, b: eHl6}\n";
        let out = replace_generated(text, &[Route::parse("data.a")]);
        assert_eq!(out, "apiVersion: v1\nkind: Secret\ndata: {a: \"a3BhdGgtZ2VuZXJhdGVk\", b: eHl6}\n");
        // A plain scalar folded over two lines is not a shape kpath edits.
        let folded = "apiVersion: v1\nkind: Secret\nstringData:\n  a: one\n    two\n";
        assert_eq!(replace_generated(folded, &[Route::parse("stringData.a")]), folded);
    }

    #[test]
    fn placeholders_are_base64_of_the_text() {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD.decode(GENERATED_BASE64).expect("base64");
        assert_eq!(decoded, GENERATED_TEXT.as_bytes());
    }
}
