//! Fuzzes the YAML loader (`yaml::parse_stream`): the tree, YAML 1.1 scalar resolution and routes on any
//! text, then the whole check of the same bytes as a manifest file (rules, cross-object rules, reports).
#![no_main]

use kpath::yaml::{self, Node, NodeKind, Route};
use libfuzzer_sys::fuzz_target;

/// Every scalar is resolved; every route to a node with plain keys prints, parses back and resolves.
fn walk(node: &Node, route: &Route, depth: usize) {
    let _ = (node.as_str(), node.as_text(), node.as_int(), node.as_bool(), node.is_null());
    if let Some(scalar) = node.scalar() {
        let _ = scalar.value();
    }
    if depth > 64 {
        return;
    }
    let printed = route.to_string();
    if !route.0.iter().any(|s| matches!(s, yaml::Segment::Key(k) if k.contains('"'))) {
        assert_eq!(&Route::parse(&printed), route, "route {printed:?} does not parse back");
    }
    match &node.kind {
        NodeKind::Scalar(_) => {}
        NodeKind::Seq(items) => {
            for (i, item) in items.iter().enumerate().take(32) {
                walk(item, &route.index(i), depth + 1);
            }
        }
        NodeKind::Map(entries) => {
            for entry in entries.iter().take(32) {
                let Some(key) = entry.key.as_key() else { continue };
                walk(&entry.value, &route.key(key), depth + 1);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let (docs, broken) = yaml::parse_stream(text);
        for doc in &docs {
            if let Some(root) = &doc.root {
                walk(root, &Route::root(), 0);
            }
        }
        for b in &broken {
            assert!(b.error.pos.line >= 1, "a syntax error on line 0: {}", b.error.message);
        }
    }
    kpath_fuzz::check_file("manifest.yaml", data);
});
