//! Maps a finding on a rendered Helm object back to the template line and the values-file line that produced it.
//!
//! A finding on a rendered object carries a symbolic route (`spec.template.spec.containers[0].resources`).
//! People do not edit the rendered object: they edit the chart template and the values files. This module
//! turns the route into those two places, best effort, without running Helm again and without inventing
//! anything: every location returned is a key that was really found in the file it names.
//!
//! # How a route is mapped
//!
//! Templates are Go templates that happen to produce YAML; they are read as text, not parsed as YAML.
//!
//! 1. **Scanning.** Template actions (`{{ … }}`, possibly spanning lines) are found and blanked out of a
//!    copy of the text, so that YAML keys are only ever matched in literal template text. `{{/* */}}`
//!    comments are blanked too, and every line of a `{{ define }} … {{ end }}` block is ignored. The
//!    control actions (`if`, `with`, `range`, `else`, `end`, …) are replayed in order so that, at any
//!    action, the meaning of `.` is known: `.Values.x` inside `{{ with .Values.x }}`, "an element of
//!    `.Values.list`" inside `{{ range .Values.list }}` (which element is decided by the walk, step 3),
//!    unknown inside a `define` or a `range` over anything computed, the chart's root context elsewhere.
//!    Simple variables (`{{ $svc := .Values.service }}`, and `range $k, $v := …`'s key and element) are
//!    remembered as well (their scoping is ignored).
//! 2. **Document.** The text is split at `---` lines; pieces without any literal YAML content are not
//!    documents (Helm drops empty documents). `document` is clamped to the last piece, which is what a
//!    `range` loop that emits several objects from one piece needs.
//! 3. **Template line.** Route keys are matched in order, each as a direct child of the previous match:
//!    the child column is that of the first literal line below the parent, and the search stops at the
//!    first literal line that is not indented past the parent (the parent's block has ended). Lines that
//!    hold only template actions never end a block: their indentation says nothing about their output.
//!    An index is resolved by counting literal `- ` items under the list key, but only while no template
//!    action between the items could have added or removed some; past such an action, an item written
//!    inside a `range` loop is taken (the loop produced the rendered item), otherwise matching stops.
//!    When the loop renders exactly one item per element (one item directly in its body, no other action
//!    between items there), the items before it are all literal and certain, and the loop ranges over a
//!    values collection, the rendered index minus those items is the element: the `n`th item of the list
//!    (the highest-precedence file's: Helm replaces lists whole), or the `n`th key in sorted order of the
//!    mapping merged over every file (Go templates visit map keys sorted). That element is what `.` (and
//!    the loop's variables) stand for in the item; when it cannot be told, references below the loop's
//!    element are dropped (no values line rather than a wrong one). The deepest key matched is the
//!    template location. Keys produced by helpers (`include`, `template`) cannot be traced: the location
//!    is then the deepest literal key above them.
//! 4. **Values reference.** On the matched line, after the key — or, when the key's value is written on
//!    the following lines, on those following lines that hold only template actions — the output actions
//!    are searched for references into `.Values`: `.Values.a.b`, `$.Values.a.b`, `index .Values "a" "b"`,
//!    a variable bound to one, or `.` inside `with`. Condition actions (`if`, `with`, `range`) are not
//!    outputs and are skipped; so is any action that calls `include` or `template`. The route segments
//!    below the matched key extend the reference (`resources:` + `toYaml .Values.resources` for the route
//!    `…resources.limits.memory` looks up `resources.limits.memory`).
//! 5. **Values line.** Each values file is parsed as YAML, the file's prefix (the subchart name, seen from
//!    a parent chart) is prepended, and the deepest key of the path found is taken, never shallower than
//!    the first key below the prefix. The highest-precedence file that has the whole path wins; when no
//!    file has it, the highest-precedence file with the longest prefix of it. A list index or map key of
//!    a loop element (step 3) is part of the path, so an item's `value:` key (or the item, or the map
//!    key) is found. `--set` overrides (`.kpath.yml`'s `set`, Argo CD `parameters`, Flux `targetPath`)
//!    come as the last, highest-precedence files: one key set to its value on the line that writes it.
//! 6. **Several references.** When a line has several references (`"{{ .Values.image.repository }}:{{
//!    .Values.image.tag }}"`) and the finding names the part of the scalar at fault
//!    ([`crate::finding::Finding::part`]: the tag `latest`), the references whose value Helm prints as
//!    that part are kept, else those whose value contains it. Helm reads values as JSON, so numbers print
//!    as Go prints a float64 (`1.0` → `1`), and YAML 1.1 scalars resolve as Kubernetes reads them. When no
//!    reference produces the part and the template writes it itself (`…:latest`), there is no values
//!    line: the template line is the one to change. Of the references left, one found in full wins (of
//!    several, the one set by the highest-precedence file, then the first), else the one found deepest.
//!
//! # Limitations
//!
//! Conditions are not evaluated (`if` branches are all considered present), helpers are opaque, keys
//! written by templates (`{{ $k }}: v`) and flow collections (`{a: 1}`) cannot be matched, variables
//! ignore scoping, a `range` element is known only for an item of a list the walk counted (not for a loop
//! that renders documents or mapping keys, nor a list with several loops or conditions before the
//! loop), `--set` keys with list indices are not placed, and a values key set to `null` in a later file
//! (which deletes it in Helm) is only noticed in a mapping a loop ranges over. As in Go templates,
//! `.Values.x` inside a `with` block is read relative to `.` (charts write `$.Values.x` there), so it
//! usually finds no values key. When the values files lack the full path, the location is the deepest
//! ancestor key that exists (e.g. `nodeSelector: {}`), which is where the setting would be added. Each
//! call re-reads the template; the values files are parsed once per caller's `OnceLock`.

use std::collections::HashMap;

use compact_str::CompactString;

use crate::yaml::{self, Node, Pos, Route, Segment};

/// A chart template as written (e.g. `charts/shop/templates/deployment.yaml`).
#[derive(Debug, Clone, Copy)]
pub struct Template<'a> {
    pub path: &'a str,
    pub text: &'a str,
}

