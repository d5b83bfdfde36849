//! YAML documents as a tree of nodes that remember where they came from (line and column).
//!
//! Built on saphyr-parser's event stream (iterative, so deep nesting cannot overflow our stack). We keep
//! our own tree rather than saphyr's because kpath needs things no loader gives together: YAML 1.1 scalar
//! resolution (see [`scalar`]), duplicate keys kept rather than collapsed (IAM policies), merge keys, an
//! alias-expansion budget (alias bombs), and a document split that lets one broken document in a stream
//! leave its neighbours intact.

pub mod scalar;

use std::collections::HashMap;
use std::fmt;

use compact_str::CompactString;
use saphyr_parser::{Event, Parser, ScalarStyle};

pub use scalar::Value;

/// A position in a source file: 1-based line, 1-based column counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// Most nodes a single document may expand to, aliases included. Real manifests are far below this;
/// an alias bomb ("billion laughs") hits it quickly.
pub const MAX_NODES_PER_DOCUMENT: usize = 2_000_000;
/// Deepest nesting accepted. Kubernetes objects rarely exceed 20 levels.
pub const MAX_DEPTH: usize = 256;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts. For a mapping value this is the value; the entry's key has its own node.
    pub pos: Pos,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: Node,
    pub value: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    /// The scalar's content after unescaping and folding.
    pub text: String,
    pub style: Style,
    /// A core-schema tag suffix (`str`, `int`, …) when one was written.
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
    Block,
}

impl Scalar {
    /// The value as Kubernetes reads it.
    pub fn value(&self) -> Value<'_> {
        match (&self.tag, self.style) {
            (Some(tag), _) => scalar::resolve_tagged(&self.text, tag),
            (None, Style::Plain) => scalar::resolve_plain(&self.text),
            (None, _) => Value::Str(&self.text),
        }
    }
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// The last entry with this key (Kubernetes, like most YAML readers, keeps the last duplicate).
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.kind {
            NodeKind::Map(entries) => entries.iter().rev().find(|e| e.key.as_key() == Some(key)),
            _ => None,
        }
    }

    /// Follows a dotted path of mapping keys, e.g. `get_path(&["spec", "template"])`.
    pub fn get_path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |node, key| node.get(key))
    }

    pub fn entries(&self) -> &[Entry] {
        match &self.kind {
            NodeKind::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn items(&self) -> &[Node] {
        match &self.kind {
            NodeKind::Seq(items) => items,
            _ => &[],
        }
    }

    pub fn is_map(&self) -> bool {
        matches!(self.kind, NodeKind::Map(_))
    }

    pub fn is_seq(&self) -> bool {
        matches!(self.kind, NodeKind::Seq(_))
    }

    pub fn scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            NodeKind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.scalar().map(Scalar::value), Some(Value::Null))
    }

    /// The value when it is a string as Kubernetes reads it (a quoted `"yes"`, not a plain `yes`).
    pub fn as_str(&self) -> Option<&str> {
        match self.scalar()?.value() {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar's text whatever its type: for fields that accept any scalar (`"8080"` or `8080`).
    pub fn as_text(&self) -> Option<&str> {
        self.scalar().map(|s| s.text.as_str())
    }

    /// The text of a mapping key; keys are compared as written.
    pub fn as_key(&self) -> Option<&str> {
        self.as_text()
    }

    pub fn as_int(&self) -> Option<i128> {
        match self.scalar()?.value() {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.scalar()?.value() {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }
}

/// One YAML document of a stream.
#[derive(Debug, Clone)]
pub struct Document {
    /// 0-based index in the file's stream of documents.
    pub index: usize,
    /// The document's root; `None` for an empty document (only comments, or `---` alone).
    pub root: Option<Node>,
    /// Line of the document's first content (or its `---`).
    pub start_line: u32,
    /// Keys written twice in one mapping, in the order they appear.
    pub duplicates: Vec<DuplicateKey>,
}

/// A key that appears again in the mapping that already holds it. The tree keeps every occurrence;
/// lookups ([`Node::get`]) see the last one, as kubectl's YAML-to-JSON conversion does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    pub key: String,
    /// The mapping that holds the key twice, from the document's root.
    pub mapping: Route,
    /// The key's previous occurrence in that mapping.
    pub first: Pos,
    /// This occurrence.
    pub again: Pos,
}

/// A YAML syntax error, positioned in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// A document that failed to parse. Its neighbours in the same file are unaffected.
#[derive(Debug, Clone)]
pub struct BrokenDocument {
    pub index: usize,
    pub error: YamlError,
}

/// Parses a multi-document YAML stream. Each document is parsed on its own so that a syntax error in
/// one document still lets the others be checked.
pub fn parse_stream(text: &str) -> (Vec<Document>, Vec<BrokenDocument>) {
    let mut docs = Vec::new();
    let mut broken = Vec::new();
    for parsed in documents(text) {
        match parsed {
            Ok(doc) => docs.push(doc),
            Err(b) => broken.push(b),
        }
    }
    (docs, broken)
}

/// The parser puts an error "at the end of the input" on the line after the last one (`[` alone: line
/// 2). No such line exists, so nothing can be shown or annotated there (found by fuzzing): it is moved to
/// the end of the last line of `text`, whose first line is `first_line` (0-based) of the file.
fn within(mut error: YamlError, text: &str, first_line: u32) -> YamlError {
    let mut end = end_of(text);
    end.line += first_line;
    if error.pos.line > end.line {
        error.pos = end;
    }
    error
}

/// Just after the last character of the last line that has content (line breaks as YAML counts them:
/// `\n`, `\r\n` and a lone `\r`; a final line break does not start another line).
fn end_of(text: &str) -> Pos {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let body = body.strip_suffix('\r').unwrap_or(body);
    let bytes = body.as_bytes();
    let breaks = bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count();
    let last = body.rsplit(['\n', '\r']).next().unwrap_or("");
    Pos { line: breaks as u32 + 1, col: last.chars().count() as u32 + 1 }
}

/// The documents of a stream, parsed one at a time as the iterator advances, so a caller that checks
/// each document before taking the next holds one tree at a time however many documents the file has.
pub fn documents(text: &str) -> impl Iterator<Item = Result<Document, BrokenDocument>> + '_ {
    split_documents(text).into_iter().enumerate().map(|(index, chunk)| chunk.parse(index))
}

/// The documents of a stream, split but not yet parsed: a caller may parse them in parallel
/// ([`Chunk::parse`], with each chunk's index in this list).
pub fn chunks(text: &str) -> Vec<Chunk<'_>> {
    split_documents(text)
}

