//! Secret values and their redaction: [`SecretSet`] holds every secret value a run found (Secret
//! `data`/`stringData`, values the secret rules flag, sensitive settings of Helm values files and
//! `--set`, Dockerfile `ENV`/`ARG` literals, credentials anywhere), and [`SecretSet::redact`] removes every
//! occurrence of every one of them from an output, in one pass (Aho-Corasick).
//!
//! Each output has one exit point that calls it: `report::write` (`kpath check`, every format; JSON through
//! [`SecretSet::line_writer`]),
//! `ReviewPlan::redact` (`kpath review`, every format), the GitHub client's request bodies and the log
//! writer of `kpath serve` ([`register`], [`RedactingWriter`]). Texts that are cut to a length (summary
//! items, windows of long source lines) are redacted before they are cut, so a cut never leaves half a
//! secret behind.
//!
//! The marker is [`MARKER`], with no hash and no length: a hash of a secret (even a keyed one, when
//! anyone who can open a pull request can have kpath hash a value of their choice) lets a guess be
//! confirmed. Review diffs say instead whether the value at the same place changed ([`CHANGED_MARKER`]).
//!
//! Values shorter than [`MIN_SECRET_LEN`] bytes are not searched for everywhere (`abc` or `12345` would
//! blank out unrelated text); they are still hidden where they are: at their route in review diffs and on
//! their source line in text reports.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;

use crate::secrets;
use crate::yaml::{Node, NodeKind, Route, Segment};

/// What replaces a secret in every output.
pub const MARKER: &str = "[redacted]";
/// A review diff's marker for a secret whose value differs from the other side's at the same place.
pub const CHANGED_MARKER: &str = "[redacted, changed]";
/// Shortest value searched for in whole outputs (bytes, after trimming).
pub const MIN_SECRET_LEN: usize = 6;

/// The secret values of a run (both sides of a review), and a matcher for all of them.
#[derive(Clone, Default)]
pub struct SecretSet {
    values: BTreeSet<String>,
    /// Built on first use; reset whenever a value is added.
    matcher: OnceLock<Option<AhoCorasick>>,
}

impl fmt::Debug for SecretSet {
    /// Never the values: a `{:?}` of a report must not print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretSet({} values)", self.values.len())
    }
}

impl SecretSet {
    pub const fn new() -> SecretSet {
        SecretSet { values: BTreeSet::new(), matcher: OnceLock::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Adds a secret value (and each line of a multi-line one), when it is long enough to search for.
    pub fn insert(&mut self, value: &str) {
        self.add_one(value);
        if value.contains('\n') {
            for line in value.lines() {
                self.add_one(line);
            }
        }
    }

    fn add_one(&mut self, value: &str) {
        let value = value.trim();
        let searchable = value.len() >= MIN_SECRET_LEN
            && value.chars().any(char::is_alphanumeric)
            && !MARKER.contains(value)
            && !CHANGED_MARKER.contains(value);
        if searchable && !self.values.contains(value) {
            self.values.insert(value.to_string());
            self.matcher = OnceLock::new();
        }
    }

    /// A Secret's `data` value: the base64 text as written and, when it decodes to text, the decoded value.
    pub fn insert_base64(&mut self, encoded: &str) {
        self.insert(encoded);
        let compact: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact.as_bytes())
            && let Ok(text) = String::from_utf8(bytes)
        {
            self.insert(&text);
        }
    }

    /// A plain secret value (`stringData`), and its base64 form (how `data` and kubectl's copies hold it).
    pub fn insert_with_base64(&mut self, value: &str) {
        self.insert(value);
        if value.trim().len() >= MIN_SECRET_LEN {
            self.insert(&base64::engine::general_purpose::STANDARD.encode(value.as_bytes()));
        }
    }

    pub fn extend(&mut self, other: &SecretSet) {
        for value in &other.values {
            self.add_one(value);
        }
    }

    fn matcher(&self) -> Option<&AhoCorasick> {
        self.matcher
            .get_or_init(|| {
                if self.values.is_empty() {
                    return None;
                }
                let mut patterns: BTreeSet<String> = BTreeSet::new();
                for value in &self.values {
                    patterns.extend(encodings(value));
                }
                // Longest first at each position, so a secret that contains another goes whole.
                AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(patterns).ok()
            })
            .as_ref()
    }

    /// True when `text` holds a secret (in any of the forms outputs encode it in).
    pub fn occurs_in(&self, text: &str) -> bool {
        self.matcher().is_some_and(|m| m.is_match(text))
    }

    /// The secret values found in `text`, in order (as the matcher finds them).
    pub fn occurrences<'t>(&self, text: &'t str) -> Vec<&'t str> {
        self.matcher().map(|m| m.find_iter(text).map(|found| &text[found.range()]).collect()).unwrap_or_default()
    }

    /// `text` with every secret replaced by [`MARKER`].
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        self.redact_with(text, MARKER)
    }

    /// `text` with every secret replaced by `marker`.
    pub fn redact_with<'t>(&self, text: &'t str, marker: &str) -> Cow<'t, str> {
        let Some(matcher) = self.matcher() else { return Cow::Borrowed(text) };
        if !matcher.is_match(text) {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        matcher.replace_all_with(text, &mut out, |_, _, dst| {
            dst.push_str(marker);
            true
        });
        Cow::Owned(out)
    }

    /// A writer passing whole lines to `out`, each redacted: for an output streamed in lines whose every
    /// secret form is whole on one line (JSON, whose strings never span lines).
    pub fn line_writer<'a>(&'a self, out: &'a mut dyn Write) -> LineRedactor<'a> {
        LineRedactor { out, pending: Vec::new(), secrets: self }
    }

    /// Redacts a `String` in place.
    pub fn redact_in_place(&self, text: &mut String) {
        if let Cow::Owned(clean) = self.redact(text) {
            *text = clean;
        }
    }

    /// Every string (and object key) of a JSON value, redacted.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) => self.redact_in_place(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                if map.keys().any(|k| self.occurs_in(k)) {
                    let old = std::mem::take(map);
                    for (k, v) in old {
                        map.insert(self.redact(&k).into_owned(), v);
                    }
                }
                map.values_mut().for_each(|v| self.redact_json(v));
            }
            _ => {}
        }
    }
}