/// A values file that applies to the template, with the key path under which its values reach the
/// template: `[]` for the chart's own values.yaml and environment files, `["redis"]` for a parent
/// chart's values.yaml seen from the `redis` subchart's templates.
#[derive(Debug, Clone)]
pub struct ValuesFile<'a> {
    pub path: &'a str,
    pub text: &'a str,
    pub prefix: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationKind {
    Values,
    Template,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLocation {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub kind: LocationKind,
}

/// `values` is in increasing precedence (values.yaml first, then environment files; the last file
/// that sets a key wins). `document` is the 0-based index of this rendered object among the
/// documents this template produced (a template may emit several, separated by `---`; clamp to the
/// last segment of the template when the template has fewer, e.g. a `range` loop).
/// Returns the values location first (if any), then the template location (if any). Never invents a
/// line: a location is returned only when the key was really found.
pub fn map_route(
    template: &Template<'_>,
    values: &[ValuesFile<'_>],
    document: usize,
    route: &Route,
) -> Vec<SourceLocation> {
    map_route_parsed(template, values, &std::sync::OnceLock::new(), document, route, None)
}

/// Each values file's tree (`None` when it does not parse), in the order of `values`.
pub fn parse_values(values: &[ValuesFile<'_>]) -> Vec<Option<Node>> {
    values.iter().map(|v| yaml::parse_single(v.text).ok().flatten()).collect()
}

/// Like [`map_route`], with a place to keep the values files' trees (parsed the first time they are
/// needed): a caller placing many findings parses each values file once instead of once per finding,
/// and a values file may be megabytes. `part` is the part of the rendered scalar the finding is about
/// ([`crate::finding::Finding::part`]): among several references that build the value, the one whose value
/// produced it is chosen.
pub fn map_route_parsed(
    template: &Template<'_>,
    values: &[ValuesFile<'_>],
    parsed_values: &std::sync::OnceLock<Vec<Option<Node>>>,
    document: usize,
    route: &Route,
    part: Option<&str>,
) -> Vec<SourceLocation> {
    let analysis = Analysis::new(template.text);
    let Some((start, end)) = analysis.document(document) else {
        return Vec::new();
    };
    let view = ValuesView { files: values, parsed: parsed_values };
    let Some((found, iterations)) = analysis.walk(start, end, route, &view) else {
        return Vec::new();
    };
    let template_location = SourceLocation {
        file: template.path.to_string(),
        line: to_u32(found.line + 1),
        column: to_u32(found.key_col + 1),
        kind: LocationKind::Template,
    };

    let mut out = Vec::new();
    let references: Vec<Vec<Segment>> = analysis
        .references(&found, end)
        .iter()
        .filter_map(|reference| analysis.concrete(reference, &iterations))
        .collect();
    if !references.is_empty() {
        let rest = route.0.get(found.segment + 1..).unwrap_or(&[]);
        let parsed = view.trees();
        let mut hits: Vec<(ValuesHit, bool, Option<String>)> = Vec::new();
        for reference in references {
            let mut path = reference;
            path.extend(rest.iter().cloned());
            let Some(hit) = best_values_hit(values, parsed, &path) else {
                continue;
            };
            let full = hit.matched == path.len();
            let printed = if full { view.node(&path).and_then(printed) } else { None };
            hits.push((hit, full, printed));
        }
        // The part at fault (the `latest` of `repo:latest`) picks, of several references, those whose value
        // Helm prints as that part, else those whose value contains it. When none does and the template
        // writes the part itself (`{{ .Values.image.repository }}:latest`), the template line is the place.
        let wanted = part.filter(|p| !p.is_empty());
        let mut candidates: Vec<usize> = (0..hits.len()).collect();
        if let Some(part) = wanted {
            let equal: Vec<usize> =
                candidates.iter().copied().filter(|&i| hits[i].2.as_deref() == Some(part)).collect();
            let within: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&i| hits[i].2.as_deref().is_some_and(|v| v.contains(part)))
                .collect();
            if !equal.is_empty() {
                candidates = equal;
            } else if !within.is_empty() {
                candidates = within;
            } else if analysis.writes_literally(&found, part) {
                candidates.clear();
            }
        }
        // Of several references on the line (`{{ .Values.a | default .Values.b }}`), prefer one found in
        // full; among those, the one set by the highest-precedence file (the environment's file, or a parent
        // chart overriding a subchart): that is the value someone chose for this release. Otherwise the
        // deepest partial match.
        let mut chosen: Option<(&ValuesHit, bool)> = None;
        for i in candidates {
            let (hit, full, _) = &hits[i];
            let better = match &chosen {
                None => true,
                Some((c, c_full)) => match (*full, *c_full) {
                    (true, false) => true,
                    (false, true) => false,
                    (true, true) => hit.file > c.file,
                    (false, false) => hit.matched > c.matched,
                },
            };
            if better {
                chosen = Some((hit, *full));
            }
        }
        if let Some((hit, _)) = chosen
            && let Some(file) = values.get(hit.file)
        {
            out.push(SourceLocation {
                file: file.path.to_string(),
                line: hit.pos.line,
                column: hit.pos.col,
                kind: LocationKind::Values,
            });
        }
    }
    out.push(template_location);
    out
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn key_segment(name: &str) -> Segment {
    Segment::Key(CompactString::from(name))
}

// ---------------------------------------------------------------------------------------------------
// Values files
// ---------------------------------------------------------------------------------------------------

/// The values files as Helm merges them, read lazily: what a `range` loop iterates and what a reference
/// prints.
struct ValuesView<'v> {
    files: &'v [ValuesFile<'v>],
    parsed: &'v std::sync::OnceLock<Vec<Option<Node>>>,
}

/// The element each `range` loop (by frame index) was at for the rendered item the walk went through:
/// `Index(n)` of a list, `Key(k)` of a map.
type Iterations = HashMap<usize, Segment>;

impl ValuesView<'_> {
    fn trees(&self) -> &[Option<Node>] {
        self.parsed.get_or_init(|| parse_values(self.files))
    }

    /// Each file's node at `path` (below its prefix), highest precedence first.
    fn nodes(&self, path: &[Segment]) -> Vec<&Node> {
        self.files
            .iter()
            .zip(self.trees())
            .rev()
            .filter_map(|(file, root)| {
                let mut node = root.as_ref()?;
                for key in &file.prefix {
                    node = &node.entry(key)?.value;
                }
                for segment in path {
                    node = match segment {
                        Segment::Key(k) => &node.entry(k)?.value,
                        Segment::Index(i) => node.items().get(*i)?,
                    };
                }
                Some(node)
            })
            .collect()
    }

    /// The merged value's node at `path` when it is not a mapping: the highest-precedence file's (Helm
    /// merges mappings key by key; anything else is replaced whole by a later file).
    fn node(&self, path: &[Segment]) -> Option<&Node> {
        self.nodes(path).into_iter().next()
    }

    /// The `n`th element `range` visits in the merged value at `path`: the `n`th item of a list, or the
    /// `n`th key of a mapping in sorted order (Go templates visit map keys sorted:
    /// <https://pkg.go.dev/text/template#hdr-Actions>). `None` when that cannot be told for certain: no such
    /// element, a scalar, or a key some file sets to null (Helm deletes it).
    fn element(&self, path: &[Segment], n: usize) -> Option<Segment> {
        let nodes = self.nodes(path);
        let top = nodes.first()?;
        if top.is_seq() {
            return top.items().get(n).map(|_| Segment::Index(n));
        }
        if !top.is_map() {
            return None;
        }
        let mut keys: Vec<&str> = Vec::new();
        // Mappings merge down to the first file that sets something else there (it and the ones below are
        // replaced).
        for node in nodes.iter().take_while(|n| n.is_map()) {
            for entry in node.entries() {
                if entry.value.is_null() {
                    return None;
                }
                keys.push(entry.key.as_key()?);
            }
        }
        keys.sort_unstable();
        keys.dedup();
        keys.get(n).map(|k| key_segment(k))
    }
}

/// How Helm prints a scalar of the values with `{{ … }}`: Helm reads values as JSON numbers, so every number
/// is a float64 printed by Go's `%v` (`1.0` → `1`, `1234567` → `1.234567e+06`); YAML 1.1 booleans print as
/// `true`/`false`. `None` for collections and null.
fn printed(node: &Node) -> Option<String> {
    use crate::yaml::Value;
    Some(match node.scalar()?.value() {
        Value::Null => return None,
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => go_float(i as f64),
        Value::Float(f) => go_float(f),
        Value::Str(s) => s.to_string(),
    })
}

/// A float64 as Go's `%v` prints it, which is `strconv.FormatFloat(f, 'g', -1, 64)`: the shortest digits
/// that read back, in exponent form when the decimal exponent is below -4 or at least 6
/// (<https://pkg.go.dev/strconv#FormatFloat>).
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let scientific = format!("{f:e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else { return scientific };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        return f.to_string();
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
}

struct ValuesHit {
    /// How many segments of the path (below the file's prefix) were found.
    matched: usize,
    /// Index of the file in the `values` slice.
    file: usize,
    /// Position of the deepest key (or sequence item) found.
    pos: Pos,
}

/// The file that best answers `path`: most segments found, then highest precedence (latest file).
fn best_values_hit(values: &[ValuesFile<'_>], parsed: &[Option<Node>], path: &[Segment]) -> Option<ValuesHit> {
    let mut best: Option<ValuesHit> = None;
    for (file, (vf, root)) in values.iter().zip(parsed).enumerate() {
        let Some(root) = root else { continue };
        if let Some((matched, pos)) = lookup_values(root, &vf.prefix, path)
            && best.as_ref().is_none_or(|b| matched >= b.matched)
        {
            best = Some(ValuesHit { matched, file, pos });
        }
    }
    best
}

/// Follows `prefix` (all of it must exist) and then as much of `path` as exists. Returns how many
/// segments of `path` were found (at least one) and the position of the deepest.
fn lookup_values(root: &Node, prefix: &[String], path: &[Segment]) -> Option<(usize, Pos)> {
    let mut node = root;
    for key in prefix {
        node = &node.entry(key)?.value;
    }
    let mut best = None;
    for (depth, segment) in path.iter().enumerate() {
        let (pos, next) = match segment {
            Segment::Key(k) => match node.entry(k) {
                Some(entry) => (entry.key.pos, &entry.value),
                None => break,
            },
            Segment::Index(i) => match node.items().get(*i) {
                Some(item) => (item.pos, item),
                None => break,
            },
        };
        best = Some((depth + 1, pos));
        node = next;
    }
    best
}

// ---------------------------------------------------------------------------------------------------
// Template text: actions, lines, control flow
// ---------------------------------------------------------------------------------------------------

/// What `.` (or a variable) stands for at some point of a template.
#[derive(Debug, Clone, PartialEq)]
enum Dot {
    /// The chart's root context (`.Values`, `.Release`, …).
    Root,
    /// A node of the merged values (`[]` is `.Values` itself).
    Values(Vec<Segment>),
    /// Below the element of the collection the `range` block at this frame iterates: which element is
    /// known only once the walk has chosen a rendered item of the loop ([`Iterations`]).
    Element { range: usize, path: Vec<Segment> },
    /// The index (list) or key (map) of that element: `$k` in `range $k, $v := …`.
    ElementKey { range: usize },
    /// Anything else: a helper's argument, a computed value.
    Unknown,
}

/// Longest values path followed; deeper ones (nested `with` blocks re-reading `.Values`) are unknown.
const MAX_VALUES_PATH: usize = 64;

impl Dot {
    fn len(&self) -> usize {
        match self {
            Dot::Values(path) | Dot::Element { path, .. } => path.len(),
            _ => 0,
        }
    }

    fn then(self, segment: Segment) -> Dot {
        match self {
            Dot::Root => match segment {
                Segment::Key(k) if k == "Values" => Dot::Values(Vec::new()),
                _ => Dot::Unknown,
            },
            Dot::Values(_) | Dot::Element { .. } if self.len() >= MAX_VALUES_PATH => Dot::Unknown,
            Dot::Values(mut path) => {
                path.push(segment);
                Dot::Values(path)
            }
            Dot::Element { range, mut path } => {
                path.push(segment);
                Dot::Element { range, path }
            }
            Dot::ElementKey { .. } | Dot::Unknown => Dot::Unknown,
        }
    }

    /// Whether the value may be a node of the values (a reference worth following).
    fn is_values(&self) -> bool {
        matches!(self, Dot::Values(_) | Dot::Element { .. } | Dot::ElementKey { .. })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// `.a.b` (var `None`), `$.a` (var `Some("")`), `$x.a` (var `Some("x")`); `.` alone has no fields.
    Ref {
        var: Option<String>,
        fields: Vec<String>,
    },
    Str(String),
    Int(usize),
    Word(String),
    Assign,
    Comma,
    Open,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ActionKind {
    If,
    Else,
    End,
    With,
    Range,
    Define,
    Block,
    /// `{{ template "x" . }}`, `{{ break }}`, `{{ continue }}`: no output we can trace.
    Opaque,
    Assign,
    Output,
}

#[derive(Debug)]
struct Action {
    start_line: usize,
    start_col: usize,
    end_line: usize,
    toks: Vec<Tok>,
    kind: ActionKind,
    /// The innermost open control block when this action runs (index into `frames`).
    frame: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    If,
    With,
    Range,
    Define,
    Block,
}

/// Where the meaning of `.` comes from inside a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DotSource {
    Root,
    Unknown,
    /// The value of the `with` frame at this index.
    With(usize),
    /// The element of the `range` frame at this index.
    Element(usize),
}

#[derive(Debug, Clone)]
struct Frame {
    parent: Option<usize>,
    kind: FrameKind,
    /// For `with`: the value `.` takes inside; for `range`: the collection iterated.
    value: Dot,
    /// What `.` is inside this branch of the block, and outside the block (for its `else` branch).
    inner: DotSource,
    outer: DotSource,
    /// Line of the action that opened the block.
    line: usize,
    /// Line of the outermost `define` this block is in (itself included).
    define_line: Option<usize>,
    /// Line of the innermost `range` body this block is in (itself included; not its `else`).
    range_line: Option<usize>,
    /// Line of the action that closes this branch of the block (`end`, or an `else` that follows it).
    closed: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    /// Inside a `define` block.
    Masked,
    /// Empty, or a YAML comment.
    Blank,
    /// Only template actions or template comments.
    TemplateOnly,
    /// Literal YAML text (possibly with actions).
    Content,
}

#[derive(Debug)]
struct Line {
    /// The line with actions and template comments replaced by spaces (one per character).
    blank: String,
    kind: LineKind,
    /// Leading spaces.
    indent: usize,
    /// Column (0-based) after the indentation and any `- ` markers: where a key would start.
    key_col: usize,
    /// Column (0-based) where literal text starts at or after `key_col` (past leading actions, as in
    /// `{{- if .x }}key: v`): where a key is matched.
    text_col: usize,
    /// Whether the line starts a sequence item (`- …`).
    dash: bool,
    /// Column (0-based) of the first item's content (after the first `- `).
    content_col: usize,
}

/// Where a route key was found in the template.
#[derive(Debug, Clone, Copy)]
struct KeyMatch {
    /// 0-based line index.
    line: usize,
    /// 0-based column of the key.
    key_col: usize,
    /// Index in the route of the key segment matched.
    segment: usize,
}

/// The walk's position in the template.
#[derive(Debug, Clone, Copy)]
enum Cursor {
    Top,
    Key { line: usize, key_col: usize },
    Item { line: usize, dash_col: usize, content_col: usize },
}

struct Analysis {
    lines: Vec<Line>,
    actions: Vec<Action>,
    frames: Vec<Frame>,
    /// Variable bindings by name: (index of the binding action, value), in action order. Scoping is
    /// ignored: a binding is visible to every later action.
    bindings: HashMap<String, Vec<(usize, Dot)>>,
    /// The innermost open control block at the start of each line.
    line_frame: Vec<Option<usize>>,
}

/// A span of the text that is a template action or comment.
struct RawAction<'t> {
    start_line: usize,
    start_col: usize,
    end_line: usize,
    /// `None` for a comment.
    body: Option<&'t str>,
}

/// Finds `{{ … }}` actions and `{{/* … */}}` comments, and returns the text with them blanked out
/// (each character but newlines replaced by a space, so columns are kept).
fn scan(text: &str) -> (String, Vec<RawAction<'_>>) {
    let bytes = text.as_bytes();
    let mut blanked = String::with_capacity(text.len());
    let mut actions = Vec::new();
    let mut line = 0usize;
    let mut col = 0usize;
    let mut i = 0usize;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"{{") {
            let (start_line, start_col) = (line, col);
            let mut j = i + 2;
            if bytes.get(j) == Some(&b'-') && bytes.get(j + 1).is_some_and(u8::is_ascii_whitespace) {
                j += 1;
            }
            while bytes.get(j).is_some_and(u8::is_ascii_whitespace) {
                j += 1;
            }
            let (end, body) = if bytes[j.min(bytes.len())..].starts_with(b"/*") {
                (comment_end(bytes, j + 2), None)
            } else {
                let (close, terminated) = action_end(bytes, i + 2);
                let body_start = (i + 2).min(close);
                let body_end = if terminated { close.saturating_sub(2).max(body_start) } else { close };
                let body = text.get(body_start..body_end).unwrap_or("");
                let body = body.strip_prefix('-').filter(|b| b.starts_with(char::is_whitespace)).unwrap_or(body);
                let body = match body.strip_suffix('-') {
                    Some(b) if b.ends_with(char::is_whitespace) => b,
                    _ => body,
                };
                (close, Some(body.trim()))
            };
            for ch in text.get(i..end).unwrap_or("").chars() {
                if ch == '\n' {
                    blanked.push('\n');
                    line += 1;
                    col = 0;
                } else {
                    blanked.push(' ');
                    col += 1;
                }
            }
            actions.push(RawAction { start_line, start_col, end_line: line, body });
            i = end.max(i + 1);
        } else {
            let Some(ch) = text.get(i..).and_then(|s| s.chars().next()) else { break };
            blanked.push(ch);
            if ch == '\n' {
                line += 1;
                col = 0;
            } else {
                col += 1;
            }
            i += ch.len_utf8();
        }
    }
    (blanked, actions)
}

