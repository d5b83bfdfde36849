//! Object-by-object diff of rendered Kubernetes objects between the base and head of a pull request.
//!
//! Each object is written as canonical YAML (block style, keys in document order, scalars quoted only
//! when needed to read back the same value), with known noise left out and secret values replaced by
//! [`MARKER`]: every value of a Secret's `data`/`stringData` (each key keeps its own line, so a reviewer
//! sees which key moved), every value a secret rule flagged, and every occurrence of any secret value of
//! the review (`SecretSet`), wherever it was copied. A marker on the head side says `[redacted, changed]`
//! when the value at the same place differs from the base's: no hash and no length, which would let a
//! guess be confirmed. Objects are then matched by identity and environment, and each pair gives a
//! unified diff.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;

use compact_str::CompactString;
use similar::TextDiff;

use crate::engine::CheckedObject;
use crate::finding::ObjectId;
use crate::redact::{CHANGED_MARKER, MARKER, SecretSet};
use crate::review::model::{ChangeKind, ObjectChange};
use crate::yaml::scalar::resolve_plain;
use crate::yaml::{Node, NodeKind, Route, Scalar, Segment, Value};

/// kubectl's copy of the whole object, secret values included.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Deepest nesting written out; the parser stops at 256, this only guards hand-built trees.
const MAX_DEPTH: usize = 512;
/// A flagged secret value at least this long is redacted wherever it appears as a whole scalar of the
/// same object (it may have moved, or be repeated in an annotation); longer values are searched for
/// everywhere through the review's `SecretSet`.
const MIN_EXACT_SECRET: usize = 4;
/// Route segment used for a mapping key that is not a scalar (no route names it).
const COMPLEX_KEY: &str = "\u{0}complex-key";
/// Longest implicit key YAML allows (in characters); longer keys are written in `? key` form.
const MAX_IMPLICIT_KEY: usize = 1024;

/// Canonical YAML for an object: block style, 2-space indent, keys in document order, scalars quoted only
/// when needed to read back the same (strings that would parse as bool/number/null under YAML 1.1 — `yes`,
/// `0644`, `~`, `""` — or contain `: `, ` #`, leading/trailing spaces, special first characters, newlines →
/// double-quoted with escapes, or a `|` block for multi-line strings). Values at the object's
/// `secret_routes` (every scalar below, when the route is a collection), and every value under
/// `data`/`stringData` of a core `v1` `Secret`, are replaced by [`MARKER`]; so is every occurrence of a
/// value of `secrets` inside any scalar. Routes in `ignore` are left out entirely (see [`noise_routes`]).
pub fn to_yaml(obj: &CheckedObject, ignore: &[Route], secrets: &SecretSet) -> String {
    render(&obj.node, ignore, &Redactor::new(&[obj], secrets), None)
}

/// Known noise, always dropped: `metadata.labels["helm.sh/chart"]`, the same label in
/// `spec.template.metadata.labels`, and any annotation whose key starts with `checksum/` (at
/// metadata.annotations and spec.template.metadata.annotations; CronJobs' `spec.jobTemplate.metadata` and
/// `spec.jobTemplate.spec.template.metadata` too). Returns the routes to drop for this object (its own
/// concrete routes), plus the configured `extra` ignore routes (a `*` segment matches any key or index).
pub fn noise_routes(obj: &CheckedObject, extra: &[Route]) -> Vec<Route> {
    const METADATA: [&[&str]; 4] = [
        &["metadata"],
        &["spec", "template", "metadata"],
        &["spec", "jobTemplate", "metadata"],
        &["spec", "jobTemplate", "spec", "template", "metadata"],
    ];
    let mut routes: Vec<Route> = Vec::new();
    for keys in METADATA {
        let Some(meta) = obj.node.get_path(keys) else { continue };
        let at = keys.iter().fold(Route::root(), |r, k| r.key(k));
        if meta.get("labels").is_some_and(|labels| labels.entry("helm.sh/chart").is_some()) {
            routes.push(at.key("labels").key("helm.sh/chart"));
        }
        if let Some(annotations) = meta.get("annotations") {
            for entry in annotations.entries() {
                if let Some(key) = entry.key.as_key().filter(|k| k.starts_with("checksum/")) {
                    let route = at.key("annotations").key(key);
                    if !routes.contains(&route) {
                        routes.push(route);
                    }
                }
            }
        }
    }
    routes.extend(extra.iter().cloned());
    routes
}

/// Matches objects by identity (API group — not version —, kind, namespace, name) AND environment, within
/// the same unit; produces one ObjectChange per identity: Added (head only), Removed (base only), Changed
/// (YAML differs after noise removal and redaction; `diff` = unified diff with 3 lines of context and
/// headers `--- base/<kind>/<namespace>/<name>` / `+++ head/…`, without the namespace segment for
/// cluster-scoped objects, and `/dev/null` for the missing side of an added or removed object), Unchanged
/// (diff empty). Order: by unit, environment, then the head order of objects (removed ones after, in base
/// order). An apiVersion change alone (apps/v1beta2 → apps/v1, and the moves out of `extensions`) is a
/// Changed object, not removed+added. Objects repeated with one identity are paired in order.
pub fn diff_objects(
    base: &[CheckedObject],
    head: &[CheckedObject],
    extra_ignore: &[Route],
    secrets: &SecretSet,
) -> Vec<ObjectChange> {
    let mut by_identity: HashMap<Identity<'_>, VecDeque<usize>> = HashMap::new();
    for (i, obj) in base.iter().enumerate() {
        by_identity.entry(Identity::of(obj)).or_default().push_back(i);
    }
    let mut paired = vec![false; base.len()];
    let mut changes = Vec::with_capacity(head.len() + base.len());
    for new in head {
        let index = by_identity.get_mut(&Identity::of(new)).and_then(VecDeque::pop_front);
        match index.and_then(|i| Some((base.get(i)?, paired.get_mut(i)?))) {
            Some((old, flag)) => {
                *flag = true;
                changes.push(changed(old, new, extra_ignore, secrets));
            }
            None => changes.push(added_or_removed(new, ChangeKind::Added, extra_ignore, secrets)),
        }
    }
    for (obj, _) in base.iter().zip(&paired).filter(|(_, paired)| !**paired) {
        changes.push(added_or_removed(obj, ChangeKind::Removed, extra_ignore, secrets));
    }
    // Stable: within a unit and environment, head order then removed objects stay as pushed.
    changes.sort_by(|a, b| (&a.unit, &a.environment).cmp(&(&b.unit, &b.environment)));
    changes
}