/// The forms a value takes in kpath's outputs: as is, JSON-escaped (JSON, SARIF), HTML-escaped
/// (Markdown outside code), with newlines as spaces (one-line Markdown items), and escaped as GitHub
/// workflow commands escape data and properties.
fn encodings(value: &str) -> Vec<String> {
    let mut out = vec![value.to_string()];
    if let Ok(json) = serde_json::to_string(value) {
        out.push(json[1..json.len() - 1].to_string());
    }
    let html = value.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    out.push(html.replace('"', "&quot;"));
    out.push(html);
    out.push(value.replace(['\n', '\r'], " "));
    let data = value.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    out.push(data.replace(':', "%3A").replace(',', "%2C"));
    out.push(data);
    out.retain(|v| !v.is_empty());
    out
}

// ---------------------------------------------------------------------------------------------
// Collecting secrets
// ---------------------------------------------------------------------------------------------

/// Cheap test before [`secrets::is_sensitive_assignment`]: does the name contain a word that can make it
/// sensitive at all?
fn may_be_sensitive(name: &str) -> bool {
    const NEEDLES: &[&[u8]] = &[b"pass", b"pwd", b"secret", b"token", b"key", b"cred"];
    let bytes = name.as_bytes();
    NEEDLES.iter().any(|needle| bytes.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle)))
}

fn sensitive(name: &str, value: &str) -> bool {
    may_be_sensitive(name) && secrets::is_sensitive_assignment(name, value)
}

/// Program code in a configuration key (`app.py`): only quoted strings are literals.
fn is_code_key(key: &str) -> bool {
    key.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty() && ["py", "js", "ts", "rb", "lua"].iter().any(|e| ext.eq_ignore_ascii_case(e))
    })
}

/// The secrets a scalar holds by its shape: credentials inside it, and secret settings of a
/// configuration file it holds.
fn collect_text(text: &str, key: Option<&str>, set: &mut SecretSet) {
    if text.len() < 8 {
        return;
    }
    for value in secrets::credential_values(text) {
        set.insert(value);
    }
    if text.contains('\n') {
        for value in secrets::embedded_secret_values(text, key.is_some_and(is_code_key)) {
            set.insert(value);
        }
    }
}

/// Every secret a parsed document holds: `data` (base64, and decoded) and `stringData` of core Secrets
/// (at any depth: in a `List`, a template), scalars under a key named like a secret, env-style
/// `{name: DB_PASSWORD, value: …}` pairs, credential-shaped values and secret settings of embedded
/// configuration files. Works on Kubernetes objects, Helm values files and IAM policies alike.
pub fn collect_tree(node: &Node, set: &mut SecretSet) {
    collect_node(node, None, set);
}