/// End (exclusive) of a template comment whose text starts at `from`: after `*/}}` or `*/ -}}`.
fn comment_end(bytes: &[u8], from: usize) -> usize {
    let mut k = from;
    while k + 1 < bytes.len() {
        if bytes[k] == b'*' && bytes[k + 1] == b'/' {
            let mut m = k + 2;
            while bytes.get(m).is_some_and(u8::is_ascii_whitespace) {
                m += 1;
            }
            if bytes.get(m) == Some(&b'-') {
                m += 1;
            }
            if bytes.get(m..m + 2) == Some(b"}}") {
                return m + 2;
            }
        }
        k += 1;
    }
    bytes.len()
}

/// End (exclusive) of an action whose body starts at `from`: after the first `}}` outside string
/// literals, and whether that `}}` exists. Interpreted strings end at a newline at the latest (Go
/// forbids newlines in them).
fn action_end(bytes: &[u8], from: usize) -> (usize, bool) {
    let mut k = from;
    while k < bytes.len() {
        match bytes[k] {
            b'"' => {
                k += 1;
                while k < bytes.len() && bytes[k] != b'"' && bytes[k] != b'\n' {
                    k += if bytes[k] == b'\\' { 2 } else { 1 };
                }
                k += 1;
            }
            b'`' => {
                k += 1;
                while k < bytes.len() && bytes[k] != b'`' {
                    k += 1;
                }
                k += 1;
            }
            b'}' if bytes.get(k + 1) == Some(&b'}') => return (k + 2, true),
            _ => k += 1,
        }
    }
    (bytes.len(), false)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits an action's body into the tokens the mapping needs.
fn tokenize(body: &str) -> Vec<Tok> {
    let chars: Vec<char> = body.chars().collect();
    let n = chars.len();
    let mut toks = Vec::new();
    let mut i = 0usize;
    while i < n {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        match c {
            '"' => {
                let mut s = String::new();
                i += 1;
                while i < n && chars[i] != '"' {
                    if chars[i] == '\\' {
                        if let Some(&next) = chars.get(i + 1) {
                            s.push(next);
                        }
                        i += 2;
                    } else {
                        s.push(chars[i]);
                        i += 1;
                    }
                }
                i += 1;
                toks.push(Tok::Str(s));
            }
            '`' => {
                let mut s = String::new();
                i += 1;
                while i < n && chars[i] != '`' {
                    s.push(chars[i]);
                    i += 1;
                }
                i += 1;
                toks.push(Tok::Str(s));
            }
            '\'' => {
                i += 1;
                while i < n && chars[i] != '\'' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                toks.push(Tok::Other);
            }
            '(' => {
                toks.push(Tok::Open);
                i += 1;
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Assign);
                i += 2;
            }
            '=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            '.' | '$' => {
                // A field read on a parenthesised expression (`(…).a`) cannot be followed.
                let chained = i > 0 && (chars[i - 1] == ')' || is_ident(chars[i - 1]));
                let mut var = None;
                if c == '$' {
                    i += 1;
                    let start = i;
                    while i < n && is_ident(chars[i]) {
                        i += 1;
                    }
                    var = Some(chars[start..i].iter().collect::<String>());
                }
                let mut fields = Vec::new();
                while i < n && chars[i] == '.' {
                    i += 1;
                    let start = i;
                    while i < n && is_ident(chars[i]) {
                        i += 1;
                    }
                    if start == i {
                        break;
                    }
                    fields.push(chars[start..i].iter().collect::<String>());
                }
                toks.push(if chained { Tok::Other } else { Tok::Ref { var, fields } });
            }
            _ if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) => {
                let start = i;
                i += 1;
                while i < n && (is_ident(chars[i]) || matches!(chars[i], '.' | '+' | '-')) {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                toks.push(text.parse::<usize>().map_or(Tok::Other, Tok::Int));
            }
            _ if is_ident(c) => {
                let start = i;
                while i < n && is_ident(chars[i]) {
                    i += 1;
                }
                toks.push(Tok::Word(chars[start..i].iter().collect()));
            }
            _ => {
                toks.push(Tok::Other);
                i += 1;
            }
        }
    }
    toks
}

fn classify(toks: &[Tok]) -> ActionKind {
    match toks {
        [Tok::Word(w), ..] => match w.as_str() {
            "if" => ActionKind::If,
            "else" => ActionKind::Else,
            "end" => ActionKind::End,
            "with" => ActionKind::With,
            "range" => ActionKind::Range,
            "define" => ActionKind::Define,
            "block" => ActionKind::Block,
            "template" | "break" | "continue" => ActionKind::Opaque,
            _ => ActionKind::Output,
        },
        [Tok::Ref { var: Some(v), fields }, Tok::Assign, ..] if !v.is_empty() && fields.is_empty() => {
            ActionKind::Assign
        }
        _ => ActionKind::Output,
    }
}

/// `$a, $b :=` at the head of a `with`/`range` clause: the variable names and the rest of the clause.
fn split_declaration(toks: &[Tok]) -> (Vec<String>, &[Tok]) {
    let mut names = Vec::new();
    let mut i = 0;
    while let Some(Tok::Ref { var: Some(v), fields }) = toks.get(i) {
        if v.is_empty() || !fields.is_empty() {
            break;
        }
        names.push(v.clone());
        match toks.get(i + 1) {
            Some(Tok::Comma) => i += 2,
            Some(Tok::Assign) => return (names, toks.get(i + 2..).unwrap_or(&[])),
            _ => break,
        }
    }
    (Vec::new(), toks)
}

fn line_shape(raw: &str) -> (usize, usize, bool, usize) {
    let bytes = raw.as_bytes();
    let indent = bytes.iter().take_while(|b| **b == b' ').count();
    let mut k = indent;
    let mut dash = false;
    let mut content_col = indent;
    while bytes.get(k) == Some(&b'-') && bytes.get(k + 1).is_none_or(|b| *b == b' ') {
        let first = !dash;
        dash = true;
        k += 1;
        while bytes.get(k) == Some(&b' ') {
            k += 1;
        }
        if first {
            content_col = if k >= bytes.len() { indent + 2 } else { k };
        }
    }
    (indent, k, dash, content_col)
}

impl Analysis {
    fn new(text: &str) -> Analysis {
        let (blanked, raw_actions) = scan(text);
        let raw_lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
        let blank_lines: Vec<&str> = blanked.split('\n').map(|l| l.trim_end_matches('\r')).collect();
        let line_count = raw_lines.len();

        let actions: Vec<Action> = raw_actions
            .into_iter()
            .filter_map(|a| {
                let body = a.body?;
                let toks = tokenize(body);
                let kind = classify(&toks);
                Some(Action {
                    start_line: a.start_line,
                    start_col: a.start_col,
                    end_line: a.end_line,
                    toks,
                    kind,
                    frame: None,
                })
            })
            .collect();

        let mut analysis = Analysis {
            lines: Vec::with_capacity(line_count),
            actions,
            frames: Vec::new(),
            bindings: HashMap::new(),
            line_frame: vec![None; line_count],
        };
        let masked = analysis.replay(line_count);

        for (idx, raw) in raw_lines.iter().enumerate() {
            let blank = blank_lines.get(idx).copied().unwrap_or("");
            let trimmed = blank.trim();
            let kind = if masked.get(idx).copied().unwrap_or(false) {
                LineKind::Masked
            } else if trimmed.is_empty() {
                if raw.trim().is_empty() { LineKind::Blank } else { LineKind::TemplateOnly }
            } else if trimmed.starts_with('#') {
                LineKind::Blank
            } else {
                LineKind::Content
            };
            let (indent, key_col, dash, content_col) = line_shape(raw);
            // The text before `key_col` is ASCII (spaces and dashes) in both versions of the line, and
            // actions are blanked with one ASCII space per character: byte offsets equal columns here.
            let text_col =
                blank.get(key_col..).map_or(key_col, |rest| key_col + rest.len() - rest.trim_start_matches(' ').len());
            analysis.lines.push(Line { blank: blank.to_string(), kind, indent, key_col, text_col, dash, content_col });
        }
        analysis
    }