/// Parses text that holds exactly one document (e.g. a JSON file or a config file).
pub fn parse_single(text: &str) -> Result<Option<Node>, YamlError> {
    parse_one(text, 0).map(|p| p.root).map_err(|e| within(e, text, 0))
}

/// Like [`parse_single`], with the keys the document repeats.
pub fn parse_single_document(text: &str) -> Result<Document, YamlError> {
    let Parsed { root, duplicates } = parse_one(text, 0).map_err(|e| within(e, text, 0))?;
    Ok(Document { index: 0, root, start_line: 1, duplicates })
}

/// The result of parsing one document.
struct Parsed {
    root: Option<Node>,
    duplicates: Vec<DuplicateKey>,
}

/// One document's text in a stream (see [`chunks`]).
pub struct Chunk<'a> {
    text: &'a str,
    /// 0-based line of the chunk's first line in the file.
    first_line: u32,
}

impl<'a> Chunk<'a> {
    /// The document's text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Parses this document; `index` is its place in the stream.
    pub fn parse(&self, index: usize) -> Result<Document, BrokenDocument> {
        match parse_one(self.text, self.first_line) {
            Ok(Parsed { root, duplicates }) => {
                Ok(Document { index, root, start_line: self.first_line + 1, duplicates })
            }
            Err(error) => Err(BrokenDocument { index, error: within(error, self.text, self.first_line) }),
        }
    }
}

/// Splits a stream at `---` document markers written at column 0. A `---` cannot start a line inside
/// block content at column 0 (content there is indented), so this split agrees with the parser's.
fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0usize;
    let mut start_line = 0u32;
    let mut offset = 0usize;
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_marker = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        // A marker at the very start of a chunk opens it; any later one closes the chunk before it.
        if is_marker && offset > start {
            chunks.push(Chunk { text: &text[start..offset], first_line: start_line });
            start = offset;
            start_line = line_no as u32;
        }
        offset += line.len();
    }
    if start < text.len() || chunks.is_empty() {
        chunks.push(Chunk { text: &text[start..], first_line: start_line });
    }
    // A chunk that holds only comments (a header above the first `---`) is not a document of its own.
    chunks.retain(|c| !is_only_comments(c.text));
    chunks
}