/// What pairs a base object with a head object.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Identity<'a> {
    unit: &'a str,
    environment: Option<&'a str>,
    group: &'a str,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
}

impl<'a> Identity<'a> {
    fn of(obj: &'a CheckedObject) -> Identity<'a> {
        Identity {
            unit: &obj.unit,
            environment: obj.environment.as_deref(),
            group: identity_group(&obj.id),
            kind: &obj.id.kind,
            namespace: obj.id.namespace.as_deref(),
            name: &obj.id.name,
        }
    }
}

/// The API group an object is stored under: kinds that moved out of `extensions` keep their identity
/// in the API server, so `extensions/v1beta1` Deployment → `apps/v1` is one object changing.
fn identity_group(id: &ObjectId) -> &str {
    match (id.group(), id.kind.as_str()) {
        ("extensions", "Deployment" | "DaemonSet" | "ReplicaSet" | "StatefulSet") => "apps",
        ("extensions", "Ingress" | "IngressClass" | "NetworkPolicy") => "networking.k8s.io",
        ("extensions", "PodSecurityPolicy") => "policy",
        (group, _) => group,
    }
}

fn added_or_removed(
    obj: &CheckedObject,
    kind: ChangeKind,
    extra_ignore: &[Route],
    secrets: &SecretSet,
) -> ObjectChange {
    let text = to_yaml(obj, &noise_routes(obj, extra_ignore), secrets);
    let diff = match kind {
        ChangeKind::Removed => unified(&text, "", &label("base", &obj.id), "/dev/null"),
        _ => unified("", &text, "/dev/null", &label("head", &obj.id)),
    };
    ObjectChange { object: obj.id.clone(), unit: obj.unit.clone(), environment: obj.environment.clone(), kind, diff }
}

fn changed(old: &CheckedObject, new: &CheckedObject, extra_ignore: &[Route], secrets: &SecretSet) -> ObjectChange {
    // Both sides redact what either side flagged, so a reviewer sees that a secret changed, not what it was;
    // the head side's markers say where the value differs from the base's.
    let redactor = Redactor::new(&[old, new], secrets);
    let before = render(&old.node, &noise_routes(old, extra_ignore), &redactor, None);
    let after = render(&new.node, &noise_routes(new, extra_ignore), &redactor, Some(&old.node));
    let (kind, diff) = if before == after {
        (ChangeKind::Unchanged, String::new())
    } else {
        (ChangeKind::Changed, unified(&before, &after, &label("base", &old.id), &label("head", &new.id)))
    };
    ObjectChange { object: new.id.clone(), unit: new.unit.clone(), environment: new.environment.clone(), kind, diff }
}

fn unified(before: &str, after: &str, from: &str, to: &str) -> String {
    TextDiff::from_lines(before, after).unified_diff().context_radius(3).header(from, to).to_string()
}

/// `base/Deployment/shop/web`; control characters (which would break the diff's header line) become `?`.
fn label(side: &str, id: &ObjectId) -> String {
    let text = match &id.namespace {
        Some(ns) => format!("{side}/{}/{ns}/{}", id.kind, id.name),
        None => format!("{side}/{}/{}", id.kind, id.name),
    };
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// What to redact in one object (or in both sides of a pair, identically).
struct Redactor<'a> {
    routes: Vec<&'a Route>,
    /// Texts of the scalars at those routes, redacted wherever they are a whole scalar of the object.
    values: Vec<&'a str>,
    /// Every secret value of the review, redacted wherever it occurs.
    secrets: &'a SecretSet,
    /// The object carries flagged values: its kubectl last-applied copy is redacted too.
    last_applied: bool,
}

impl<'a> Redactor<'a> {
    fn new(objects: &[&'a CheckedObject], secrets: &'a SecretSet) -> Redactor<'a> {
        let mut routes: Vec<&'a Route> = Vec::new();
        for route in objects.iter().flat_map(|obj| &obj.secret_routes) {
            if !routes.contains(&route) {
                routes.push(route);
            }
        }
        // A route flagged on one side is looked up on every side: the old value of a secret matters too.
        let mut values: Vec<&'a str> = Vec::new();
        for obj in objects {
            for route in &routes {
                let text = route.resolve(&obj.node).and_then(Node::scalar).map(|s| s.text.as_str());
                if let Some(text) = text.filter(|t| t.len() >= MIN_EXACT_SECRET && !values.contains(t)) {
                    values.push(text);
                }
            }
        }
        Redactor { last_applied: !routes.is_empty(), routes, values, secrets }
    }

    /// The whole value at `path` is a secret (a flagged route, or a flagged value repeated).
    fn redacts_whole(&self, path: &[Segment], node: &Node) -> bool {
        self.routes.iter().any(|r| r.0 == path) || node.scalar().is_some_and(|s| self.values.contains(&s.text.as_str()))
    }
}

/// The marker for a value: [`CHANGED_MARKER`] when the other side holds a different value at the same place.
fn marker(changed: bool) -> Out<'static> {
    Out::Text(if changed { CHANGED_MARKER } else { MARKER }.to_string())
}

/// Same text in every scalar and same shape (keys, lengths).
fn same_tree(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (NodeKind::Scalar(x), NodeKind::Scalar(y)) => x.text == y.text,
        (NodeKind::Seq(x), NodeKind::Seq(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_tree(a, b)),
        (NodeKind::Map(x), NodeKind::Map(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|(a, b)| same_tree(&a.key, &b.key) && same_tree(&a.value, &b.value))
        }
        _ => false,
    }
}

/// A core `v1` Secret (its `apiVersion` may be left out where it is embedded in a List or a template).
fn is_secret(node: &Node) -> bool {
    node.get("kind").and_then(Node::as_text) == Some("Secret")
        && node.get("apiVersion").is_none_or(|v| v.as_text() == Some("v1"))
}

fn ignored(ignore: &[Route], path: &[Segment]) -> bool {
    ignore.iter().any(|r| {
        !r.0.is_empty()
            && r.0.len() == path.len()
            && r.0.iter().zip(path).all(|(p, s)| p == s || matches!(p, Segment::Key(k) if k == "*"))
    })
}