    /// Replays the control actions: records each action's enclosing block, variable bindings, the block
    /// open at each line, and returns which lines lie inside `define` blocks.
    fn replay(&mut self, line_count: usize) -> Vec<bool> {
        let mut masked = vec![false; line_count];
        let mut top: Option<usize> = None;
        let mut next_line = 0usize;
        for idx in 0..self.actions.len() {
            let (start_line, end_line, kind) = {
                let a = &self.actions[idx];
                (a.start_line, a.end_line, a.kind)
            };
            while next_line <= start_line && next_line < line_count {
                self.line_frame[next_line] = top;
                next_line += 1;
            }
            self.actions[idx].frame = top;
            let dot = self.dot_of(top);
            let in_define = self.frame(top).is_some_and(|f| f.define_line.is_some());
            let toks = std::mem::take(&mut self.actions[idx].toks);
            let args = toks.get(1..).unwrap_or(&[]);
            match kind {
                ActionKind::If => top = self.push(top, FrameKind::If, Dot::Unknown, start_line),
                ActionKind::With => {
                    let (names, expr) = split_declaration(args);
                    let value = self.pipeline_value(expr, &dot, idx);
                    if !in_define {
                        for name in names {
                            self.bind(name, idx, value.clone());
                        }
                    }
                    top = self.push(top, FrameKind::With, value, start_line);
                }
                ActionKind::Range => {
                    let (names, expr) = split_declaration(args);
                    let collection = self.pipeline_value(expr, &dot, idx);
                    let range = self.frames.len();
                    let resolvable = collection.is_values();
                    if !in_define {
                        // `range $e := …` binds the element; `range $k, $e := …` the index or key, then the element.
                        let element = |path| if resolvable { Dot::Element { range, path } } else { Dot::Unknown };
                        let values: Vec<Dot> = match names.len() {
                            1 => vec![element(Vec::new())],
                            2 if resolvable => vec![Dot::ElementKey { range }, element(Vec::new())],
                            _ => vec![Dot::Unknown; names.len()],
                        };
                        for (name, value) in names.into_iter().zip(values) {
                            self.bind(name, idx, value);
                        }
                    }
                    top = self.push(top, FrameKind::Range, collection, start_line);
                }
                ActionKind::Define => top = self.push(top, FrameKind::Define, Dot::Unknown, start_line),
                ActionKind::Block => top = self.push(top, FrameKind::Block, Dot::Unknown, start_line),
                ActionKind::Else => {
                    if let Some(t) = top
                        && let Some(closing) = self.frames.get_mut(t)
                    {
                        closing.closed = Some(start_line);
                    }
                    if let Some(current) = self.frame(top).cloned() {
                        let new_index = self.frames.len();
                        let mut frame = current;
                        frame.closed = None;
                        frame.inner = frame.outer;
                        frame.range_line = self.frame(frame.parent).and_then(|p| p.range_line);
                        if let [Tok::Word(w), rest @ ..] = args
                            && w == "with"
                        {
                            let outer = self.dot_of(frame.parent);
                            frame.kind = FrameKind::With;
                            frame.value = self.pipeline_value(rest, &outer, idx);
                            frame.inner = DotSource::With(new_index);
                        }
                        self.frames.push(frame);
                        top = Some(new_index);
                    }
                }
                ActionKind::End => {
                    if let Some(t) = top
                        && let Some(closing) = self.frames.get_mut(t)
                    {
                        closing.closed = Some(start_line);
                    }
                    if let Some(frame) = self.frame(top) {
                        let (kind, parent, opened) = (frame.kind, frame.parent, frame.line);
                        top = parent;
                        let outer_define = self.frame(top).is_some_and(|f| f.define_line.is_some());
                        if kind == FrameKind::Define && !outer_define {
                            for m in masked.iter_mut().take(end_line + 1).skip(opened) {
                                *m = true;
                            }
                        }
                    }
                }
                ActionKind::Assign => {
                    if let Some(Tok::Ref { var: Some(name), .. }) = toks.first()
                        && !in_define
                    {
                        let value = self.pipeline_value(toks.get(2..).unwrap_or(&[]), &dot, idx);
                        self.bind(name.clone(), idx, value);
                    }
                }
                ActionKind::Opaque | ActionKind::Output => {}
            }
            self.actions[idx].toks = toks;
        }
        while next_line < line_count {
            self.line_frame[next_line] = top;
            next_line += 1;
        }
        // A `define` never closed runs to the end of the text.
        if let Some(opened) = self.frame(top).and_then(|f| f.define_line) {
            for m in masked.iter_mut().skip(opened) {
                *m = true;
            }
        }
        masked
    }

    fn frame(&self, f: Option<usize>) -> Option<&Frame> {
        f.and_then(|i| self.frames.get(i))
    }

    fn push(&mut self, parent: Option<usize>, kind: FrameKind, value: Dot, line: usize) -> Option<usize> {
        let index = self.frames.len();
        let (outer, define_line, range_line) = match self.frame(parent) {
            Some(p) => (p.inner, p.define_line, p.range_line),
            None => (DotSource::Root, None, None),
        };
        let inner = match kind {
            FrameKind::If => outer,
            FrameKind::With => DotSource::With(index),
            FrameKind::Range if value.is_values() => DotSource::Element(index),
            FrameKind::Range | FrameKind::Define | FrameKind::Block => DotSource::Unknown,
        };
        let define_line = define_line.or((kind == FrameKind::Define).then_some(line));
        let range_line = if kind == FrameKind::Range { Some(line) } else { range_line };
        self.frames.push(Frame { parent, kind, value, inner, outer, line, define_line, range_line, closed: None });
        Some(index)
    }

    fn bind(&mut self, name: String, action: usize, value: Dot) {
        self.bindings.entry(name).or_default().push((action, value));
    }

    /// What `.` is inside the block `f`.
    fn dot_of(&self, f: Option<usize>) -> Dot {
        match self.frame(f).map_or(DotSource::Root, |frame| frame.inner) {
            DotSource::Root => Dot::Root,
            DotSource::Unknown => Dot::Unknown,
            DotSource::With(i) => self.frames.get(i).map_or(Dot::Unknown, |w| w.value.clone()),
            DotSource::Element(range) => Dot::Element { range, path: Vec::new() },
        }
    }

    /// The value of `$name` as last bound before the action `before`.
    fn variable(&self, name: &str, before: usize) -> Dot {
        let Some(bound) = self.bindings.get(name) else { return Dot::Unknown };
        let count = bound.partition_point(|(action, _)| *action < before);
        count.checked_sub(1).and_then(|i| bound.get(i)).map_or(Dot::Unknown, |(_, value)| value.clone())
    }

    fn resolve_ref(&self, var: &Option<String>, fields: &[String], dot: &Dot, before: usize) -> Dot {
        let base = match var {
            None => dot.clone(),
            Some(v) if v.is_empty() => Dot::Root,
            Some(v) => self.variable(v, before),
        };
        fields.iter().fold(base, |d, f| d.then(key_segment(f)))
    }