fn is_only_comments(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l.starts_with('%')
    })
}

enum Frame {
    Seq { pos: Pos, anchor: usize, items: Vec<Node> },
    Map { pos: Pos, anchor: usize, entries: Vec<Entry>, pending_key: Option<Node> },
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    root: Option<Node>,
    duplicates: Vec<DuplicateKey>,
}

fn to_pos(marker: saphyr_parser::Marker, line_offset: u32) -> Pos {
    Pos { line: marker.line() as u32 + line_offset, col: marker.col() as u32 + 1 }
}

fn count_nodes(node: &Node) -> usize {
    let mut count = 0;
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        count += 1;
        match &n.kind {
            NodeKind::Scalar(_) => {}
            NodeKind::Seq(items) => stack.extend(items.iter()),
            NodeKind::Map(entries) => {
                for e in entries {
                    stack.push(&e.key);
                    stack.push(&e.value);
                }
            }
        }
    }
    count
}

fn parse_one(text: &str, line_offset: u32) -> Result<Parsed, YamlError> {
    let mut builder =
        Builder { stack: Vec::new(), anchors: HashMap::new(), nodes: 0, root: None, duplicates: Vec::new() };
    let parser = Parser::new_from_str(text);
    for event in parser {
        let (event, span) =
            event.map_err(|e| YamlError { pos: to_pos(*e.marker(), line_offset), message: e.info().to_string() })?;
        let pos = to_pos(span.start, line_offset);
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
                    _ => Style::Block,
                };
                let tag = tag.filter(|t| t.is_yaml_core_schema()).map(|t| t.suffix.clone());
                let node = Node { pos, kind: NodeKind::Scalar(Scalar { text: value.into_owned(), style, tag }) };
                builder.push(node, anchor, pos)?;
            }
            Event::SequenceStart(anchor, _) => builder.open(Frame::Seq { pos, anchor, items: Vec::new() }, pos)?,
            Event::MappingStart(anchor, _) => {
                builder.open(Frame::Map { pos, anchor, entries: Vec::new(), pending_key: None }, pos)?
            }
            Event::SequenceEnd | Event::MappingEnd => builder.close(pos)?,
            Event::Alias(id) => {
                let node = builder
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| YamlError { pos, message: "alias refers to an unknown anchor".into() })?;
                builder.nodes += count_nodes(&node);
                if builder.nodes > MAX_NODES_PER_DOCUMENT {
                    return Err(YamlError {
                        pos,
                        message: format!(
                            "aliases expand this document past {MAX_NODES_PER_DOCUMENT} nodes (an alias bomb?)"
                        ),
                    });
                }
                // An alias node keeps the position of its use, so findings point where it is used.
                builder.push(Node { pos, ..node }, 0, pos)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    // Recorded as mappings close (inner ones first); reported in the order they are written.
    let mut duplicates = builder.duplicates;
    duplicates.sort_by_key(|d| d.again);
    Ok(Parsed { root: builder.root, duplicates })
}