fn collect_node(node: &Node, key: Option<&str>, set: &mut SecretSet) {
    match &node.kind {
        NodeKind::Scalar(s) => {
            if let Some(key) = key
                && !node.is_null()
                && sensitive(key, &s.text)
            {
                set.insert(&s.text);
            }
            collect_text(&s.text, key, set);
        }
        // A list under a secret name (`passwords: [a, b]`) holds secrets too.
        NodeKind::Seq(items) => items.iter().for_each(|item| collect_node(item, key, set)),
        NodeKind::Map(_) => {
            let is_secret = node.get("kind").and_then(Node::as_text) == Some("Secret")
                && node.get("apiVersion").is_none_or(|v| v.as_text() == Some("v1"));
            if is_secret {
                for entry in node.get("data").map(Node::entries).unwrap_or_default() {
                    if let Some(text) = entry.value.as_text().filter(|_| !entry.value.is_null()) {
                        set.insert_base64(text);
                    }
                }
                for entry in node.get("stringData").map(Node::entries).unwrap_or_default() {
                    if let Some(text) = entry.value.as_text().filter(|_| !entry.value.is_null()) {
                        set.insert_with_base64(text);
                    }
                }
            }
            if let (Some(name), Some(value)) = (node.get("name").and_then(Node::as_text), node.get("value"))
                && let Some(text) = value.as_text().filter(|_| !value.is_null())
                && sensitive(name, text)
            {
                set.insert(text);
            }
            for entry in node.entries() {
                if let Some(text) = entry.key.as_key() {
                    collect_text(text, None, set);
                }
                collect_node(&entry.value, entry.key.as_key(), set);
            }
        }
    }
}

/// The value a secret rule flagged at `route`: a scalar whole (a rule judged it a secret by rules this
/// module does not repeat), or every scalar of a collection (`data` of a Secret). A route at an env
/// var's `name` means its `value`.
pub fn collect_flagged(root: &Node, route: &Route, set: &mut SecretSet) {
    let route = match route.0.last() {
        Some(Segment::Key(last)) if last == "name" => {
            let mut value = route.clone();
            value.0.pop();
            value.key("value")
        }
        _ => route.clone(),
    };
    let Some(node) = route.resolve(root) else { return };
    let key = match route.0.last() {
        Some(Segment::Key(k)) => Some(k.as_str()),
        _ => None,
    };
    collect_leaves(node, key, set);
}

fn collect_leaves(node: &Node, key: Option<&str>, set: &mut SecretSet) {
    match &node.kind {
        NodeKind::Scalar(_) if node.is_null() => {}
        NodeKind::Scalar(s) => {
            let before = set.len();
            collect_text(&s.text, key, set);
            // A configuration file gave its secret settings; anything else is a secret as a whole.
            if set.len() == before || !s.text.contains('\n') {
                set.insert(&s.text);
            }
        }
        NodeKind::Seq(items) => items.iter().for_each(|i| collect_leaves(i, key, set)),
        NodeKind::Map(entries) => entries.iter().for_each(|e| collect_leaves(&e.value, e.key.as_key(), set)),
    }
}

/// Secrets in text that did not parse (a broken YAML document, invalid JSON): settings named like a
/// secret (`password: x`, `"token": "x"`, `KEY=x`) and credential-shaped values, line by line.
pub fn collect_loose(text: &str, set: &mut SecretSet) {
    for value in secrets::credential_values(text) {
        set.insert(value);
    }
    for value in secrets::embedded_secret_values(text, false) {
        set.insert(value.trim_matches(['"', '\'']));
    }
    // `"password": "x"` anywhere on a line (one-line JSON, flow mappings).
    for line in text.lines() {
        let mut rest = line;
        while let Some(colon) = rest.find(':') {
            let (before, after) = rest.split_at(colon);
            let name = before.trim_end().trim_end_matches(['"', '\'']);
            let name = name.rsplit(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))).next();
            let value = after[1..].trim_start();
            let value = match value.strip_prefix(['"', '\'']) {
                Some(quoted) => quoted.split(['"', '\'']).next().unwrap_or(""),
                None => value.split([',', '}', ']']).next().unwrap_or("").trim(),
            };
            if let Some(name) = name
                && sensitive(name, value)
            {
                set.insert(value);
            }
            rest = &after[1..];
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `kpath serve`: secrets of the reviews in flight, for the GitHub client and the logs
// ---------------------------------------------------------------------------------------------

static REGISTERED: Mutex<Vec<(u64, Arc<SecretSet>)>> = Mutex::new(Vec::new());
static NEXT_REGISTRATION: AtomicU64 = AtomicU64::new(0);

/// Keeps a review's secrets redacted from everything the process sends or logs until it is dropped.
#[must_use = "the secrets are forgotten when the registration is dropped"]
pub struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        REGISTERED.lock().unwrap_or_else(|p| p.into_inner()).retain(|(id, _)| *id != self.0);
    }
}