    /// Every reference in a pipeline, in order (`index X "a" 0` counts as one reference).
    fn refs(&self, toks: &[Tok], dot: &Dot, before: usize) -> Vec<Dot> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            match &toks[i] {
                Tok::Word(w) if w == "index" => {
                    if let Some(Tok::Ref { var, fields }) = toks.get(i + 1) {
                        let mut d = self.resolve_ref(var, fields, dot, before);
                        let mut j = i + 2;
                        loop {
                            match toks.get(j) {
                                Some(Tok::Str(s)) => d = d.then(key_segment(s)),
                                Some(Tok::Int(n)) => d = d.then(Segment::Index(*n)),
                                _ => break,
                            }
                            j += 1;
                        }
                        out.push(d);
                        i = j;
                        continue;
                    }
                }
                Tok::Ref { var, fields } => out.push(self.resolve_ref(var, fields, dot, before)),
                _ => {}
            }
            i += 1;
        }
        out
    }

    /// The value a pipeline yields, when it is plainly a reference (`with .Values.x`, `$v := .Values.x`,
    /// `default dict .Values.x`); anything computed is unknown.
    fn pipeline_value(&self, toks: &[Tok], dot: &Dot, before: usize) -> Dot {
        let start = toks.iter().take_while(|t| **t == Tok::Open).count();
        let toks = toks.get(start..).unwrap_or(&[]);
        match toks.first() {
            Some(Tok::Ref { .. }) => self.refs(toks, dot, before).into_iter().next().unwrap_or(Dot::Unknown),
            Some(Tok::Word(w)) if w == "index" => {
                self.refs(toks, dot, before).into_iter().next().unwrap_or(Dot::Unknown)
            }
            Some(Tok::Word(w)) if w == "default" || w == "required" => {
                self.refs(toks, dot, before).into_iter().find(Dot::is_values).unwrap_or(Dot::Unknown)
            }
            _ => Dot::Unknown,
        }
    }

    /// Values references of an output action (paths, or paths below a `range` element).
    fn output_refs(&self, idx: usize) -> Vec<Dot> {
        let Some(action) = self.actions.get(idx) else { return Vec::new() };
        if action.kind != ActionKind::Output
            || action.toks.iter().any(|t| matches!(t, Tok::Word(w) if w == "include" || w == "template"))
        {
            return Vec::new();
        }
        let dot = self.dot_of(action.frame);
        self.refs(&action.toks, &dot, idx).into_iter().filter(Dot::is_values).collect()
    }

    fn kind(&self, line: usize) -> LineKind {
        self.lines.get(line).map_or(LineKind::Masked, |l| l.kind)
    }

    /// The `document`-th document piece of the text (clamped to the last), as a line range.
    fn document(&self, document: usize) -> Option<(usize, usize)> {
        let mut pieces = Vec::new();
        let mut start = 0usize;
        for (idx, line) in self.lines.iter().enumerate() {
            let marker = line.kind != LineKind::Masked
                && line.blank.strip_prefix("---").is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']));
            if marker {
                pieces.push((start, idx));
                start = idx + 1;
            }
        }
        pieces.push((start, self.lines.len()));
        pieces.retain(|&(s, e)| (s..e).any(|l| self.kind(l) == LineKind::Content));
        let last = pieces.len().checked_sub(1)?;
        pieces.get(document.min(last)).copied()
    }

    /// Matches the route's keys in the lines `start..end`; the deepest key matched, and the element each
    /// `range` loop the walk went through was at.
    fn walk(&self, start: usize, end: usize, route: &Route, values: &ValuesView<'_>) -> Option<(KeyMatch, Iterations)> {
        let mut cursor = Cursor::Top;
        let mut deepest = None;
        let mut iterations = Iterations::new();
        for (segment, part) in route.0.iter().enumerate() {
            match part {
                Segment::Key(key) => match self.find_key(cursor, key, start, end) {
                    Some((line, key_col, text_col)) => {
                        cursor = Cursor::Key { line, key_col };
                        deepest = Some(KeyMatch { line, key_col: text_col, segment });
                    }
                    None => break,
                },
                Segment::Index(i) => match self.find_item(cursor, *i, end, &mut iterations, values) {
                    Some(item) => cursor = item,
                    None => break,
                },
            }
        }
        deepest.map(|d| (d, iterations))
    }

    /// The line of `key` as a direct child of `cursor`: (line, structural column, column of the key text).
    fn find_key(&self, cursor: Cursor, key: &str, start: usize, end: usize) -> Option<(usize, usize, usize)> {
        let (first, end_indent, mut child_col) = match cursor {
            Cursor::Top => (start, None, None),
            Cursor::Key { line, key_col } => (line + 1, Some(key_col), None),
            Cursor::Item { line, dash_col, content_col } => (line, Some(dash_col), Some(content_col)),
        };
        for idx in first..end {
            let Some(line) = self.lines.get(idx) else { break };
            if line.kind != LineKind::Content {
                continue;
            }
            // The item's own line is the item's first child, not the end of it.
            let item_line = matches!(cursor, Cursor::Item { .. }) && idx == first;
            if !item_line && end_indent.is_some_and(|e| line.indent <= e) {
                return None;
            }
            let col = *child_col.get_or_insert(line.key_col);
            if line.key_col == col && key_at(&line.blank, line.text_col, key) {
                return Some((idx, col, line.text_col));
            }
        }
        None
    }

    /// The `index`-th item of the sequence under the list key at `cursor`, when it can be told. An item
    /// written in a `range` loop stands for every item the loop renders; when which element of the
    /// collection rendered this one can be told, it is recorded in `iterations`.
    fn find_item(
        &self,
        cursor: Cursor,
        index: usize,
        end: usize,
        iterations: &mut Iterations,
        values: &ValuesView<'_>,
    ) -> Option<Cursor> {
        let Cursor::Key { line: list_line, key_col } = cursor else { return None };
        let mut item_indent: Option<usize> = None;
        let mut uncertain = false;
        // The first line whose action may have added or dropped items.
        let mut first_uncertain: Option<usize> = None;
        // (line, certain, inside a range loop opened under the list key)
        let mut items: Vec<(usize, bool, bool)> = Vec::new();
        for idx in list_line + 1..end {
            let Some(line) = self.lines.get(idx) else { break };
            match line.kind {
                LineKind::Content => {
                    let ii = match item_indent {
                        Some(ii) => ii,
                        None if line.dash && line.indent >= key_col => {
                            item_indent = Some(line.indent);
                            line.indent
                        }
                        None => return None,
                    };
                    if line.indent < ii || (line.indent == ii && !line.dash) {
                        break;
                    }
                    if line.indent == ii {
                        items.push((idx, !uncertain, self.in_range_since(idx, list_line)));
                    }
                }
                LineKind::TemplateOnly => {
                    // An action between items (not inside an item's body) may add or drop items.
                    let between = item_indent.is_none_or(|ii| line.indent <= ii);
                    if between && self.actions_on(idx).any(|a| a.kind != ActionKind::Assign) {
                        uncertain = true;
                        first_uncertain.get_or_insert(idx);
                    }
                }
                LineKind::Blank | LineKind::Masked => {}
            }
        }
        let chosen = match items.get(index) {
            Some(&(line, true, _)) => line,
            _ => {
                let looped = items.iter().find(|it| it.2).map(|it| it.0)?;
                if let Some((range, element)) =
                    self.iteration(looped, index, &items, first_uncertain, iterations, values)
                {
                    iterations.insert(range, element);
                }
                looped
            }
        };
        let line = self.lines.get(chosen)?;
        Some(Cursor::Item { line: chosen, dash_col: line.indent, content_col: line.content_col })
    }

    /// Which element of its collection the `range` loop holding the item line `looped` rendered as item
    /// `index` of the list: only when the loop renders exactly one item per element (its body holds one
    /// item, directly, and no other action between items), every item before the loop is literal and
    /// certain, and the collection in the values files has that element. (`items`: every item line of the
    /// list; `first_uncertain`: the first line whose action may add or drop items.)
    fn iteration(
        &self,
        looped: usize,
        index: usize,
        items: &[(usize, bool, bool)],
        first_uncertain: Option<usize>,
        iterations: &Iterations,
        values: &ValuesView<'_>,
    ) -> Option<(usize, Segment)> {
        let range = self.line_frame.get(looped).copied().flatten()?;
        let frame = self.frames.get(range)?;
        if frame.kind != FrameKind::Range || frame.range_line != Some(frame.line) || frame.define_line.is_some() {
            return None;
        }
        let (opened, closed) = (frame.line, frame.closed?);
        // Items before the loop: literal ones only, none of them in doubt.
        if first_uncertain.is_some_and(|u| u < opened) {
            return None;
        }
        let before = items.iter().filter(|it| it.0 < opened).count();
        let mut in_body = items.iter().filter(|it| it.0 > opened && it.0 < closed);
        if in_body.next().map(|it| it.0) != Some(looped) || in_body.next().is_some() {
            return None;
        }
        let item_indent = self.lines.get(looped)?.indent;
        for idx in opened + 1..closed {
            let line = self.lines.get(idx)?;
            if line.kind == LineKind::TemplateOnly
                && line.indent <= item_indent
                && self.actions_on(idx).any(|a| a.kind != ActionKind::Assign)
            {
                return None;
            }
        }
        let collection = self.concrete(&frame.value, iterations)?;
        let element = values.element(&collection, index.checked_sub(before)?)?;
        Some((range, element))
    }

    /// The values path a reference stands for, once the elements of the loops it is in are known.
    fn concrete(&self, dot: &Dot, iterations: &Iterations) -> Option<Vec<Segment>> {
        match dot {
            Dot::Values(path) => Some(path.clone()),
            Dot::Element { range, path } => {
                let mut out = self.element_path(*range, iterations)?;
                out.extend(path.iter().cloned());
                Some(out)
            }
            Dot::ElementKey { range } => self.element_path(*range, iterations),
            Dot::Root | Dot::Unknown => None,
        }
    }

    /// The path of the element the `range` frame `range` was at.
    fn element_path(&self, range: usize, iterations: &Iterations) -> Option<Vec<Segment>> {
        let element = iterations.get(&range)?;
        let frame = self.frames.get(range)?;
        // A loop's collection is read before the loop opens: it only refers to frames opened earlier.
        if matches!(&frame.value, Dot::Element { range: r, .. } | Dot::ElementKey { range: r } if *r >= range) {
            return None;
        }
        let mut out = self.concrete(&frame.value, iterations)?;
        out.push(element.clone());
        Some(out)
    }

    /// Whether `line` lies in the body of a `range` opened after the line `since`.
    fn in_range_since(&self, line: usize, since: usize) -> bool {
        let frame = self.line_frame.get(line).copied().flatten();
        self.frame(frame).and_then(|f| f.range_line).is_some_and(|opened| opened > since)
    }

    fn actions_on(&self, line: usize) -> impl Iterator<Item = &Action> {
        let from = self.actions.partition_point(|a| a.start_line < line);
        self.actions[from..].iter().take_while(move |a| a.start_line == line)
    }

    fn action_indices_on(&self, line: usize) -> std::ops::Range<usize> {
        let from = self.actions.partition_point(|a| a.start_line < line);
        let to = self.actions.partition_point(|a| a.start_line <= line);
        from..to.max(from)
    }

    /// The values paths referenced for the value of the key at `found`: output actions after the key
    /// on its line, or, when its value is written below it, on the following template-only lines.
    fn references(&self, found: &KeyMatch, end: usize) -> Vec<Dot> {
        let mut out = Vec::new();
        // Actions inside a trailing YAML comment (`replicas: 3 # {{ .Values.x }}`) do not make the value.
        let comment_col = self
            .lines
            .get(found.line)
            .and_then(|l| l.blank.get(found.key_col..))
            .and_then(|rest| rest.find(" #").map(|at| found.key_col + rest[..at].chars().count()))
            .unwrap_or(usize::MAX);
        for idx in self.action_indices_on(found.line) {
            if self.actions.get(idx).is_some_and(|a| a.start_col > found.key_col && a.start_col < comment_col) {
                out.extend(self.output_refs(idx));
            }
        }
        if !out.is_empty() || !self.value_below(found) {
            return out;
        }
        for idx in found.line + 1..end {
            let Some(line) = self.lines.get(idx) else { break };
            match line.kind {
                LineKind::Content | LineKind::Masked => break,
                LineKind::Blank => continue,
                LineKind::TemplateOnly => {
                    // Output written deeper than the key, or at column 0 (`{{ toYaml … | indent 8 }}`).
                    if line.indent > found.key_col || line.indent == 0 {
                        for a in self.action_indices_on(idx) {
                            out.extend(self.output_refs(a));
                        }
                    }
                }
            }
        }
        out
    }

    /// Whether the template writes `part` itself in the value of the key at `found` (outside its actions).
    fn writes_literally(&self, found: &KeyMatch, part: &str) -> bool {
        self.lines
            .get(found.line)
            .and_then(|l| l.blank.get(found.key_col..))
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(_, value)| value.contains(part))
    }

    /// Whether nothing literal follows the key's colon (or only a block scalar indicator / comment).
    fn value_below(&self, found: &KeyMatch) -> bool {
        let Some(line) = self.lines.get(found.line) else { return false };
        let Some(after_key) = line.blank.get(found.key_col..) else { return false };
        let Some(colon) = after_key.find(':') else { return false };
        let rest = after_key.get(colon + 1..).unwrap_or("").trim();
        rest.is_empty()
            || rest.starts_with('#')
            || ((rest.starts_with('|') || rest.starts_with('>'))
                && rest.chars().skip(1).all(|c| matches!(c, '-' | '+') || c.is_ascii_digit()))
    }
}

/// Whether `key:` (or `"key":`, `'key':`) starts at `col` of the blanked line.
fn key_at(blank: &str, col: usize, key: &str) -> bool {
    let Some(text) = blank.get(col..) else { return false };
    let after = text
        .strip_prefix(key)
        .or_else(|| text.strip_prefix('"').and_then(|t| t.strip_prefix(key)).and_then(|t| t.strip_prefix('"')))
        .or_else(|| text.strip_prefix('\'').and_then(|t| t.strip_prefix(key)).and_then(|t| t.strip_prefix('\'')));
    after.and_then(|t| t.strip_prefix(':')).is_some_and(|t| t.is_empty() || t.starts_with(char::is_whitespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYMENT: &str = r#"{{/*
Deployment for the shop.
---
*/}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "shop.fullname" . }}
  labels:
    {{- include "shop.labels" . | nindent 4 }}