impl Builder {
    fn open(&mut self, frame: Frame, pos: Pos) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError { pos, message: format!("nesting deeper than {MAX_DEPTH} levels") });
        }
        self.stack.push(frame);
        Ok(())
    }

    fn close(&mut self, pos: Pos) -> Result<(), YamlError> {
        let frame = self.stack.pop().ok_or_else(|| YamlError { pos, message: "unbalanced collection end".into() })?;
        let (node, anchor) = match frame {
            Frame::Seq { pos, anchor, items } => (Node { pos, kind: NodeKind::Seq(items) }, anchor),
            Frame::Map { pos, anchor, entries, .. } => {
                // Checked here, where the mapping is written, so a mapping repeated through an alias is
                // reported once, at the lines a person edits.
                self.record_duplicates(&entries);
                (Node { pos, kind: NodeKind::Map(apply_merge_keys(entries)) }, anchor)
            }
        };
        self.push(node, anchor, pos)
    }

    /// Records the keys `entries` repeats (see [`repeated_keys`]).
    fn record_duplicates(&mut self, entries: &[Entry]) {
        let found = repeated_keys(entries);
        if found.is_empty() {
            return;
        }
        let mapping = self.route();
        for (key, first, again) in found {
            self.duplicates.push(DuplicateKey { key: key.to_string(), mapping: mapping.clone(), first, again });
        }
    }

    /// The route of the collection being closed (the frame just popped), from the frames still open.
    fn route(&self) -> Route {
        let mut route = Route::root();
        for frame in &self.stack {
            match frame {
                Frame::Seq { items, .. } => route.0.push(Segment::Index(items.len())),
                Frame::Map { pending_key, .. } => {
                    let key = pending_key.as_ref().and_then(Node::as_key).unwrap_or("?");
                    route.0.push(Segment::Key(CompactString::from(key)));
                }
            }
        }
        route
    }

    fn push(&mut self, node: Node, anchor: usize, pos: Pos) -> Result<(), YamlError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES_PER_DOCUMENT {
            return Err(YamlError { pos, message: format!("document has more than {MAX_NODES_PER_DOCUMENT} nodes") });
        }
        if anchor != 0 {
            // An anchored node is kept as a copy for its aliases. The copies count against the budget
            // too: anchors nested D deep copy the innermost content D times even with no alias at all
            // (found while fuzzing with size-aware inputs: 50 nested anchors around 200k items, a 600 KB
            // file, took 1 GB).
            self.nodes += count_nodes(&node);
            if self.nodes > MAX_NODES_PER_DOCUMENT {
                return Err(YamlError {
                    pos,
                    message: format!(
                        "anchors and aliases expand this document past {MAX_NODES_PER_DOCUMENT} nodes (an alias bomb?)"
                    ),
                });
            }
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, pending_key, .. }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => entries.push(Entry { key, value: node }),
            },
        }
        Ok(())
    }
}

/// Every key of a mapping's entries that an earlier entry already has: (key, previous occurrence, this
/// occurrence). Merge keys (`<<`) are skipped, since repeating them is how several maps are merged.
/// Linear: small mappings are compared pairwise, large ones through a map of the keys seen.
pub fn repeated_keys(entries: &[Entry]) -> Vec<(&str, Pos, Pos)> {
    fn key_of(e: &Entry) -> Option<&str> {
        match e.key.scalar() {
            Some(s) if !(s.text == "<<" && s.style == Style::Plain) => Some(s.text.as_str()),
            _ => None,
        }
    }
    let mut found = Vec::new();
    if entries.len() <= 16 {
        for (j, entry) in entries.iter().enumerate() {
            let Some(key) = key_of(entry) else { continue };
            if let Some(earlier) = entries[..j].iter().rev().find(|e| key_of(e) == Some(key)) {
                found.push((key, earlier.key.pos, entry.key.pos));
            }
        }
    } else {
        let mut seen: HashMap<&str, Pos> = HashMap::with_capacity(entries.len());
        for entry in entries {
            let Some(key) = key_of(entry) else { continue };
            if let Some(earlier) = seen.insert(key, entry.key.pos) {
                found.push((key, earlier, entry.key.pos));
            }
        }
    }
    found
}

/// Applies YAML merge keys (`<<: *base`), which Kubernetes' YAML reader honours: merged entries come
/// first, so keys written in the mapping itself win. Linear in the entries (sets of keys, not scans).
fn apply_merge_keys(entries: Vec<Entry>) -> Vec<Entry> {
    let is_merge = |e: &Entry| e.key.as_key() == Some("<<") && e.key.scalar().is_some_and(|s| s.style == Style::Plain);
    if !entries.iter().any(is_merge) {
        return entries;
    }
    let (merges, own): (Vec<Entry>, Vec<Entry>) = entries.into_iter().partition(is_merge);
    let merged: Vec<Entry> = {
        let own_keys: std::collections::HashSet<&str> = own.iter().filter_map(|e| e.key.as_key()).collect();
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut merged = Vec::new();
        for entry in &merges {
            let sources: Vec<&Node> = match &entry.value.kind {
                NodeKind::Map(_) => vec![&entry.value],
                NodeKind::Seq(items) => items.iter().collect(),
                NodeKind::Scalar(_) => vec![],
            };
            for source in sources {
                for e in source.entries() {
                    // Earlier sources win over later ones; keys without text (complex keys) are kept.
                    let fresh = match e.key.as_key() {
                        Some(k) => !own_keys.contains(k) && seen.insert(k),
                        None => true,
                    };
                    if fresh {
                        merged.push(e.clone());
                    }
                }
            }
        }
        merged
    };
    let mut out = merged;
    out.extend(own);
    out
}