/// Registers a review's secrets for [`redact_registered`] (the GitHub client, the logs).
pub fn register(set: Arc<SecretSet>) -> Registration {
    let id = NEXT_REGISTRATION.fetch_add(1, Ordering::Relaxed);
    if !set.is_empty() {
        REGISTERED.lock().unwrap_or_else(|p| p.into_inner()).push((id, set));
    }
    Registration(id)
}

fn registered() -> Vec<Arc<SecretSet>> {
    REGISTERED.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(_, s)| s.clone()).collect()
}

/// `text` without the secrets of any review in flight.
pub fn redact_registered(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for set in registered() {
        if let Cow::Owned(clean) = set.redact(&out) {
            out = Cow::Owned(clean);
        }
    }
    out
}

/// A JSON request body without the secrets of any review in flight.
pub fn redact_registered_json(value: &serde_json::Value) -> Cow<'_, serde_json::Value> {
    let sets = registered();
    if sets.is_empty() {
        return Cow::Borrowed(value);
    }
    let mut clean = value.clone();
    for set in sets {
        set.redact_json(&mut clean);
    }
    Cow::Owned(clean)
}

/// See [`SecretSet::line_writer`].
pub struct LineRedactor<'a> {
    out: &'a mut dyn Write,
    pending: Vec<u8>,
    secrets: &'a SecretSet,
}

impl LineRedactor<'_> {
    fn pass(&mut self, upto: usize) -> std::io::Result<()> {
        let line: Vec<u8> = self.pending.drain(..upto).collect();
        let text = String::from_utf8_lossy(&line);
        self.out.write_all(self.secrets.redact(&text).as_bytes())
    }
}

impl Write for LineRedactor<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(last) = self.pending.iter().rposition(|b| *b == b'\n') {
            self.pass(last + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.pass(self.pending.len())?;
        self.out.flush()
    }
}

/// A `tracing` writer that redacts each log line with [`redact_registered`] before it is written: the
/// formatter writes one event at a time, and the line is written when the writer is dropped.
pub struct RedactingWriter<M> {
    inner: M,
}

impl<M> RedactingWriter<M> {
    pub fn new(inner: M) -> RedactingWriter<M> {
        RedactingWriter { inner }
    }
}

impl<'a, M: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a> for RedactingWriter<M> {
    type Writer = RedactingLine<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingLine { inner: self.inner.make_writer(), buffer: Vec::new() }
    }
}

/// One log event, held until it is complete.
pub struct RedactingLine<W: Write> {
    inner: W,
    buffer: Vec<u8>,
}