spec:
  {{- if not .Values.autoscaling.enabled }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "shop.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        app: shop
    spec:
      {{- with .Values.podSecurityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .Chart.Name }}
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
          imagePullPolicy: IfNotPresent
          minReadySeconds: {{ .Values.minReadySeconds }}
          ports:
            - name: http
              containerPort: 8080
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
"#;

    const VALUES: &str = "\
replicaCount: 1
image:
  repository: shop
  tag: \"\"
podSecurityContext:
  runAsNonRoot: true
resources:
  limits:
    cpu: 500m
    memory: 256Mi
  requests:
    memory: 128Mi
";

    const PROD: &str = "\
# production
replicaCount: 3
resources:
  limits:
    cpu: 1
";

    fn tpl(text: &str) -> Template<'_> {
        Template { path: "templates/t.yaml", text }
    }

    fn vf<'a>(path: &'a str, text: &'a str) -> ValuesFile<'a> {
        ValuesFile { path, text, prefix: Vec::new() }
    }

    /// The location of `key` on the `nth` (0-based) line of `text` that contains `needle`.
    fn at_nth(file: &str, text: &str, needle: &str, nth: usize, key: &str, kind: LocationKind) -> SourceLocation {
        let (idx, line) = text
            .split('\n')
            .enumerate()
            .filter(|(_, l)| l.contains(needle))
            .nth(nth)
            .unwrap_or_else(|| panic!("no line {nth} with {needle:?}"));
        let col = line.find(key).unwrap_or_else(|| panic!("no {key:?} in {line:?}"));
        SourceLocation { file: file.to_string(), line: idx as u32 + 1, column: col as u32 + 1, kind }
    }

    fn at(file: &str, text: &str, needle: &str, key: &str, kind: LocationKind) -> SourceLocation {
        at_nth(file, text, needle, 0, key, kind)
    }

    fn t_at(text: &str, needle: &str, key: &str) -> SourceLocation {
        at("templates/t.yaml", text, needle, key, LocationKind::Template)
    }

    fn map(text: &str, values: &[ValuesFile<'_>], document: usize, route: &str) -> Vec<SourceLocation> {
        map_route(&tpl(text), values, document, &Route::parse(route))
    }

    #[test]
    fn scalar_value_maps_to_values_key_then_template_key() {
        let got = map(DEPLOYMENT, &[vf("values.yaml", VALUES)], 0, "spec.replicas");
        assert_eq!(
            got,
            vec![
                at("values.yaml", VALUES, "replicaCount:", "replicaCount", LocationKind::Values),
                t_at(DEPLOYMENT, "replicas:", "replicas"),
            ]
        );
        assert_eq!((got[0].line, got[0].column), (1, 1));
        assert_eq!(got[1].column, 3);
    }

    #[test]
    fn to_yaml_block_extends_the_values_path_with_the_rest_of_the_route() {
        let route = "spec.template.spec.containers[0].resources.limits.memory";
        let got = map(DEPLOYMENT, &[vf("values.yaml", VALUES)], 0, route);
        assert_eq!(
            got,
            vec![
                at("values.yaml", VALUES, "memory: 256Mi", "memory", LocationKind::Values),
                t_at(DEPLOYMENT, "resources:", "resources"),
            ]
        );
    }

    #[test]
    fn missing_values_key_falls_back_to_the_longest_prefix() {
        let route = "spec.template.spec.containers[0].resources.limits.ephemeral-storage";
        let got = map(DEPLOYMENT, &[vf("values.yaml", VALUES)], 0, route);
        assert_eq!(got[0], at("values.yaml", VALUES, "limits:", "limits", LocationKind::Values));
        let got = map(DEPLOYMENT, &[vf("values.yaml", "resources: {}\n")], 0, route);
        assert_eq!(
            got[0],
            SourceLocation { file: "values.yaml".into(), line: 1, column: 1, kind: LocationKind::Values }
        );
    }

    #[test]
    fn environment_file_override_wins() {
        let files = [vf("values.yaml", VALUES), vf("values-prod.yaml", PROD)];
        let got = map(DEPLOYMENT, &files, 0, "spec.replicas");
        assert_eq!(got[0], at("values-prod.yaml", PROD, "replicaCount:", "replicaCount", LocationKind::Values));
        let got = map(DEPLOYMENT, &files, 0, "spec.template.spec.containers[0].resources.limits.cpu");
        assert_eq!(got[0], at("values-prod.yaml", PROD, "cpu:", "cpu", LocationKind::Values));
    }

    #[test]
    fn key_only_in_values_yaml_is_found_there() {
        // The environment file sets resources.limits but not memory: values.yaml still provides it.
        let files = [vf("values.yaml", VALUES), vf("values-prod.yaml", PROD)];
        let got = map(DEPLOYMENT, &files, 0, "spec.template.spec.containers[0].resources.limits.memory");
        assert_eq!(got[0], at("values.yaml", VALUES, "memory: 256Mi", "memory", LocationKind::Values));
        let got = map(DEPLOYMENT, &files, 0, "spec.template.spec.containers[0].image");
        assert_eq!(
            got,
            vec![
                at("values.yaml", VALUES, "repository:", "repository", LocationKind::Values),
                t_at(DEPLOYMENT, "image:", "image"),
            ]
        );
    }

    #[test]
    fn with_block_resolves_dot() {
        let got = map(DEPLOYMENT, &[vf("values.yaml", VALUES)], 0, "spec.template.spec.securityContext.runAsNonRoot");
        assert_eq!(
            got,
            vec![
                at("values.yaml", VALUES, "runAsNonRoot:", "runAsNonRoot", LocationKind::Values),
                t_at(DEPLOYMENT, "securityContext:", "securityContext"),
            ]
        );
    }

    #[test]
    fn literal_value_maps_to_template_only() {
        let files = [vf("values.yaml", VALUES)];
        let got = map(DEPLOYMENT, &files, 0, "spec.template.spec.containers[0].imagePullPolicy");
        assert_eq!(got, vec![t_at(DEPLOYMENT, "imagePullPolicy:", "imagePullPolicy")]);
        let got = map(DEPLOYMENT, &files, 0, "spec.template.spec.containers[0].ports[0].containerPort");
        assert_eq!(got, vec![t_at(DEPLOYMENT, "containerPort:", "containerPort")]);
        let got = map(DEPLOYMENT, &files, 0, "spec.template.metadata.labels.app");
        assert_eq!(got, vec![t_at(DEPLOYMENT, "app: shop", "app")]);
    }

    #[test]
    fn key_from_a_helper_maps_to_the_deepest_literal_key() {
        let files = [vf("values.yaml", VALUES)];
        let got = map(DEPLOYMENT, &files, 0, "metadata.labels[\"app.kubernetes.io/name\"]");
        assert_eq!(got, vec![t_at(DEPLOYMENT, "  labels:", "labels")]);
        let got = map(DEPLOYMENT, &files, 0, "spec.selector.matchLabels.app");
        assert_eq!(got, vec![t_at(DEPLOYMENT, "matchLabels:", "matchLabels")]);
        // `metadata.name` is a literal key whose value comes from a helper: template line only.
        let got = map(DEPLOYMENT, &files, 0, "metadata.name");
        assert_eq!(got, vec![t_at(DEPLOYMENT, "name: {{ include", "name")]);
    }

    #[test]
    fn values_key_absent_from_all_files_gives_template_only() {
        let got = map(DEPLOYMENT, &[vf("values.yaml", VALUES)], 0, "spec.template.spec.containers[0].minReadySeconds");
        assert_eq!(got, vec![t_at(DEPLOYMENT, "minReadySeconds:", "minReadySeconds")]);
    }

    #[test]
    fn route_not_in_template_gives_nothing() {
        assert_eq!(map(DEPLOYMENT, &[vf("values.yaml", VALUES)], 0, "status.replicas"), vec![]);
        assert_eq!(map(DEPLOYMENT, &[], 0, ""), vec![]);
        assert_eq!(map("", &[], 0, "spec"), vec![]);
    }

    #[test]
    fn commented_out_and_defined_lines_are_skipped() {
        let text = "\
{{- define \"local.port\" -}}
spec:
  replicas: 9
{{- end }}
{{/* spec:
  replicas: 7 */}}
apiVersion: v1
spec:
  replicas: {{ .Values.replicaCount }}
";
        let got = map(text, &[vf("values.yaml", VALUES)], 0, "spec.replicas");
        assert_eq!(
            got,
            vec![
                at("values.yaml", VALUES, "replicaCount:", "replicaCount", LocationKind::Values),
                t_at(text, "replicas: {{", "replicas"),
            ]
        );
    }

    const TWO_DOCS: &str = "\
{{- if .Values.service.enabled }}
---
apiVersion: v1
kind: Service
spec:
  ports:
    - port: {{ .Values.service.port }}
---
apiVersion: v1
kind: ConfigMap
data:
  port: {{ .Values.service.port | quote }}
  mode: fixed
{{- end }}
";

    #[test]
    fn second_document_of_a_template() {
        let values = "service:\n  enabled: true\n  port: 80\n";
        let files = [vf("values.yaml", values)];
        let got = map(TWO_DOCS, &files, 0, "spec.ports[0].port");
        assert_eq!(
            got,
            vec![at("values.yaml", values, "port:", "port", LocationKind::Values), t_at(TWO_DOCS, "- port:", "port")]
        );
        let got = map(TWO_DOCS, &files, 1, "data.port");
        assert_eq!(
            got,
            vec![
                at("values.yaml", values, "port:", "port", LocationKind::Values),
                t_at(TWO_DOCS, "  port: {{", "port")
            ]
        );
        // The first document has no `data`; a document index past the end is clamped to the last one.
        assert_eq!(map(TWO_DOCS, &files, 0, "data.mode"), vec![]);
        assert_eq!(map(TWO_DOCS, &files, 7, "data.mode"), vec![t_at(TWO_DOCS, "mode:", "mode")]);
    }

    #[test]
    fn subchart_values_under_the_parent_prefix() {
        let text = "\
apiVersion: apps/v1
kind: StatefulSet
spec:
  template:
    spec:
      containers:
        - name: redis
          resources: {{- toYaml .Values.master.resources | nindent 12 }}
";
        let own = "master:\n  resources: {}\n";
        let parent = "shop:\n  x: 1\nredis:\n  master:\n    resources:\n      limits:\n        memory: 1Gi\n";
        let files = [
            vf("charts/redis/values.yaml", own),
            ValuesFile { path: "values.yaml", text: parent, prefix: vec!["redis".into()] },
        ];
        let got = map(text, &files, 0, "spec.template.spec.containers[0].resources.limits.memory");
        assert_eq!(
            got,
            vec![
                at("values.yaml", parent, "memory:", "memory", LocationKind::Values),
                t_at(text, "resources:", "resources"),
            ]
        );
        // The subchart's own file only has `master.resources`: with the parent file lacking `requests`,
        // the deeper prefix wins, and among equals the parent (later, higher precedence) file.
        let got = map(text, &files, 0, "spec.template.spec.containers[0].resources.requests.cpu");
        assert_eq!(got[0], at("values.yaml", parent, "  resources:", "resources", LocationKind::Values));
    }

    #[test]
    fn reference_forms() {
        let text = "\
spec:
  a: {{ $.Values.one.two }}
  b: {{ index .Values \"odd-key\" \"x\" }}
  c: {{ .Values.missing | default .Values.one.two }}
  {{- $svc := .Values.svc }}
  d: {{ $svc.port }}
  {{- with .Values.one }}
  {{- with .two }}
  e: {{ . }}
  {{- end }}
  {{- end }}
  f: {{ .Release.Name }}
  g: {{ required \"set it\" .Values.svc.port }}
  h: {{ tpl .Values.tplText . }}
  list: {{- toYaml .Values.items | nindent 4 }}
";
        let values = "one:\n  two: 2\nodd-key:\n  x: 1\nsvc:\n  port: 80\ntplText: hi\nitems:\n  - a\n  - b\n";
        let files = [vf("values.yaml", values)];
        let v = |needle: &str, key: &str| at("values.yaml", values, needle, key, LocationKind::Values);
        assert_eq!(map(text, &files, 0, "spec.a"), vec![v("two:", "two"), t_at(text, "  a:", "a")]);
        assert_eq!(map(text, &files, 0, "spec.b"), vec![v("  x:", "x"), t_at(text, "  b:", "b")]);
        assert_eq!(map(text, &files, 0, "spec.c"), vec![v("two:", "two"), t_at(text, "  c:", "c")]);
        assert_eq!(map(text, &files, 0, "spec.d"), vec![v("port:", "port"), t_at(text, "  d:", "d")]);
        assert_eq!(map(text, &files, 0, "spec.e"), vec![v("two:", "two"), t_at(text, "  e:", "e")]);
        assert_eq!(map(text, &files, 0, "spec.f"), vec![t_at(text, "  f:", "f")]);
        assert_eq!(map(text, &files, 0, "spec.g"), vec![v("port:", "port"), t_at(text, "  g:", "g")]);
        assert_eq!(map(text, &files, 0, "spec.h"), vec![v("tplText:", "tplText"), t_at(text, "  h:", "h")]);
        assert_eq!(map(text, &files, 0, "spec.list[1]"), vec![v("- b", "b"), t_at(text, "list:", "list")]);
    }

    #[test]
    fn old_style_indent_at_column_zero_and_block_scalars() {
        let text = "\
kind: ConfigMap
data:
  config.yaml: |
    {{- .Values.config | nindent 4 }}
spec:
  resources:
{{ toYaml .Values.resources | indent 4 }}
  other: 1
";
        let files = [vf("values.yaml", VALUES), vf("config.yaml", "config: |\n  a: 1\n")];
        let got = map(text, &files, 0, "data[\"config.yaml\"]");
        assert_eq!(
            got,
            vec![
                SourceLocation { file: "config.yaml".into(), line: 1, column: 1, kind: LocationKind::Values },
                t_at(text, "config.yaml:", "config.yaml"),
            ]
        );
        let commented = "spec:\n  replicas: 3 # was {{ .Values.replicaCount }}\n";
        assert_eq!(map(commented, &files, 0, "spec.replicas"), vec![t_at(commented, "replicas:", "replicas")]);
        let got = map(text, &files, 0, "spec.resources.requests.memory");
        assert_eq!(got[0], at("values.yaml", VALUES, "memory: 128Mi", "memory", LocationKind::Values));
        assert_eq!(map(text, &files, 0, "spec.other"), vec![t_at(text, "other:", "other")]);
    }

    #[test]
    fn sibling_blocks_do_not_leak_into_each_other() {
        let text = "\
metadata:
  labels:
    name: inner
  name: outer
spec:
  template:
    metadata:
      annotations:
        a: b
";
        assert_eq!(map(text, &[], 0, "metadata.name"), vec![t_at(text, "name: outer", "name")]);
        // `metadata.annotations` does not exist at the top: the deeper one must not be picked.
        assert_eq!(map(text, &[], 0, "metadata.annotations.a"), vec![t_at(text, "metadata:", "metadata")]);
    }

    #[test]
    fn sequence_items_are_counted_when_certain() {
        let text = "\
spec:
  containers:
  - name: app
    image: app:1
  - name: sidecar
    image: side:1
  {{- range .Values.extra }}
  - name: {{ .name }}
    image: {{ .image }}
  {{- end }}
  initContainers:
    - name: init
      image: init:1
    {{- if .Values.debug }}
    - name: debug
      image: debug:1
    {{- end }}
";
        let files = [vf("values.yaml", "extra:\n  - name: x\n    image: y\n")];
        assert_eq!(map(text, &files, 0, "spec.containers[1].image"), vec![t_at(text, "image: side", "image")]);
        // Items past the literal ones come from the range loop; `.` there is unknown, so no values line.
        assert_eq!(map(text, &files, 0, "spec.containers[3].image"), vec![t_at(text, "image: {{", "image")]);
        assert_eq!(map(text, &files, 0, "spec.initContainers[0].image"), vec![t_at(text, "image: init", "image")]);
        // After a condition the count is uncertain and there is no loop: stop at the list key.
        assert_eq!(
            map(text, &files, 0, "spec.initContainers[1].image"),
            vec![t_at(text, "initContainers:", "initContainers")]
        );
    }

    fn map_part(text: &str, values: &[ValuesFile<'_>], route: &str, part: &str) -> Vec<SourceLocation> {
        map_route_parsed(&tpl(text), values, &std::sync::OnceLock::new(), 0, &Route::parse(route), Some(part))
    }

    fn v_at(text: &str, needle: &str, key: &str) -> SourceLocation {
        at("values.yaml", text, needle, key, LocationKind::Values)
    }

    #[test]
    fn the_reference_that_produced_the_part_at_fault_is_chosen() {
        let text = "spec:\n  image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n";
        let values = "image:\n  repository: shop\n  tag: latest\n";
        let files = [vf("values.yaml", values)];
        let image = t_at(text, "image:", "image");
        assert_eq!(map_part(text, &files, "spec.image", "latest"), vec![v_at(values, "tag:", "tag"), image.clone()]);
        // Without a part: the first reference found in full, as before.
        assert_eq!(map(text, &files, 0, "spec.image"), vec![v_at(values, "repository:", "repository"), image.clone()]);
        // The part may be contained in the value (`library/nginx` for the name `nginx`).
        let values = "image:\n  repository: library/nginx\n  tag: \"\"\n";
        assert_eq!(
            map_part(text, &[vf("values.yaml", values)], "spec.image", "nginx"),
            vec![v_at(values, "repository:", "repository"), image.clone()]
        );
        // `default` and numbers as Helm prints them (float64 `%v`): `tag: 1.0` prints `1`.
        let text = "spec:\n  image: \"{{ .Values.repo }}:{{ .Values.tag | default .Chart.AppVersion }}\"\n";
        let values = "repo: \"1\"\ntag: 1.0\n";
        assert_eq!(
            map_part(text, &[vf("values.yaml", values)], "spec.image", "1"),
            vec![v_at(values, "repo:", "repo"), t_at(text, "image:", "image")]
        );
        // The template writes the part itself: the template line is the place, not a values line.
        let text = "spec:\n  image: \"{{ .Values.image.repository }}:latest\"\n";
        let values = "image:\n  repository: shop\n";
        assert_eq!(
            map_part(text, &[vf("values.yaml", values)], "spec.image", "latest"),
            vec![t_at(text, "image:", "image")]
        );
        // No reference produces it and the template does not write it: as without a part.
        assert_eq!(
            map_part(text, &[vf("values.yaml", values)], "spec.image", "other"),
            vec![v_at(values, "repository:", "repository"), t_at(text, "image:", "image")]
        );
    }

    #[test]
    fn numbers_print_as_go_prints_a_float64() {
        for (value, shown) in [
            (1.0, "1"),
            (1.5, "1.5"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (1e6, "1e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (1e21, "1e+21"),
        ] {
            assert_eq!(go_float(value), shown, "{value}");
        }
        let tree = crate::yaml::parse_single("[yes, 0x10, 010, \"010\", 1.10, ~, {a: 1}]").ok().flatten();
        let items: Vec<Option<String>> = tree.iter().flat_map(|t| t.items().iter().map(printed)).collect();
        assert_eq!(
            items,
            vec![
                Some("true".into()),
                Some("16".into()),
                Some("8".into()),
                Some("010".into()),
                Some("1.1".into()),
                None,
                None
            ]
        );
    }

    const ENV_LOOP: &str = "\
spec:
  containers:
    - name: app
      env:
        - name: FIRST
          value: literal
      {{- range .Values.env }}
        - name: {{ .name }}
          value: {{ .value | quote }}
      {{- end }}
";

    #[test]
    fn a_range_item_maps_to_the_values_item_it_renders() {
        let values = "env:\n  - name: DB_USER\n    value: app\n  - name: DB_PASSWORD\n    value: hunter2\n";
        let files = [vf("values.yaml", values)];
        let value = t_at(ENV_LOOP, "value: {{", "value");
        // Item 2 of the rendered list is the values' second item (one literal item comes first).
        assert_eq!(
            map(ENV_LOOP, &files, 0, "spec.containers[0].env[2].value"),
            vec![at_nth("values.yaml", values, "value:", 1, "value", LocationKind::Values), value.clone()]
        );
        assert_eq!(
            map(ENV_LOOP, &files, 0, "spec.containers[0].env[1].value"),
            vec![at_nth("values.yaml", values, "value:", 0, "value", LocationKind::Values), value.clone()]
        );
        // The literal item before the loop is the template's.
        assert_eq!(
            map(ENV_LOOP, &files, 0, "spec.containers[0].env[0].value"),
            vec![t_at(ENV_LOOP, "value: literal", "value")]
        );
        // Past the values' items: no element, no values line (as before).
        assert_eq!(map(ENV_LOOP, &files, 0, "spec.containers[0].env[3].value"), vec![value.clone()]);
        // The item without a `value:` key in the values: the item's line.
        let values = "env:\n  - name: A\n  - name: B\n";
        assert_eq!(
            map(ENV_LOOP, &[vf("values.yaml", values)], 0, "spec.containers[0].env[2].value"),
            vec![v_at(values, "- name: B", "name"), value.clone()]
        );
        // A later file replaces the list whole.
        let prod = "env:\n  - name: ONLY\n    value: x\n";
        assert_eq!(
            map(ENV_LOOP, &[vf("values.yaml", values), vf("prod.yaml", prod)], 0, "spec.containers[0].env[1].value"),
            vec![at("prod.yaml", prod, "value:", "value", LocationKind::Values), value.clone()]
        );
    }

    #[test]
    fn range_variables_and_maps_in_key_order() {
        let text = "\
env:
{{- range $i, $e := .Values.list }}
  - name: {{ $e.name }}
    value: {{ $e.value }}
{{- end }}
{{- range $k, $v := .Values.map }}
  - name: {{ $k }}
    value: {{ $v | quote }}
{{- end }}
";
        // The second loop is not the only one of the list: its items cannot be counted (the first loop's
        // length is only known from the values), so only the first loop is mapped.
        let values = "list:\n  - name: A\n    value: a\nmap:\n  ZED: z\n  ALPHA: a\n";
        let files = [vf("values.yaml", values)];
        assert_eq!(
            map(text, &files, 0, "env[0].value"),
            vec![v_at(values, "value: a", "value"), t_at(text, "value: {{ $e", "value")]
        );
        let text = "\
env:
{{- range $k, $v := .Values.map }}
  - name: {{ $k }}
    value: {{ $v | quote }}
{{- end }}
";
        let values = "map:\n  ZED: z\n  ALPHA: a\n";
        let prod = "map:\n  BETA: b\n";
        let files = [vf("values.yaml", values), vf("prod.yaml", prod)];
        // Keys are visited sorted, across the merged files: ALPHA, BETA, ZED.
        assert_eq!(
            map(text, &files, 0, "env[0].value"),
            vec![v_at(values, "ALPHA", "ALPHA"), t_at(text, "value:", "value")]
        );
        assert_eq!(
            map(text, &files, 0, "env[1].name"),
            vec![at("prod.yaml", prod, "BETA", "BETA", LocationKind::Values), t_at(text, "name:", "name")]
        );
        assert_eq!(
            map(text, &files, 0, "env[2].value"),
            vec![v_at(values, "ZED", "ZED"), t_at(text, "value:", "value")]
        );
        // A key some file deletes with null: not certain, no values line.
        let prod = "map:\n  ZED: null\n";
        assert_eq!(
            map(text, &[vf("values.yaml", values), vf("prod.yaml", prod)], 0, "env[0].value"),
            vec![t_at(text, "value:", "value")]
        );
    }

    #[test]
    fn a_range_that_may_skip_or_add_items_is_not_mapped() {
        let values = "env:\n  - name: A\n    value: a\n    enabled: false\n  - name: B\n    value: b\n";
        let files = [vf("values.yaml", values)];
        for text in [
            // A condition around the item: rendered items no longer match elements.
            "env:\n{{- range .Values.env }}\n{{- if .enabled }}\n  - name: {{ .name }}\n    value: {{ .value }}\n{{- end }}\n{{- end }}\n",
            // Two items per element.
            "env:\n{{- range .Values.env }}\n  - name: {{ .name }}\n    value: {{ .value }}\n  - name: X\n    value: {{ .value }}\n{{- end }}\n",
            // Items before the loop in doubt.
            "env:\n{{- if .Values.x }}\n  - name: X\n    value: x\n{{- end }}\n{{- range .Values.env }}\n  - name: {{ .name }}\n    value: {{ .value }}\n{{- end }}\n",
            // A helper between items may write some.
            "env:\n{{- range .Values.env }}\n{{ include \"x\" . }}\n  - name: {{ .name }}\n    value: {{ .value }}\n{{- end }}\n",
            // Not a values collection.
            "env:\n{{- range list 1 2 }}\n  - name: {{ .name }}\n    value: {{ .value }}\n{{- end }}\n",
        ] {
            let got = map(text, &files, 0, "env[1].value");
            assert!(got.iter().all(|l| l.kind == LocationKind::Template), "{text}\n{got:?}");
        }
    }

    #[test]
    fn nested_ranges_and_with_inside_a_range() {
        let text = "\
containers:
{{- range .Values.containers }}
  - name: {{ .name }}
    {{- with .resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    ports:
    {{- range .ports }}
      - containerPort: {{ .port }}
    {{- end }}
{{- end }}
";
        let values = "containers:\n  - name: a\n    ports:\n      - port: 1\n  - name: b\n    resources:\n      limits:\n        memory: 1Gi\n    ports:\n      - port: 2\n      - port: 3\n";
        let files = [vf("values.yaml", values)];
        assert_eq!(
            map(text, &files, 0, "containers[1].ports[1].containerPort"),
            vec![v_at(values, "port: 3", "port"), t_at(text, "containerPort:", "containerPort")]
        );
        assert_eq!(
            map(text, &files, 0, "containers[1].resources.limits.memory"),
            vec![v_at(values, "memory: 1Gi", "memory"), t_at(text, "resources:", "resources")]
        );
    }

    #[test]
    fn invalid_values_files_are_ignored() {
        let files = [vf("values.yaml", VALUES), vf("broken.yaml", "replicaCount: [\n")];
        let got = map(DEPLOYMENT, &files, 0, "spec.replicas");
        assert_eq!(got[0], at("values.yaml", VALUES, "replicaCount:", "replicaCount", LocationKind::Values));
    }

    #[test]
    fn crlf_and_unicode_do_not_shift_columns() {
        let text =
            "metadata:\r\n  annotations:\r\n    note: \"{{ \"héllo\" }}\"\r\n    é: {{ .Values.x }}\r\n  name: x\r\n";
        assert_eq!(map(text, &[], 0, "metadata.name"), vec![t_at(text, "name:", "name")]);
        let got = map(text, &[vf("values.yaml", "x: 1\n")], 0, "metadata.annotations.é");
        assert_eq!(
            got[1],
            SourceLocation { file: "templates/t.yaml".into(), line: 4, column: 5, kind: LocationKind::Template }
        );
        assert_eq!(got[0].line, 1);
    }

    #[test]
    fn helm_create_style_chart_from_fixtures() {
        const T: &str = include_str!("../../fixtures/sourcemap/deployment.yaml");
        const V: &str = include_str!("../../fixtures/sourcemap/values.yaml");
        const P: &str = include_str!("../../fixtures/sourcemap/values-prod.yaml");
        let files = [vf("values.yaml", V), vf("values-prod.yaml", P)];
        let v = |needle: &str, key: &str| at("values.yaml", V, needle, key, LocationKind::Values);
        let p = |needle: &str, key: &str| at("values-prod.yaml", P, needle, key, LocationKind::Values);
        let t = |needle: &str, key: &str| at("templates/t.yaml", T, needle, key, LocationKind::Template);
        let c = "spec.template.spec.containers[0]";
        let cases: Vec<(String, Vec<SourceLocation>)> = vec![
            ("spec.replicas".into(), vec![p("replicaCount:", "replicaCount"), t("replicas:", "replicas")]),
            (
                format!("{c}.securityContext.runAsNonRoot"),
                vec![p("runAsNonRoot:", "runAsNonRoot"), t("          securityContext:", "securityContext")],
            ),
            // Neither file sets it; both have `securityContext`: the environment file wins the tie.
            (
                format!("{c}.securityContext.readOnlyRootFilesystem"),
                vec![p("securityContext:", "securityContext"), t("          securityContext:", "securityContext")],
            ),
            (format!("{c}.resources.limits.memory"), vec![p("memory:", "memory"), t("resources:", "resources")]),
            (format!("{c}.resources.limits.cpu"), vec![p("limits:", "limits"), t("resources:", "resources")]),
            (format!("{c}.livenessProbe.httpGet.path"), vec![v("path:", "path"), t("livenessProbe:", "livenessProbe")]),
            // `repository:tag`: the tag is the reference the environment's file sets, so it wins.
            (format!("{c}.image"), vec![p("tag:", "tag"), t("image:", "image")]),
            (
                format!("{c}.imagePullPolicy"),
                vec![v("pullPolicy:", "pullPolicy"), t("imagePullPolicy:", "imagePullPolicy")],
            ),
            (
                format!("{c}.ports[0].containerPort"),
                vec![v("  port: 80", "port"), t("containerPort:", "containerPort")],
            ),
            (format!("{c}.ports[0].protocol"), vec![t("protocol:", "protocol")]),
            (
                "spec.template.spec.tolerations[0].key".into(),
                vec![p("key: dedicated", "key"), t("tolerations:", "tolerations")],
            ),
            (
                "spec.template.spec.nodeSelector.disktype".into(),
                vec![v("nodeSelector:", "nodeSelector"), t("nodeSelector:", "nodeSelector")],
            ),
            (
                "spec.template.metadata.annotations[\"prometheus.io/scrape\"]".into(),
                vec![v("podAnnotations:", "podAnnotations"), t("annotations:", "annotations")],
            ),
            ("metadata.labels.app".into(), vec![t("  labels:", "labels")]),
            ("spec.template.spec.serviceAccountName".into(), vec![t("serviceAccountName:", "serviceAccountName")]),
            ("spec.selector.matchLabels.app".into(), vec![t("matchLabels:", "matchLabels")]),
        ];
        for (route, want) in cases {
            assert_eq!(map(T, &files, 0, &route), want, "{route}");
        }
    }

    /// Deterministic pseudo-random generator (no dependency needed).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> usize {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) as usize
        }
    }

    #[test]
    fn garbage_never_panics_and_template_lines_are_real_keys() {
        const PIECES: &[&str] = &[
            "{{",
            "}}",
            "{{-",
            "-}}",
            "{{/*",
            "*/}}",
            " ",
            "  ",
            "\n",
            "\n  ",
            "\n    ",
            "- ",
            "-",
            ":",
            ": ",
            "a",
            "b",
            "spec",
            "\"",
            "'",
            "`",
            "$",
            ".",
            ".Values",
            ".Values.a",
            " with ",
            " range ",
            " if ",
            " else ",
            " end ",
            " define \"x\" ",
            "index",
            "(",
            ")",
            "|",
            ":=",
            "---",
            "\n---\n",
            "é",
            "\r",
            "|",
            ">",
            "0",
            "#",
            "toYaml .",
            " include ",
            "$x",
            "{{ end }}",
            "{{ with .Values.a }}",
            "a: b\n",
            "\t",
            "}",
            "{",
        ];
        let mut rng = Lcg(42);
        let values_texts = ["a:\n  b: 1\n", "a: [1, 2]\n", "{{", "", "- x\n", "a: &x\n  b: *x\n"];
        for _ in 0..3000 {
            let len = rng.next() % 60;
            let mut text = String::new();
            for _ in 0..len {
                text.push_str(PIECES[rng.next() % PIECES.len()]);
            }
            let mut route = Route::root();
            for _ in 0..rng.next() % 5 {
                route = match rng.next() % 4 {
                    0 => route.index(rng.next() % 3),
                    1 => route.key("a"),
                    2 => route.key("b"),
                    _ => route.key("spec"),
                };
            }
            let files: Vec<ValuesFile<'_>> = (0..rng.next() % 3)
                .map(|_| ValuesFile {
                    path: "v.yaml",
                    text: values_texts[rng.next() % values_texts.len()],
                    prefix: if rng.next().is_multiple_of(2) { vec![] } else { vec!["a".into()] },
                })
                .collect();
            let got = map_route(&tpl(&text), &files, rng.next() % 4, &route);
            for loc in got.iter().filter(|l| l.kind == LocationKind::Template) {
                let line = text.split('\n').nth(loc.line as usize - 1).expect("line exists");
                let rest: String = line.chars().skip(loc.column as usize - 1).collect();
                let keys = route.0.iter().filter_map(|s| match s {
                    Segment::Key(k) => Some(k.as_str()),
                    Segment::Index(_) => None,
                });
                assert!(
                    keys.clone().any(|k| [format!("{k}:"), format!("\"{k}\":"), format!("'{k}':")]
                        .iter()
                        .any(|form| rest.starts_with(form.as_str()))),
                    "{text:?} {route} -> {loc:?}: {rest:?}"
                );
            }
            assert!(got.len() <= 2);
        }
    }

    #[test]
    fn pathological_nesting_is_fine() {
        let deep =
            format!("{}spec:\n  a: {{{{ . }}}}\n{}", "{{ with .Values.a }}".repeat(5000), "{{ end }}".repeat(5000));
        let got = map(&deep, &[vf("values.yaml", "a:\n  a: 1\n")], 0, "spec.a");
        assert_eq!(got.last().map(|l| l.line), Some(2));
        let unterminated = "{{ define \"x\" }}\nspec:\n  a: 1\n";
        assert_eq!(map(unterminated, &[], 0, "spec.a"), vec![]);
        let open = "spec:\n  a: {{ \"unterminated\n  b: 1\n";
        assert_eq!(map(open, &[], 0, "spec.a"), vec![t_at(open, "a:", "a")]);
    }
}