/// A path to a node inside a document: keys and sequence indices, printed as
/// `spec.template.spec.containers[0].env[2].value`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Route(pub Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// Keys are short (`spec`, `containers`): stored inline, so cloning a route rarely allocates.
    Key(CompactString),
    Index(usize),
}

impl Route {
    pub fn root() -> Route {
        Route(Vec::new())
    }

    pub fn key(&self, key: &str) -> Route {
        let mut r = self.clone();
        r.0.push(Segment::Key(CompactString::from(key)));
        r
    }

    pub fn index(&self, index: usize) -> Route {
        let mut r = self.clone();
        r.0.push(Segment::Index(index));
        r
    }

    /// Parses the printed form back (`a.b[0].c`); keys containing dots are written `a["x.y"]`.
    pub fn parse(text: &str) -> Route {
        let mut segments = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("[\"") {
                let end = after.find("\"]").unwrap_or(after.len());
                segments.push(Segment::Key(CompactString::from(&after[..end])));
                rest = after.get(end + 2..).unwrap_or("");
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after.find(']').unwrap_or(after.len());
                match after[..end].parse() {
                    Ok(i) => segments.push(Segment::Index(i)),
                    Err(_) => segments.push(Segment::Key(CompactString::from(&after[..end]))),
                }
                rest = after.get(end + 1..).unwrap_or("");
            } else {
                let rest_trim = rest.strip_prefix('.').unwrap_or(rest);
                let end = rest_trim.find(['.', '[']).unwrap_or(rest_trim.len());
                if end > 0 {
                    segments.push(Segment::Key(CompactString::from(&rest_trim[..end])));
                }
                rest = &rest_trim[end..];
                if end == 0 && !rest.starts_with('[') {
                    rest = rest.get(1..).unwrap_or("");
                }
            }
        }
        Route(segments)
    }

    /// Where this route points in `root`: the key's position for a mapping entry (that is the line a
    /// person edits), the item's position for a sequence index. When the route leaves the tree (a field
    /// that is missing), the deepest existing ancestor's position is returned with `exact = false`.
    pub fn locate(&self, root: &Node) -> (Pos, bool) {
        let mut node = root;
        let mut pos = root.pos;
        for seg in &self.0 {
            let next = match seg {
                Segment::Key(k) => node.entry(k).map(|e| (e.key.pos, &e.value)),
                Segment::Index(i) => node.items().get(*i).map(|n| (n.pos, n)),
            };
            match next {
                Some((p, n)) => {
                    pos = p;
                    node = n;
                }
                None => return (pos, false),
            }
        }
        (pos, true)
    }

    /// The node at this route, if it exists.
    pub fn resolve<'a>(&self, root: &'a Node) -> Option<&'a Node> {
        let mut node = root;
        for seg in &self.0 {
            node = match seg {
                Segment::Key(k) => node.get(k)?,
                Segment::Index(i) => node.items().get(*i)?,
            };
        }
        Some(node)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if k.contains(['.', '[', ']', '"']) || k.is_empty() => write!(f, "[\"{k}\"]")?,
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

impl serde::Serialize for Route {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(text: &str) -> Node {
        let (docs, broken) = parse_stream(text);
        assert!(broken.is_empty(), "{broken:?}");
        docs.into_iter().next().and_then(|d| d.root).expect("a document")
    }

    #[test]
    fn positions_are_one_based() {
        let root = first("a: 1\nb:\n  c: [x, y]\n");
        let (pos, exact) = Route::parse("b.c[1]").locate(&root);
        assert!(exact);
        assert_eq!(pos, Pos { line: 3, col: 10 });
        let (pos, exact) = Route::parse("b.missing.deeper").locate(&root);
        assert!(!exact);
        assert_eq!(pos, Pos { line: 2, col: 1 });
    }