impl<W: Write> Write for RedactingLine<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buffer).into_owned();
        self.buffer.clear();
        self.inner.write_all(redact_registered(&text).as_bytes())?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingLine<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_single;

    fn set_of(values: &[&str]) -> SecretSet {
        let mut set = SecretSet::default();
        values.iter().for_each(|v| set.insert(v));
        set
    }

    #[test]
    fn a_streamed_text_is_redacted_as_the_whole_text_is_whatever_the_writes() {
        let set = set_of(&["hunter2-password", "multi\nline-secret"]);
        let text = "{\n  \"a\": \"x hunter2-password y\",\n  \"b\": \"multi\\nline-secret\"\n}\nlast hunter2-password";
        for chunk in [1, 3, 7, 64] {
            let mut out = Vec::new();
            {
                let mut lines = set.line_writer(&mut out);
                for piece in text.as_bytes().chunks(chunk) {
                    lines.write_all(piece).expect("write");
                }
                lines.flush().expect("flush");
            }
            let out = String::from_utf8(out).expect("utf-8");
            assert_eq!(out, set.redact(text), "chunks of {chunk}");
            assert!(!out.contains("hunter2") && !out.contains("line-secret"), "{out}");
        }
    }

    #[test]
    fn every_occurrence_and_every_encoding_is_redacted() {
        let set = set_of(&["hunter2-prod", "p\"a<s>s%,:\nword"]);
        assert_eq!(set.redact("a hunter2-prod b hunter2-prod"), "a [redacted] b [redacted]");
        assert_eq!(set.redact(r#"{"v":"p\"a<s>s%,:\nword"}"#), r#"{"v":"[redacted]"}"#);
        assert_eq!(set.redact("p&quot;a&lt;s&gt;s%,:"), "[redacted]");
        assert_eq!(set.redact("::error ::p\"a<s>s%25,:%0Aword"), "::error ::[redacted]");
        assert_eq!(set.redact("p\"a<s>s%25%2C%3A%0Aword"), "[redacted]");
        // Each line of a multi-line secret on its own (a source line of a block scalar).
        assert_eq!(set.redact("  p\"a<s>s%,:"), "  [redacted]");
        assert!(matches!(set.redact("nothing here"), Cow::Borrowed(_)));
        assert_eq!(format!("{set:?}"), "SecretSet(3 values)", "never the values");
    }

    #[test]
    fn short_and_empty_values_are_not_searched_for() {
        let set = set_of(&["abc", "12345", "      ", "******", "redacted"]);
        assert!(set.is_empty());
        assert_eq!(set.redact("abc 12345"), "abc 12345");
    }

    #[test]
    fn base64_forms() {
        let mut set = SecretSet::default();
        set.insert_base64("aHVudGVyMi1wcm9k"); // hunter2-prod
        assert_eq!(set.redact("hunter2-prod"), MARKER);
        let mut set = SecretSet::default();
        set.insert_with_base64("hunter2-prod");
        assert_eq!(set.redact("aHVudGVyMi1wcm9k"), MARKER);
    }

    #[test]
    fn trees_give_their_secrets() {
        let doc = parse_single(
            "kind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  data: {pw: aHVudGVyMi1wcm9k}\n  stringData: {u: s3cr3t-string}\n\
             - kind: Deployment\n  spec:\n    env:\n    - {name: DB_PASSWORD, value: env-literal}\n    - {name: LOG_LEVEL, value: verbose-debug}\n\
             db:\n  password: values-file-pw\n  passwords: [first-pw-1, second-pw-2]\n  passwordMinLength: '123456'\n\
             url: postgres://app:url-pass-1@db/app\napp.properties: |\n  a=1\n  api.password=prop-secret\n",
        )
        .ok()
        .flatten()
        .expect("a document");
        let mut set = SecretSet::default();
        collect_tree(&doc, &mut set);
        for secret in [
            "hunter2-prod",
            "aHVudGVyMi1wcm9k",
            "s3cr3t-string",
            "env-literal",
            "values-file-pw",
            "first-pw-1",
            "second-pw-2",
            "url-pass-1",
            "prop-secret",
        ] {
            assert_eq!(set.redact(secret), MARKER, "{secret}");
        }
        for plain in ["verbose-debug", "123456", "postgres://app:"] {
            assert_eq!(set.redact(plain), plain);
        }
    }

    #[test]
    fn flagged_routes_give_their_values() {
        let doc = parse_single("env:\n- name: X\n  value: flagged-one\ndata:\n  a: first-leaf\n  b: second-leaf\n")
            .ok()
            .flatten()
            .expect("a document");
        let mut set = SecretSet::default();
        collect_flagged(&doc, &Route::parse("env[0].name"), &mut set);
        collect_flagged(&doc, &Route::parse("data"), &mut set);
        for secret in ["flagged-one", "first-leaf", "second-leaf"] {
            assert_eq!(set.redact(secret), MARKER, "{secret}");
        }
    }

    #[test]
    fn broken_text_gives_its_secrets() {
        let mut set = SecretSet::default();
        collect_loose(
            "{\"apiVersion\": \"v1\", \"password\": \"json-pw-1\", \"x\": [\n  token: yaml-tok-1\n",
            &mut set,
        );
        assert_eq!(set.redact("json-pw-1 yaml-tok-1"), "[redacted] [redacted]");
    }

    #[test]
    fn registered_sets_redact_until_dropped() {
        let set = Arc::new(set_of(&["registered-secret-1"]));
        let registration = register(set);
        assert_eq!(redact_registered("x registered-secret-1"), "x [redacted]");
        let body = serde_json::json!({"body": "registered-secret-1", "n": [1, "registered-secret-1"]});
        assert_eq!(redact_registered_json(&body).into_owned(), serde_json::json!({"body": MARKER, "n": [1, MARKER]}));
        drop(registration);
        assert_eq!(redact_registered("x registered-secret-1"), "x registered-secret-1");
    }
}