/// The tree as written out: noise left out, secrets replaced by their markers.
enum Out<'a> {
    Scalar(&'a Scalar),
    /// A string made here (a redaction marker).
    Text(String),
    Seq(Vec<Out<'a>>),
    Map(Vec<(Out<'a>, Out<'a>)>),
}

/// Where a node sits relative to a Secret, for what must be redacted below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Plain,
    /// `data`/`stringData` of a Secret: every value is redacted.
    SecretData,
    /// Below a flagged collection (or a Secret's value that is itself a collection): every scalar is
    /// redacted, keys stay, so the diff shows which key moved.
    Redacted,
    /// `metadata` of a Secret (or of an object with flagged values).
    SecretMetadata,
    /// Its `annotations`: kubectl's last-applied copy is redacted.
    SecretAnnotations,
}

struct Builder<'r> {
    ignore: &'r [Route],
    redactor: &'r Redactor<'r>,
    /// The other side of a changed pair (base, when writing head): markers say where values differ.
    other: Option<&'r Node>,
}

impl Builder<'_> {
    /// `None` when every entry of a non-empty collection was left out (so that noise alone does not
    /// leave an empty `annotations: {}` behind).
    fn build<'n>(&self, node: &'n Node, path: &mut Vec<Segment>, scope: Scope, depth: usize) -> Option<Out<'n>> {
        if depth > MAX_DEPTH {
            return Some(Out::Text("<nesting too deep>".into()));
        }
        let below_secret = matches!(scope, Scope::SecretData | Scope::Redacted);
        match &node.kind {
            NodeKind::Scalar(s) => Some(self.scalar(s, path)),
            NodeKind::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                let item_scope = if below_secret { Scope::Redacted } else { Scope::Plain };
                for (i, item) in items.iter().enumerate() {
                    path.push(Segment::Index(i));
                    let child = self.child(item, path, below_secret, item_scope, depth);
                    path.pop();
                    out.extend(child);
                }
                (out.len() == items.len() || !out.is_empty()).then_some(Out::Seq(out))
            }
            NodeKind::Map(entries) => {
                let secret = is_secret(node);
                let mut out = Vec::with_capacity(entries.len());
                for entry in entries {
                    let key = entry.key.as_key();
                    let child_scope = match (scope, key) {
                        (Scope::SecretData | Scope::Redacted, _) => Scope::Redacted,
                        (_, Some("data" | "stringData")) if secret => Scope::SecretData,
                        (_, Some("metadata")) if secret || (depth == 0 && self.redactor.last_applied) => {
                            Scope::SecretMetadata
                        }
                        (Scope::SecretMetadata, Some("annotations")) => Scope::SecretAnnotations,
                        _ => Scope::Plain,
                    };
                    let redact_all = below_secret || (scope == Scope::SecretAnnotations && key == Some(LAST_APPLIED));
                    path.push(Segment::Key(CompactString::from(key.unwrap_or(COMPLEX_KEY))));
                    let child = self.child(&entry.value, path, redact_all, child_scope, depth);
                    path.pop();
                    if let Some(value) = child {
                        out.push((raw(&entry.key, depth + 1), value));
                    }
                }
                (out.len() == entries.len() || !out.is_empty()).then_some(Out::Map(out))
            }
        }
    }

    fn child<'n>(
        &self,
        node: &'n Node,
        path: &mut Vec<Segment>,
        redact_all: bool,
        scope: Scope,
        depth: usize,
    ) -> Option<Out<'n>> {
        if ignored(self.ignore, path) {
            return None;
        }
        // `data: sometext` on a Secret is not valid, but must not show either.
        let secret_scalar = scope == Scope::SecretData && node.scalar().is_some() && !node.is_null();
        if redact_all || secret_scalar || self.redactor.redacts_whole(path, node) {
            return match &node.kind {
                // A collection keeps its keys: each value below gets its own marker.
                NodeKind::Seq(_) | NodeKind::Map(_) => self.build(node, path, Scope::Redacted, depth + 1),
                NodeKind::Scalar(_) if node.is_null() && !redact_all && !secret_scalar => {
                    self.build(node, path, scope, depth + 1)
                }
                NodeKind::Scalar(_) => Some(marker(self.differs(path, node))),
            };
        }
        self.build(node, path, scope, depth + 1)
    }

    /// A scalar outside any secret place: every occurrence of a secret value inside it is redacted.
    fn scalar<'n>(&self, s: &'n Scalar, path: &[Segment]) -> Out<'n> {
        let secrets = self.redactor.secrets;
        if !secrets.occurs_in(&s.text) {
            return Out::Scalar(s);
        }
        let other = self.other.and_then(|o| resolve(o, path)).and_then(Node::scalar);
        let changed = other.is_some_and(|o| secrets.occurrences(&o.text) != secrets.occurrences(&s.text));
        Out::Text(secrets.redact_with(&s.text, if changed { CHANGED_MARKER } else { MARKER }).into_owned())
    }

    /// The other side holds a different value at `path` (not: the other side has nothing there).
    fn differs(&self, path: &[Segment], node: &Node) -> bool {
        self.other.and_then(|o| resolve(o, path)).is_some_and(|o| !same_tree(o, node))
    }
}

fn resolve<'n>(root: &'n Node, path: &[Segment]) -> Option<&'n Node> {
    let mut node = root;
    for seg in path {
        node = match seg {
            Segment::Key(k) => node.entries().iter().find(|e| e.key.as_key() == Some(k.as_str())).map(|e| &e.value)?,
            Segment::Index(i) => node.items().get(*i)?,
        };
    }
    Some(node)
}

/// A node as written, nothing left out (keys, and collections measured for a marker).
fn raw(node: &Node, depth: usize) -> Out<'_> {
    if depth > MAX_DEPTH {
        return Out::Text("<nesting too deep>".into());
    }
    match &node.kind {
        NodeKind::Scalar(s) => Out::Scalar(s),
        NodeKind::Seq(items) => Out::Seq(items.iter().map(|n| raw(n, depth + 1)).collect()),
        NodeKind::Map(entries) => {
            Out::Map(entries.iter().map(|e| (raw(&e.key, depth + 1), raw(&e.value, depth + 1))).collect())
        }
    }
}