    #[test]
    fn documents_are_parsed_independently() {
        let (docs, broken) = parse_stream("a: 1\n---\nb: [\n---\nc: 3\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(broken.len(), 1);
        assert_eq!(broken[0].index, 1);
        // The parser reports the unclosed `[` at the end of its document; that is kept on the document's
        // own last line, not the next document's `---`.
        assert_eq!(broken[0].error.pos.line, 3);
        let c = docs[1].root.as_ref().and_then(|r| r.entry("c")).expect("c");
        assert_eq!(c.key.pos.line, 5);
    }

    /// Found by fuzzing: merging a mapping of many keys compared every key with every other (quadratic).
    /// 50k keys merged into a mapping that overrides every other one.
    #[test]
    fn merging_many_keys_is_linear() {
        let n = 50_000;
        let mut text = String::from("base: &base\n");
        for i in 0..n {
            text.push_str(&format!("  k{i}: base\n"));
        }
        text.push_str("m:\n  <<: *base\n");
        for i in (0..n).step_by(2) {
            text.push_str(&format!("  k{i}: own\n"));
        }
        let m = first(&text).get("m").cloned().expect("m");
        assert_eq!(m.entries().len(), n);
        assert_eq!(m.get("k0").and_then(Node::as_text), Some("own"));
        assert_eq!(m.get("k1").and_then(Node::as_text), Some("base"));
        // Merged entries come first, in the base's order; the mapping's own follow.
        assert_eq!(m.entries()[0].key.as_key(), Some("k1"));
        assert_eq!(m.entries()[n / 2].key.as_key(), Some("k0"));
    }

    /// Found while writing the size-aware fuzz shapes: anchors nested 200 deep around 20k items kept 200 copies of them (4M nodes),
    /// with no alias at all. The copies count against the node budget, like alias expansions.
    #[test]
    fn nested_anchors_are_budgeted() {
        let depth = 200;
        let mut text = String::from("x: ");
        for i in 0..depth {
            text.push_str(&format!("&a{i} ["));
        }
        text.push_str(&vec!["x"; 20_000].join(", "));
        text.push_str(&"]".repeat(depth));
        text.push('\n');
        let (docs, broken) = parse_stream(&text);
        assert!(docs.is_empty());
        assert!(broken[0].error.message.contains("anchors and aliases expand"), "{:?}", broken[0].error);
        // A few anchors, as people write them, are fine.
        let root = first("a: &a [1, 2]\nb: &b {c: *a}\nd: *b\n");
        assert_eq!(root.get_path(&["d", "c"]).map(|n| n.items().len()), Some(2));
    }

    /// Found by fuzzing: an error at the end of the input was placed on a line the file does not have.
    #[test]
    fn errors_at_the_end_stay_on_the_last_line() {
        let error = |text: &str| parse_stream(text).1.first().map(|b| b.error.pos).expect("a broken document");
        assert_eq!(error("["), Pos { line: 1, col: 2 });
        assert_eq!(error("a: 1\n---\nb: [x,\n"), Pos { line: 3, col: 7 });
        assert_eq!(error("a: 1\r\nb: {\r\n"), Pos { line: 2, col: 5 });
        assert_eq!(error("a: 1\rb: ["), Pos { line: 2, col: 5 });
        assert_eq!(parse_single("{\"a\": [").map_err(|e| e.pos), Err(Pos { line: 1, col: 8 }));
    }

    #[test]
    fn leading_comment_chunk_is_not_a_document() {
        let (docs, broken) = parse_stream("# hello\n---\na: 1\n");
        assert!(broken.is_empty());
        assert_eq!(docs.len(), 1);
    }

    #[test]
    fn kubernetes_scalars() {
        let root = first("a: yes\nb: \"yes\"\nc: 0644\nd: !!str 12\n");
        assert_eq!(root.get("a").and_then(Node::as_bool), Some(true));
        assert_eq!(root.get("b").and_then(Node::as_str), Some("yes"));
        assert_eq!(root.get("c").and_then(Node::as_int), Some(420));
        assert_eq!(root.get("d").and_then(Node::as_str), Some("12"));
    }

    #[test]
    fn merge_keys_and_duplicates() {
        let root = first("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\ndup: 1\ndup: 2\n");
        let m = root.get("m").expect("m");
        assert_eq!(m.get("x").and_then(Node::as_int), Some(1));
        assert_eq!(m.get("y").and_then(Node::as_int), Some(3));
        assert_eq!(root.get("dup").and_then(Node::as_int), Some(2));
        assert_eq!(root.entries().iter().filter(|e| e.key.as_key() == Some("dup")).count(), 2);
    }

    /// (key, mapping route, first line, repeat line) of every duplicate in the first document.
    fn duplicates(text: &str) -> Vec<(String, String, u32, u32)> {
        let (docs, broken) = parse_stream(text);
        assert!(broken.is_empty(), "{broken:?}");
        docs.into_iter()
            .flat_map(|d| d.duplicates)
            .map(|d| (d.key, d.mapping.to_string(), d.first.line, d.again.line))
            .collect()
    }

    fn dup(key: &str, mapping: &str, first: u32, again: u32) -> (String, String, u32, u32) {
        (key.to_string(), mapping.to_string(), first, again)
    }

    #[test]
    fn duplicate_keys_are_found_at_any_depth() {
        let text = "\
kind: Pod
kind: Pod
spec:
  containers:
    - name: a
      image: app:latest
      image: app:1.0
      env: [{name: X, value: a, value: b}]
  volumes:
    - {name: v, hostPath: {path: /}, hostPath: {path: /tmp}}
  nested:
    - - deep: 1
        deep: 2
metadata: {namespace: default, name: p, namespace: team}
";
        assert_eq!(
            duplicates(text),
            vec![
                dup("kind", "", 1, 2),
                dup("image", "spec.containers[0]", 6, 7),
                dup("value", "spec.containers[0].env[0]", 8, 8),
                dup("hostPath", "spec.volumes[0]", 10, 10),
                dup("deep", "spec.nested[0][0]", 12, 13),
                dup("namespace", "metadata", 14, 14),
            ]
        );
        // Lookups read the last occurrence, as kubectl does; the tree keeps both.
        let root = first(text);
        let container = Route::parse("spec.containers[0]").resolve(&root).expect("container");
        assert_eq!(container.get("image").and_then(Node::as_str), Some("app:1.0"));
        assert_eq!(container.entries().len(), 4);
    }

    #[test]
    fn each_repeat_names_the_occurrence_before_it() {
        assert_eq!(duplicates("a: 1\na: 2\na: 3\n"), vec![dup("a", "", 1, 2), dup("a", "", 2, 3)]);
        // A large mapping goes through the keyed path: same answers.
        let mut text: String = (0..100).map(|i| format!("k{i}: {i}\n")).collect();
        text.push_str("k7: again\nk99: again\n");
        assert_eq!(duplicates(&text), vec![dup("k7", "", 8, 101), dup("k99", "", 100, 102)]);
    }

    #[test]
    fn merge_keys_and_aliases_are_not_duplicates() {
        let text = "\
base: &b {x: 1, y: 2}
other: &o {z: 3}
m:
  <<: *b
  <<: *o
  y: 3
copy: *b
";
        assert!(duplicates(text).is_empty());
        // A mapping repeated through an alias is reported once, where it is written.
        let text = "a: &a {k: 1, k: 2}\nb: *a\nc: [*a, *a]\n";
        assert_eq!(duplicates(text), vec![dup("k", "a", 1, 1)]);
        // Different spellings are different keys (`"1"` and `1` alike: keys compare as written).
        assert!(duplicates("'a': 1\nb: 2\nA: 3\n").is_empty());
        assert_eq!(duplicates("\"a\": 1\na: 2\n"), vec![dup("a", "", 1, 2)]);
    }

    #[test]
    fn a_mapping_of_many_keys_with_merges_stays_linear() {
        // 50k keys merged into a mapping that overrides all of them: quadratic merging would take minutes.
        let mut text = String::from("base: &b\n");
        text.extend((0..50_000).map(|i| format!("  k{i}: {i}\n")));
        text.push_str("m:\n  <<: *b\n");
        text.extend((0..50_000).map(|i| format!("  k{i}: own\n")));
        let root = first(&text);
        let m = root.get("m").expect("m");
        assert_eq!(m.entries().len(), 50_000);
        assert_eq!(m.get("k49999").and_then(Node::as_text), Some("own"));
    }

    #[test]
    fn alias_bomb_is_an_error() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let (docs, broken) = parse_stream(&text);
        assert!(docs.is_empty());
        assert!(broken[0].error.message.contains("alias bomb"), "{:?}", broken[0].error);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(100_000);
        let (_, broken) = parse_stream(&text);
        assert_eq!(broken.len(), 1);
    }

    #[test]
    fn route_round_trip() {
        for r in ["spec.template.spec.containers[0].env[2].value", "metadata.annotations[\"kpath/ignore.x\"]"] {
            assert_eq!(Route::parse(r).to_string(), r);
        }
    }
}