fn render(node: &Node, ignore: &[Route], redactor: &Redactor<'_>, other: Option<&Node>) -> String {
    let builder = Builder { ignore, redactor, other };
    let tree = builder.build(node, &mut Vec::new(), Scope::Plain, 0).unwrap_or(Out::Map(Vec::new()));
    let mut out = String::new();
    emit_document(&mut out, &tree);
    out
}

fn emit_document(out: &mut String, node: &Out<'_>) {
    match node {
        Out::Map(entries) if !entries.is_empty() => emit_map(out, entries, 0),
        Out::Seq(items) if !items.is_empty() => emit_seq(out, items, 0),
        Out::Map(_) => out.push_str("{}\n"),
        Out::Seq(_) => out.push_str("[]\n"),
        Out::Scalar(_) | Out::Text(_) => {
            if let Some(text) = inline_key(node) {
                out.push_str(&text);
            }
            out.push('\n');
        }
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn emit_map(out: &mut String, entries: &[(Out<'_>, Out<'_>)], indent: usize) {
    for (key, value) in entries {
        pad(out, indent);
        match inline_key(key) {
            Some(text) => {
                out.push_str(&text);
                out.push(':');
                emit_child(out, value, indent, false);
            }
            None => {
                // A collection (or overlong) key: `? key` then `: value`.
                out.push('?');
                emit_child(out, key, indent, true);
                pad(out, indent);
                out.push(':');
                emit_child(out, value, indent, true);
            }
        }
    }
}

fn emit_seq(out: &mut String, items: &[Out<'_>], indent: usize) {
    for item in items {
        pad(out, indent);
        out.push('-');
        emit_child(out, item, indent, true);
    }
}

/// Writes a node after its indicator (`key:`, `-`, `?` or `:` at `indent`); its content goes at
/// `indent + 2`. `compact` puts a collection's first line on the indicator's line (`- name: x`).
fn emit_child(out: &mut String, node: &Out<'_>, indent: usize, compact: bool) {
    let inner = indent + 2;
    match node {
        Out::Map(entries) if entries.is_empty() => out.push_str(" {}\n"),
        Out::Seq(items) if items.is_empty() => out.push_str(" []\n"),
        Out::Map(_) | Out::Seq(_) => {
            let mut body = String::new();
            match node {
                Out::Map(entries) => emit_map(&mut body, entries, inner),
                Out::Seq(items) => emit_seq(&mut body, items, inner),
                _ => {}
            }
            if compact {
                out.push(' ');
                out.push_str(body.get(inner..).unwrap_or(&body));
            } else {
                out.push('\n');
                out.push_str(&body);
            }
        }
        Out::Scalar(_) | Out::Text(_) => match repr(node, false) {
            Repr::Empty => out.push('\n'),
            Repr::Inline(text) => {
                out.push(' ');
                out.push_str(&text);
                out.push('\n');
            }
            Repr::Block { header, lines, trailing_empty } => {
                out.push(' ');
                out.push_str(header);
                out.push('\n');
                for line in lines {
                    if !line.is_empty() {
                        pad(out, inner);
                        out.push_str(line);
                    }
                    out.push('\n');
                }
                out.extend(std::iter::repeat_n('\n', trailing_empty));
            }
        },
    }
}

/// How a scalar is written.
enum Repr<'a> {
    /// Nothing after the indicator: an empty plain null (`resources:`).
    Empty,
    Inline(String),
    /// A literal block: `|`, `|-` or `|+`, the lines of its body, then empty lines kept by `|+`.
    Block {
        header: &'static str,
        lines: Vec<&'a str>,
        trailing_empty: usize,
    },
}

/// A mapping key on one line, or `None` when it needs the `? key` form.
fn inline_key(key: &Out<'_>) -> Option<String> {
    match key {
        Out::Scalar(_) | Out::Text(_) => match repr(key, true) {
            Repr::Inline(text) if text.chars().count() <= MAX_IMPLICIT_KEY => Some(text),
            _ => None,
        },
        Out::Seq(_) | Out::Map(_) => None,
    }
}

fn repr<'a>(node: &'a Out<'_>, as_key: bool) -> Repr<'a> {
    match node {
        Out::Text(text) => str_repr(text, as_key),
        Out::Scalar(s) => match s.value() {
            Value::Str(text) => str_repr(text, as_key),
            value => {
                // Any other value is what its text resolves to as a plain scalar, so the text written plain
                // (or quoted with the type's tag) reads back the same.
                if s.text.is_empty() && !as_key {
                    Repr::Empty
                } else if plain_ok(&s.text) {
                    Repr::Inline(s.text.clone())
                } else {
                    let tag = match value {
                        Value::Null => "null",
                        Value::Bool(_) => "bool",
                        Value::Int(_) => "int",
                        Value::Float(_) => "float",
                        Value::Str(_) => "str",
                    };
                    Repr::Inline(format!("!!{tag} {}", double_quoted(&s.text)))
                }
            }
        },
        Out::Seq(_) | Out::Map(_) => Repr::Empty,
    }
}

fn str_repr(text: &str, as_key: bool) -> Repr<'_> {
    if plain_ok(text) && matches!(resolve_plain(text), Value::Str(_)) && text != "<<" {
        return Repr::Inline(text.to_string());
    }
    if !as_key && let Some(block) = literal_block(text) {
        return block;
    }
    Repr::Inline(double_quoted(text))
}

/// Printable in YAML's sense, minus the characters that plain and block scalars cannot show as themselves.
fn printable(c: char) -> bool {
    matches!(c, ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// Whether `text` written as a plain scalar (block context) reads back as the same text.
fn plain_ok(text: &str) -> bool {
    let mut chars = text.chars();
    let Some(first) = chars.next() else { return false };
    let second = chars.next();
    let first_ok = match first {
        '-' | '?' => second.is_some_and(|c| c != ' ') && !text.starts_with("---"),
        ' ' => false,
        ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`' | ':' => false,
        _ => true,
    };
    first_ok
        && !text.starts_with("...")
        && !text.ends_with([' ', ':'])
        && !text.contains(": ")
        && !text.contains(" #")
        && text.chars().all(printable)
}

/// A `|` block for a multi-line string that a literal block can hold exactly.
fn literal_block(text: &str) -> Option<Repr<'_>> {
    let body = text.trim_end_matches('\n');
    let newlines = text.len() - body.len();
    if !text.contains('\n')
        || body.is_empty()
        || body.starts_with([' ', '\t', '\n'])
        || !body.chars().all(|c| c == '\n' || c == '\t' || printable(c))
    {
        return None;
    }
    let lines: Vec<&str> = body.split('\n').collect();
    // A line of only blanks would be read as an empty line (or as the indentation of the block).
    if lines.iter().any(|l| !l.is_empty() && l.trim_matches([' ', '\t']).is_empty()) {
        return None;
    }
    let (header, trailing_empty) = match newlines {
        0 => ("|-", 0),
        1 => ("|", 0),
        n => ("|+", n - 1),
    };
    Some(Repr::Block { header, lines, trailing_empty })
}

fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if printable(c) => out.push(c),
            c if u32::from(c) <= 0xff => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if u32::from(c) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Object;
    use crate::yaml::parse_stream;

    fn node(text: &str) -> Node {
        let (docs, broken) = parse_stream(text);
        assert!(broken.is_empty(), "{broken:?}\n{text}");
        docs.into_iter().next().and_then(|d| d.root).expect("a document")
    }

    fn object_in(text: &str, unit: &str, environment: Option<&str>) -> CheckedObject {
        let node = node(text);
        let id = Object::from_root(&node).expect("an object").id();
        CheckedObject {
            id,
            unit: unit.to_string(),
            environment: environment.map(str::to_string),
            node,
            secret_routes: Vec::new(),
        }
    }

    fn object(text: &str) -> CheckedObject {
        object_in(text, "app.yaml", None)
    }

    /// The same values: scalars by type and text, mappings by keys (in order) and values.
    fn same_values(a: &Node, b: &Node) -> Result<(), String> {
        match (&a.kind, &b.kind) {
            (NodeKind::Scalar(x), NodeKind::Scalar(y)) => {
                let (vx, vy) = (x.value(), y.value());
                if vx.type_name() == vy.type_name() && x.text == y.text {
                    Ok(())
                } else {
                    Err(format!("{:?} {:?} != {:?} {:?}", vx.type_name(), x.text, vy.type_name(), y.text))
                }
            }
            (NodeKind::Seq(x), NodeKind::Seq(y)) if x.len() == y.len() => {
                x.iter().zip(y).try_for_each(|(p, q)| same_values(p, q))
            }
            (NodeKind::Map(x), NodeKind::Map(y)) if x.len() == y.len() => x.iter().zip(y).try_for_each(|(p, q)| {
                same_values(&p.key, &q.key)?;
                same_values(&p.value, &q.value)
            }),
            _ => Err(format!("shape differs: {a:?} vs {b:?}")),
        }
    }

    fn assert_round_trip(text: &str) -> String {
        let original = node(text);
        let written = render(&original, &[], &Redactor::new(&[], &SecretSet::new()), None);
        let (docs, broken) = parse_stream(&written);
        assert!(broken.is_empty(), "{broken:?}\n--- written:\n{written}");
        let back = docs.into_iter().next().and_then(|d| d.root).expect("a document");
        if let Err(e) = same_values(&original, &back) {
            panic!("{e}\n--- written:\n{written}");
        }
        written
    }

    #[test]
    fn round_trip_keeps_values() {
        let written = assert_round_trip(concat!(
            "a: yes\n",
            "b: \"yes\"\n",
            "c: 0644\n",
            "d: \"0644\"\n",
            "port: \"8080\"\n",
            "n: 8080\n",
            "tilde: ~\n",
            "quoted_tilde: \"~\"\n",
            "empty: \"\"\n",
            "nothing:\n",
            "null_word: null\n",
            "f: 1.5\n",
            "inf: .inf\n",
            "nan: .nan\n",
            "hex: 0x1F\n",
            "tagged: !!str 12\n",
            "tagged_int: !!int \"12\"\n",
            "script: |\n  #!/bin/sh\n  echo \"hi: there\" # c\n\n    indented\n  last\n",
            "strip: |-\n  one\n  two\n",
            "keep: |+\n  one\n\n\n",
            "folded: >\n  one\n  two\n",
            "single_newline: \"x\\n\"\n",
            "leading_space_lines: \"  a\\n  b\\n\"\n",
            "blank_line_first: \"\\nafter\"\n",
            "spaces_line: \"a\\n   \\nb\"\n",
            "crlf: \"a\\r\\nb\"\n",
            "control: \"bell\\u0007 and \\u2028 sep\"\n",
            "tab: \"a\\tb\"\n",
            "emptymap: {}\n",
            "emptylist: []\n",
            "colon: \"a: b\"\n",
            "hash: \"a #b\"\n",
            "hash_inside: a#b\n",
            "url: http://x.example/a?b=c#d\n",
            "spaces: \" padded \"\n",
            "dash: \"-\"\n",
            "flag: --verbose\n",
            "star: \"*x\"\n",
            "bang: \"!x\"\n",
            "brace: \"{x}\"\n",
            "at: \"@x\"\n",
            "ends_colon: \"x:\"\n",
            "dots: \"...\"\n",
            "marker: \"--- x\"\n",
            "unicode: héllo wörld ✓\n",
            "\"yes\": quoted key\n",
            "yes: plain key\n",
            "\"<<\": not a merge\n",
            "\"key: with colon\": v\n",
            "\"\": empty key\n",
            "? [a, b]\n",
            ": complex key\n",
            "? {x: 1}\n",
            ": [y]\n",
            "list:\n",
            "- plain\n",
            "- \"no\"\n",
            "- name: x\n",
            "  value: \"1\"\n",
            "- [nested, \"yes\"]\n",
            "- []\n",
            "- {}\n",
            "-\n",
            "- |\n  block in list\n  second\n",
            "- - deep\n",
            "  - - deeper\n",
            "nested:\n",
            "  map:\n",
            "    list:\n",
            "    - k: v\n",
            "      l:\n",
            "      - 1\n",
        ));
        assert!(written.contains("a: yes\n"), "{written}");
        assert!(written.contains("b: \"yes\"\n"), "{written}");
        assert!(written.contains("c: 0644\n"), "{written}");
        assert!(written.contains("port: \"8080\"\n"), "{written}");
        assert!(written.contains("empty: \"\"\n"), "{written}");
        assert!(written.contains("nothing:\n"), "{written}");
        assert!(written.contains("emptymap: {}\n"), "{written}");
        assert!(written.contains("emptylist: []\n"), "{written}");
        assert!(written.contains("script: |\n  #!/bin/sh\n"), "{written}");
        assert!(written.contains("flag: --verbose\n"), "{written}");
    }

    #[test]
    fn canonical_layout() {
        let written = assert_round_trip(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, labels: {app: web}}\nspec:\n  \
             template:\n    spec:\n      containers: [{name: web, image: 'nginx:1.27', args: [--port, '80']}]\n",
        );
        assert_eq!(
            written,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    app: web\nspec:\n  \
             template:\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.27\n          \
             args:\n            - --port\n            - \"80\"\n"
        );
    }

    /// Many awkward strings, as keys and as values, read back as written.
    #[test]
    fn generated_strings_round_trip() {
        const PIECES: &[&str] = &[
            "a", "Z", "0", "7", " ", "  ", "\n", "\t", ":", ": ", "#", " #", "-", "- ", "?", "'", "\"", "\\", "|", ">",
            "{", "}", "[", ",", "&", "*", "!", "%", "@", "\r", "é", "\u{85}", "yes", "~", ".", "e", "x", "_", "null",
            "<<", "---", "...", "\u{feff}", "\u{2028}", "\u{7f}", "\u{1}", "+", "0x", "\n\n",
        ];
        let mut next = crate::testing::xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let len = (next() % 7) as usize;
            let text: String = (0..len).map(|_| PIECES[(next() % PIECES.len() as u64) as usize]).collect();
            for style in [crate::yaml::Style::Quoted, crate::yaml::Style::Plain] {
                let s = scalar_node(&text, style);
                let k = scalar_node("k", style);
                let doc = map_node(vec![
                    (k.clone(), s.clone()),
                    (s.clone(), k.clone()),
                    (
                        scalar_node("l", style),
                        Node { pos: Default::default(), kind: NodeKind::Seq(vec![s.clone(), k]) },
                    ),
                ]);
                assert_written_back(&doc, &text);
            }
        }
    }

    fn scalar_node(text: &str, style: crate::yaml::Style) -> Node {
        Node { pos: Default::default(), kind: NodeKind::Scalar(Scalar { text: text.to_string(), style, tag: None }) }
    }

    fn map_node(entries: Vec<(Node, Node)>) -> Node {
        let entries = entries.into_iter().map(|(key, value)| crate::yaml::Entry { key, value }).collect();
        Node { pos: Default::default(), kind: NodeKind::Map(entries) }
    }

    fn assert_written_back(doc: &Node, text: &str) {
        let written = render(doc, &[], &Redactor::new(&[], &SecretSet::new()), None);
        let (docs, broken) = parse_stream(&written);
        assert!(broken.is_empty(), "{text:?}: {broken:?}\n{written}");
        let back = docs.into_iter().next().and_then(|d| d.root).expect("a document");
        if let Err(e) = same_values(doc, &back) {
            panic!("{text:?}: {e}\n--- written:\n{written}");
        }
    }

    const SECRET_PLAIN: &str = "hunter2-correct-horse";
    const SECRET_B64: &str = "aHVudGVyMi1jb3JyZWN0LWhvcnNl";

    fn secret(value_b64: &str, plain: &str) -> CheckedObject {
        object(&format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: shop\n  annotations:\n    \
             kubectl.kubernetes.io/last-applied-configuration: '{{\"data\":{{\"password\":\"{value_b64}\"}}}}'\n\
             type: Opaque\ndata:\n  password: {value_b64}\nstringData:\n  url: \"{plain}\"\n"
        ))
    }

    fn assert_hidden(text: &str) {
        for leaked in [SECRET_PLAIN, SECRET_B64, "hunter2"] {
            assert!(!text.contains(leaked), "{leaked} leaked:\n{text}");
        }
    }

    #[test]
    fn secret_added_is_redacted() {
        let head = [secret(SECRET_B64, SECRET_PLAIN)];
        let changes = diff_objects(&[], &head, &[], &SecretSet::new());
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, ChangeKind::Added);
        let diff = &changes[0].diff;
        assert_hidden(diff);
        assert!(diff.starts_with("--- /dev/null\n+++ head/Secret/shop/db\n"), "{diff}");
        assert!(diff.contains("+  password: \"[redacted]\"\n"), "{diff}");
        assert!(diff.contains("+  url: \"[redacted]\"\n"), "{diff}");
        assert!(diff.contains("+type: Opaque\n"), "{diff}");
        // No length and no hash: nothing a guess could be checked against.
        assert!(!diff.contains("bytes") && !diff.contains("sha256"), "{diff}");
        assert_hidden(&to_yaml(&head[0], &[], &SecretSet::new()));
    }

    #[test]
    fn secret_removed_is_redacted() {
        let base = [secret(SECRET_B64, SECRET_PLAIN)];
        let changes = diff_objects(&base, &[], &[], &SecretSet::new());
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, ChangeKind::Removed);
        assert!(changes[0].diff.starts_with("--- base/Secret/shop/db\n+++ /dev/null\n"), "{}", changes[0].diff);
        assert!(changes[0].diff.contains("-  password: \"[redacted]\""), "{}", changes[0].diff);
        assert_hidden(&changes[0].diff);
    }

    #[test]
    fn changed_secret_says_which_key_changed() {
        let base = [secret("b2xkLXZhbHVl", SECRET_PLAIN)];
        let head = [secret(SECRET_B64, SECRET_PLAIN)];
        let changes = diff_objects(&base, &head, &[], &SecretSet::new());
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, ChangeKind::Changed);
        let diff = &changes[0].diff;
        assert_hidden(diff);
        assert!(!diff.contains("b2xkLXZhbHVl"), "{diff}");
        assert!(diff.starts_with("--- base/Secret/shop/db\n+++ head/Secret/shop/db\n"), "{diff}");
        // The password changed (and kubectl's copy of it); the url did not.
        assert!(diff.contains("-  password: \"[redacted]\"\n+  password: \"[redacted, changed]\"\n"), "{diff}");
        assert!(diff.contains("\n   url: \"[redacted]\"\n"), "{diff}");
        assert!(
            diff.contains("+    kubectl.kubernetes.io/last-applied-configuration: \"[redacted, changed]\""),
            "{diff}"
        );
        // The same secret on both sides is unchanged: redaction is deterministic.
        let same = diff_objects(&head, &head, &[], &SecretSet::new());
        assert_eq!(same[0].kind, ChangeKind::Unchanged);
        assert!(same[0].diff.is_empty());
        // A key added to a Secret is a line of its own.
        let more = object(&format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: {SECRET_B64}\n  token: dG9rZW4tdmFsdWU=\n"
        ));
        let less =
            object(&format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: {SECRET_B64}\n"));
        let diff = &diff_objects(&[less], &[more], &[], &SecretSet::new())[0].diff;
        assert!(diff.contains("   password: \"[redacted]\"\n+  token: \"[redacted]\"\n"), "{diff}");
    }

    #[test]
    fn a_secret_copied_anywhere_is_redacted() {
        let mut secrets = SecretSet::new();
        secrets.insert_base64(SECRET_B64);
        let cm = |value: &str| {
            object(&format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  annotations:\n    note: \"copy of {value}\"\n\
                 data:\n  PW_COPY: {value}\n  URL: postgres://app:{value}@db/app\n  LEVEL: info\n"
            ))
        };
        let changes = diff_objects(&[], &[cm(SECRET_PLAIN)], &[], &secrets);
        let diff = &changes[0].diff;
        assert_hidden(diff);
        assert!(diff.contains("+  PW_COPY: \"[redacted]\""), "{diff}");
        assert!(diff.contains("+  URL: postgres://app:[redacted]@db/app"), "{diff}");
        assert!(diff.contains("+    note: copy of [redacted]"), "{diff}");
        assert!(diff.contains("+  LEVEL: info"), "{diff}");
        // With the old value a secret too, the head side says it changed.
        secrets.insert("old-value-0001");
        let diff = &diff_objects(&[cm("old-value-0001")], &[cm(SECRET_PLAIN)], &[], &secrets)[0].diff;
        assert!(!diff.contains("old-value-0001"), "{diff}");
        assert!(diff.contains("-  PW_COPY: \"[redacted]\"\n"), "{diff}");
        assert!(diff.contains("+  PW_COPY: \"[redacted, changed]\"\n"), "{diff}");
        assert!(diff.contains("+  URL: postgres://app:[redacted, changed]@db/app"), "{diff}");
    }

    #[test]
    fn flagged_value_is_redacted_on_both_sides() {
        let deployment = |value: &str| {
            object(&format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  annotations:\n    \
                 note: \"{value}\"\nspec:\n  template:\n    spec:\n      containers:\n      - name: api\n        \
                 env:\n        - name: TOKEN\n          value: \"{value}\"\n        - name: MODE\n          \
                 value: fast\n"
            ))
        };
        let base = deployment("old-token-value-1234");
        let mut head = deployment(SECRET_PLAIN);
        // Only head's rule flagged it: base's old value must not show either.
        head.secret_routes = vec![Route::parse("spec.template.spec.containers[0].env[0].value")];
        let changes = diff_objects(std::slice::from_ref(&base), std::slice::from_ref(&head), &[], &SecretSet::new());
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, ChangeKind::Changed);
        let diff = &changes[0].diff;
        assert_hidden(diff);
        assert!(!diff.contains("old-token-value-1234"), "{diff}");
        assert!(diff.contains("-              value: \"[redacted]\""), "{diff}");
        assert!(diff.contains("+              value: \"[redacted, changed]\""), "{diff}");
        // The same value repeated elsewhere in the object is redacted too.
        assert!(diff.contains("+    note: \"[redacted"), "{diff}");
        assert!(diff.contains("value: fast"), "{diff}");
        let alone = to_yaml(&head, &[], &SecretSet::new());
        assert_hidden(&alone);
        assert!(alone.contains("value: fast"), "{alone}");
    }

    #[test]
    fn secrets_in_a_list_are_redacted() {
        let list = object(&format!(
            "apiVersion: v1\nkind: List\nmetadata:\n  name: all\nitems:\n- apiVersion: v1\n  kind: Secret\n  \
             metadata:\n    name: db\n  data:\n    password: {SECRET_B64}\n"
        ));
        let text = to_yaml(&list, &[], &SecretSet::new());
        assert_hidden(&text);
        assert!(text.contains("password: \"[redacted]\""), "{text}");
    }

    #[test]
    fn flagged_collection_keeps_its_keys() {
        let mut obj =
            object("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  creds: x\nextra:\n  a: [1, 2]\n");
        obj.secret_routes = vec![Route::parse("extra")];
        let text = to_yaml(&obj, &[], &SecretSet::new());
        assert!(text.contains("extra:\n  a:\n    - \"[redacted]\"\n    - \"[redacted]\"\n"), "{text}");
        assert!(!text.contains("- 1"), "{text}");
    }

    fn chart_deployment(chart: &str, checksum: &str, replicas: u32) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\n  labels:\n    \
             app: web\n    helm.sh/chart: {chart}\n  annotations:\n    checksum/config: {checksum}\nspec:\n  \
             replicas: {replicas}\n  template:\n    metadata:\n      labels:\n        helm.sh/chart: {chart}\n      \
             annotations:\n        checksum/config: {checksum}\n        checksum/secret: {checksum}\n    spec:\n      \
             containers:\n      - name: web\n        image: web:{replicas}\n"
        )
    }

    #[test]
    fn chart_version_and_checksums_alone_are_unchanged() {
        let base = [object(&chart_deployment("web-1.0.0", "abc123", 2))];
        let head = [object(&chart_deployment("web-1.1.0", "def456", 2))];
        let changes = diff_objects(&base, &head, &[], &SecretSet::new());
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, ChangeKind::Unchanged, "{}", changes[0].diff);
        assert!(changes[0].diff.is_empty());
        let text = to_yaml(&head[0], &noise_routes(&head[0], &[]), &SecretSet::new());
        assert!(!text.contains("helm.sh/chart") && !text.contains("checksum/"), "{text}");
        // An emptied annotations map is left out rather than shown as `{}`.
        assert!(!text.contains("annotations"), "{text}");
        assert!(text.contains("app: web"), "{text}");
    }

    #[test]
    fn noise_routes_are_concrete() {
        let obj = object(&chart_deployment("web-1.0.0", "abc", 1));
        let extra = [Route::parse("spec.replicas")];
        let routes: Vec<String> = noise_routes(&obj, &extra).iter().map(ToString::to_string).collect();
        assert_eq!(
            routes,
            [
                "metadata.labels[\"helm.sh/chart\"]",
                "metadata.annotations.checksum/config",
                "spec.template.metadata.labels[\"helm.sh/chart\"]",
                "spec.template.metadata.annotations.checksum/config",
                "spec.template.metadata.annotations.checksum/secret",
                "spec.replicas",
            ]
        );
    }

    #[test]
    fn extra_ignore_routes() {
        let base = [object(&chart_deployment("c", "x", 2))];
        let head = [object(&chart_deployment("c", "x", 3))];
        assert_eq!(diff_objects(&base, &head, &[], &SecretSet::new())[0].kind, ChangeKind::Changed);
        // replicas and the image both change; both ignored (the image through a `*` segment).
        let ignore = [Route::parse("spec.replicas"), Route::parse("spec.template.spec.containers[*].image")];
        let changes = diff_objects(&base, &head, &ignore, &SecretSet::new());
        assert_eq!(changes[0].kind, ChangeKind::Unchanged, "{}", changes[0].diff);
        let only_replicas = diff_objects(&base, &head, &ignore[..1], &SecretSet::new());
        assert_eq!(only_replicas[0].kind, ChangeKind::Changed);
        assert!(only_replicas[0].diff.contains("-          image: web:2\n+          image: web:3\n"));
        assert!(!only_replicas[0].diff.contains("replicas"), "{}", only_replicas[0].diff);
    }

    #[test]
    fn api_version_change_alone_is_changed() {
        let text =
            |v: &str| format!("apiVersion: {v}\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n");
        let base = [object(&text("apps/v1beta2"))];
        let head = [object(&text("apps/v1"))];
        let changes = diff_objects(&base, &head, &[], &SecretSet::new());
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, ChangeKind::Changed);
        assert_eq!(
            changes[0].diff,
            "--- base/Deployment/web\n+++ head/Deployment/web\n@@ -1,4 +1,4 @@\n-apiVersion: apps/v1beta2\n\
             +apiVersion: apps/v1\n kind: Deployment\n metadata:\n   name: web\n"
        );
        assert_eq!(changes[0].object.api_version, "apps/v1");
        // Kinds that moved out of `extensions` keep their identity too.
        let moved = diff_objects(&[object(&text("extensions/v1beta1"))], &head, &[], &SecretSet::new());
        assert_eq!(moved.len(), 1);
        assert_eq!(moved[0].kind, ChangeKind::Changed);
        // A different group is a different object.
        let other = diff_objects(&[object(&text("example.com/v1"))], &head, &[], &SecretSet::new());
        let kinds: Vec<ChangeKind> = other.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, [ChangeKind::Added, ChangeKind::Removed]);
    }

    #[test]
    fn environments_are_kept_apart() {
        let cm = |v: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  level: {v}\n");
        let base =
            [object_in(&cm("info"), "charts/web", Some("staging")), object_in(&cm("info"), "charts/web", Some("prod"))];
        let head = [
            object_in(&cm("debug"), "charts/web", Some("staging")),
            object_in(&cm("info"), "charts/web", Some("prod")),
        ];
        let changes = diff_objects(&base, &head, &[], &SecretSet::new());
        let got: Vec<(Option<&str>, ChangeKind)> = changes.iter().map(|c| (c.environment.as_deref(), c.kind)).collect();
        assert_eq!(got, [(Some("prod"), ChangeKind::Unchanged), (Some("staging"), ChangeKind::Changed)]);
        // Only one environment at head: the other is removed, not paired across environments.
        let changes = diff_objects(&base, &head[..1], &[], &SecretSet::new());
        let got: Vec<(Option<&str>, ChangeKind)> = changes.iter().map(|c| (c.environment.as_deref(), c.kind)).collect();
        assert_eq!(got, [(Some("prod"), ChangeKind::Removed), (Some("staging"), ChangeKind::Changed)]);
    }

    #[test]
    fn order_is_unit_environment_then_head_order_removed_last() {
        let cm = |name: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n");
        let base = [
            object_in(&cm("gone"), "b.yaml", None),
            object_in(&cm("kept"), "b.yaml", None),
            object_in(&cm("x"), "a.yaml", None),
        ];
        let head = [
            object_in(&cm("new"), "b.yaml", None),
            object_in(&cm("kept"), "b.yaml", None),
            object_in(&cm("y"), "a.yaml", None),
        ];
        let changes = diff_objects(&base, &head, &[], &SecretSet::new());
        let got: Vec<(&str, &str, ChangeKind)> =
            changes.iter().map(|c| (c.unit.as_str(), c.object.name.as_str(), c.kind)).collect();
        assert_eq!(
            got,
            [
                ("a.yaml", "y", ChangeKind::Added),
                ("a.yaml", "x", ChangeKind::Removed),
                ("b.yaml", "new", ChangeKind::Added),
                ("b.yaml", "kept", ChangeKind::Unchanged),
                ("b.yaml", "gone", ChangeKind::Removed),
            ]
        );
    }

    #[test]
    fn odd_trees_do_not_panic() {
        // Deeper than any parsed document: written with a placeholder, not a stack overflow.
        let mut deep = Node { pos: Default::default(), kind: NodeKind::Seq(Vec::new()) };
        for _ in 0..2000 {
            deep = Node { pos: Default::default(), kind: NodeKind::Seq(vec![deep]) };
        }
        let text = render(&deep, &[], &Redactor::new(&[], &SecretSet::new()), None);
        assert!(text.contains("<nesting too deep>"));
        let mut obj = object("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata: notamap\nstringData:\n");
        obj.secret_routes = vec![Route::root(), Route::parse("missing.route"), Route::parse("kind")];
        let text = to_yaml(&obj, &[Route::root(), Route::parse("*")], &SecretSet::new());
        assert_eq!(text, "{}\n");
        let text = to_yaml(&obj, &[], &SecretSet::new());
        assert!(text.contains("data: \"[redacted]\""), "{text}");
        assert!(text.contains("stringData:\n"), "{text}");
        assert!(text.contains("kind: \"[redacted]\""), "{text}");
        // A root that is not a mapping.
        let scalar = node("just text\n");
        let _ = render(&scalar, &[], &Redactor::new(&[], &SecretSet::new()), None);
    }
}
