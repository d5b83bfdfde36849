//! Where a field of a rendered Kustomize object was written, most direct first: the patch that sets it
//! (strategic-merge documents matched by kind and name, JSON 6902 operations by path, inline patches at
//! their line in the Kustomization), the `images:` entry that set a container image, the root's
//! `namespace:`, a generator's literal or env-file line, then the resource file the object came from
//! (kustomize's `config.kubernetes.io/origin` annotation names it). A location is given only where the key
//! was found; for a missing field, the resource location is the object itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::kustomization::{Kustomization, Patch, PatchBody, Target};
use super::normalize;
use super::output::{Object, Origin};
use crate::finding::Location;
use crate::render::SourceMap;
use crate::yaml::{self, Node, Pos, Route, Segment};

/// What every object of one rendered root shares: the root's Kustomizations and the text of its inputs,
/// parsed when a finding first needs them.
pub struct UnitSources {
    closure: Vec<Arc<Kustomization>>,
    texts: HashMap<String, Arc<str>>,
    parsed: Mutex<HashMap<String, Arc<Vec<Node>>>>,
}

impl UnitSources {
    pub fn new(closure: Vec<Arc<Kustomization>>, texts: HashMap<String, Arc<str>>) -> UnitSources {
        UnitSources { closure, texts, parsed: Mutex::new(HashMap::new()) }
    }

    /// The documents of an input (relative to the tree), parsed once.
    fn docs(&self, path: &str) -> Arc<Vec<Node>> {
        let mut parsed = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(docs) = parsed.get(path) {
            return Arc::clone(docs);
        }
        let docs: Vec<Node> = self
            .texts
            .get(path)
            .map(|text| yaml::parse_stream(text).0.into_iter().filter_map(|d| d.root).collect())
            .unwrap_or_default();
        let docs = Arc::new(docs);
        parsed.insert(path.to_string(), Arc::clone(&docs));
        docs
    }
}

/// The source map of one rendered object.
pub struct ObjectSource {
    unit: Arc<UnitSources>,
    object: Object,
    rendered: OnceLock<Option<Node>>,
}

impl ObjectSource {
    pub fn new(unit: Arc<UnitSources>, object: Object) -> ObjectSource {
        ObjectSource { unit, object, rendered: OnceLock::new() }
    }

    fn rendered(&self) -> Option<&Node> {
        self.rendered.get_or_init(|| yaml::parse_single(&self.object.text).ok().flatten()).as_ref()
    }

    /// The document of the resource file the object came from, with the file.
    fn resource(&self) -> Option<(String, Node)> {
        let Origin::Resource { path } = &self.object.origin else { return None };
        let docs = self.unit.docs(path);
        let of_kind: Vec<&Node> =
            docs.iter().filter(|d| d.get("kind").and_then(Node::as_text) == Some(self.object.kind.as_str())).collect();
        let name_of =
            |d: &Node| d.get_path(&["metadata", "name"]).and_then(Node::as_text).unwrap_or_default().to_string();
        let chosen = of_kind
            .iter()
            .find(|d| name_of(d) == self.object.name)
            .or_else(|| {
                of_kind
                    .iter()
                    .filter(|d| !name_of(d).is_empty() && self.object.name.contains(&name_of(d)))
                    .max_by_key(|d| name_of(d).len())
            })
            .copied()
            .or_else(|| (docs.len() == 1).then(|| &docs[0]))?;
        Some((path.clone(), chosen.clone()))
    }

    /// Whether a patch's target (or, for a strategic-merge patch without one, its own kind and name)
    /// selects this object. `original` is the object's name in its resource file.
    fn selected_by(&self, target: Option<&Target>, patch_root: Option<&Node>, original: Option<&str>) -> bool {
        let names = |name: &str| {
            name == self.object.name
                || Some(name) == original
                || (!name.is_empty() && self.object.name.contains(name))
                // kustomize reads a target's name as a regular expression; kpath does not evaluate it.
                || name.contains(['*', '+', '?', '[', '(', '|', '^', '$', '\\'])
        };
        match target {
            Some(t) => {
                let (group, version) = match self.object.api_version.split_once('/') {
                    Some((g, v)) => (g, v),
                    None => ("", self.object.api_version.as_str()),
                };
                t.kind.as_deref().is_none_or(|k| k == self.object.kind)
                    && t.group.as_deref().is_none_or(|g| g == group)
                    && t.version.as_deref().is_none_or(|v| v == version)
                    && t.name.as_deref().is_none_or(names)
                    && t.label_selector.as_deref().is_none_or(|s| self.labels_match(s))
            }
            None => {
                let Some(root) = patch_root else { return false };
                root.get("kind").and_then(Node::as_text) == Some(self.object.kind.as_str())
                    && root.get_path(&["metadata", "name"]).and_then(Node::as_text).is_some_and(names)
            }
        }
    }

    /// Equality-based label selectors (`a=b,c!=d,e`); set-based terms are taken as matching.
    fn labels_match(&self, selector: &str) -> bool {
        let labels = self.rendered().and_then(|r| r.get_path(&["metadata", "labels"]));
        let label = |k: &str| labels.and_then(|l| l.get(k.trim())).and_then(Node::as_text);
        selector.split(',').all(|term| {
            let term = term.trim();
            if term.contains(" in ") || term.contains(" notin ") || term.contains('(') {
                return true;
            }
            if let Some((k, v)) = term.split_once("!=") {
                return label(k) != Some(v.trim());
            }
            if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                return label(k) == Some(v.trim());
            }
            match term.strip_prefix('!') {
                Some(k) => label(k).is_none(),
                None => label(term).is_some(),
            }
        })
    }

    fn patch_locations(&self, route: &Route, original: Option<&str>, out: &mut Vec<Location>) {
        for k in &self.unit.closure {
            // The last patch of a Kustomization is applied last: it is the one that decides.
            for patch in k.patches.iter().rev() {
                self.patch_location(k, patch, route, original, out);
            }
        }
    }

    fn patch_location(
        &self,
        k: &Kustomization,
        patch: &Patch,
        route: &Route,
        original: Option<&str>,
        out: &mut Vec<Location>,
    ) {
        let (file, docs, inline_at): (String, Arc<Vec<Node>>, Option<Option<u32>>) = match &patch.body {
            PatchBody::File(path) => {
                let Some(path) = normalize(&k.dir, path) else { return };
                let docs = self.unit.docs(&path);
                (path, docs, None)
            }
            PatchBody::Inline { text, first_line } => {
                let docs = yaml::parse_stream(text).0.into_iter().filter_map(|d| d.root).collect();
                (k.file.clone(), Arc::new(docs), Some(*first_line))
            }
        };
        let place = |pos: Pos| -> Location {
            let pos = match inline_at {
                None => pos,
                Some(Some(first)) => self.inline_pos(k, first, pos),
                Some(None) => patch.pos,
            };
            Location { file: file.clone(), line: pos.line, column: pos.col, kind: "patch" }
        };
        // A JSON 6902 patch is a list of operations; anything else is strategic-merge documents.
        if let Some(ops) = docs.first().filter(|d| d.is_seq()) {
            if !self.selected_by(patch.target.as_ref(), None, original) {
                return;
            }
            for op in ops.items().iter().rev() {
                if let Some(pos) = json6902_sets(op, route) {
                    out.push(place(pos));
                    return;
                }
            }
            return;
        }
        let Some(rendered) = self.rendered() else { return };
        for doc in docs.iter() {
            if self.selected_by(patch.target.as_ref(), Some(doc), original)
                && let Some(pos) = strategic_merge_sets(doc, rendered, route)
            {
                out.push(place(pos));
                return;
            }
        }
    }

    /// A position inside an inline block-scalar patch, as a position in the Kustomization.
    fn inline_pos(&self, k: &Kustomization, first_line: u32, pos: Pos) -> Pos {
        let line = first_line + pos.line.saturating_sub(1);
        let indent = self
            .unit
            .texts
            .get(&k.file)
            .and_then(|t| t.lines().nth(line.saturating_sub(1) as usize))
            .map_or(0, |l| (l.len() - l.trim_start_matches(' ').len()) as u32);
        Pos { line, col: pos.col + indent }
    }

    fn image_locations(&self, route: &Route, out: &mut Vec<Location>) {
        let segments = &route.0;
        let n = segments.len();
        let is_image = n >= 3
            && matches!(&segments[n - 1], Segment::Key(k) if k == "image")
            && matches!(&segments[n - 2], Segment::Index(_))
            && matches!(&segments[n - 3], Segment::Key(k) if k == "containers" || k == "initContainers" || k == "ephemeralContainers");
        if !is_image {
            return;
        }
        let Some(image) = self.rendered().and_then(|r| route.resolve(r)).and_then(Node::as_text) else { return };
        let name = image_name(image);
        for k in &self.unit.closure {
            for entry in &k.images {
                let sets = entry.new_tag.is_some() || entry.digest.is_some() || entry.new_name.is_some();
                if sets && entry.new_name.as_deref().unwrap_or(&entry.name) == name {
                    out.push(Location {
                        file: k.file.clone(),
                        line: entry.set_pos.line,
                        column: entry.set_pos.col,
                        kind: "kustomization",
                    });
                }
            }
        }
    }

    fn namespace_location(&self, route: &Route, out: &mut Vec<Location>) {
        if route.to_string() != "metadata.namespace" {
            return;
        }
        if let Some((k, pos)) = self.unit.closure.iter().find_map(|k| k.namespace.as_ref().map(|(_, pos)| (k, *pos))) {
            out.push(Location { file: k.file.clone(), line: pos.line, column: pos.col, kind: "kustomization" });
        }
    }

    fn generator_locations(&self, route: Option<&Route>, out: &mut Vec<Location>) {
        let Origin::Generated { kustomization, by } = &self.object.origin else { return };
        let at = |file: &str, pos: Pos| Location {
            file: file.to_string(),
            line: pos.line,
            column: pos.col,
            kind: "kustomization",
        };
        if by == "HelmChartInflationGenerator" {
            let Some(k) = self.unit.closure.iter().find(|k| k.file == *kustomization) else { return };
            let chart_label = self
                .rendered()
                .and_then(|r| r.get_path(&["metadata", "labels", "helm.sh/chart"]))
                .and_then(Node::as_text);
            let chart = k
                .helm_charts
                .iter()
                .find(|c| chart_label.is_some_and(|l| l.starts_with(&format!("{}-", c.name))))
                .or_else(|| k.helm_charts.iter().find(|c| self.object.name.contains(&c.name)))
                .or_else(|| k.helm_charts.first());
            if let Some(chart) = chart {
                out.push(at(&k.file, chart.pos));
            }
            return;
        }
        // The generators that made this object: of its kind, named within its name (prefix, suffix and
        // hash are added); an overlay's generator with `behavior: merge` shares the name.
        let candidates: Vec<(&Kustomization, &super::kustomization::Generator)> = self
            .unit
            .closure
            .iter()
            .flat_map(|k| k.generators.iter().map(move |g| (k.as_ref(), g)))
            .filter(|(_, g)| {
                g.kind.object_kind() == self.object.kind && !g.name.is_empty() && self.object.name.contains(&g.name)
            })
            .collect();
        let longest = candidates.iter().map(|(_, g)| g.name.len()).max().unwrap_or(0);
        let candidates: Vec<_> = candidates.into_iter().filter(|(_, g)| g.name.len() == longest).collect();
        let data_key = route.and_then(|r| match r.0.as_slice() {
            [Segment::Key(field), Segment::Key(key)]
                if matches!(field.as_str(), "data" | "stringData" | "binaryData") =>
            {
                Some(key.as_str())
            }
            _ => None,
        });
        let Some(key) = data_key else {
            if route.is_none_or(|r| r.to_string() == "metadata.name") {
                out.extend(candidates.iter().map(|(k, g)| at(&k.file, g.pos)));
            }
            return;
        };
        for (k, g) in &candidates {
            if let Some(l) = g.literals.iter().rev().find(|l| l.key == key) {
                out.push(at(&k.file, l.pos));
                continue;
            }
            let in_env = g.envs.iter().rev().find_map(|(path, _)| {
                let path = normalize(&k.dir, path)?;
                let text = self.unit.texts.get(&path)?;
                let (_, _, line) =
                    super::kustomization::env_lines(text).into_iter().rev().find(|(k, _, _)| k == key)?;
                Some(at(&path, Pos { line, col: 1 }))
            });
            if let Some(location) = in_env {
                out.push(location);
                continue;
            }
            if let Some(f) = g.files.iter().rev().find(|f| f.key == key) {
                out.push(at(&k.file, f.pos));
            }
        }
    }
}

impl SourceMap for ObjectSource {
    fn locations(&self, _index: usize, route: Option<&Route>, _part: Option<&str>) -> Vec<Location> {
        let mut out: Vec<Location> = Vec::new();
        let resource = self.resource();
        let original = resource.as_ref().and_then(|(_, d)| d.get_path(&["metadata", "name"])).and_then(Node::as_text);
        if let Some(route) = route {
            self.patch_locations(route, original, &mut out);
            self.image_locations(route, &mut out);
            self.namespace_location(route, &mut out);
        }
        self.generator_locations(route, &mut out);
        if let Some((file, doc)) = &resource {
            let pos = match route.map(|r| r.locate(doc)) {
                Some((pos, true)) => pos,
                // The field is not written in the resource (a patch or transformer added it, or it is
                // missing): the object itself is where it comes from.
                _ => doc.pos,
            };
            out.push(Location { file: file.clone(), line: pos.line, column: pos.col, kind: "resource" });
        }
        let mut unique: Vec<Location> = Vec::with_capacity(out.len());
        for location in out {
            if !unique.contains(&location) {
                unique.push(location);
            }
        }
        unique
    }
}

/// `registry/name:tag@digest` → `registry/name`.
fn image_name(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[slash..].rfind(':') {
        Some(colon) => &without_digest[..slash + colon],
        None => without_digest,
    }
}

/// Where a strategic-merge patch document writes `route` of the rendered object, if it does. Lists of
/// objects are merged by key (containers by `name`, volume mounts by `mountPath`, ports by
/// `containerPort`): the rendered item's key picks the patch's item
/// (<https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/#notes-on-the-strategic-merge-patch>).
fn strategic_merge_sets(patch: &Node, rendered: &Node, route: &Route) -> Option<Pos> {
    const MERGE_KEYS: [&str; 5] = ["name", "mountPath", "containerPort", "devicePath", "ip"];
    let mut p = patch;
    let mut r = Some(rendered);
    let mut pos = None;
    for segment in &route.0 {
        match segment {
            Segment::Key(key) => {
                let entry = p.entry(key)?;
                pos = Some(entry.key.pos);
                p = &entry.value;
                r = r.and_then(|r| r.get(key));
            }
            Segment::Index(i) => {
                let rendered_item = r.and_then(|r| r.items().get(*i));
                let merge_key = rendered_item.and_then(|item| {
                    MERGE_KEYS.iter().find_map(|k| item.get(k).and_then(Node::as_text).map(|v| (*k, v)))
                });
                let item = match merge_key {
                    Some((k, v)) => p.items().iter().find(|item| item.get(k).and_then(Node::as_text) == Some(v))?,
                    None => p.items().get(*i)?,
                };
                pos = Some(item.pos);
                p = item;
                r = rendered_item;
            }
        }
    }
    pos
}

/// Where a JSON 6902 operation (`add`/`replace`) writes `route`: its `value` when its `path` is the
/// route, or the place inside its `value` when the path is an ancestor of the route
/// (<https://datatracker.ietf.org/doc/html/rfc6902>).
fn json6902_sets(op: &Node, route: &Route) -> Option<Pos> {
    if !matches!(op.get("op").and_then(Node::as_text), Some("add" | "replace")) {
        return None;
    }
    let pointer = pointer_segments(op.get("path").and_then(Node::as_text)?)?;
    if pointer.len() > route.0.len() {
        return None;
    }
    let same = pointer.iter().zip(&route.0).all(|(p, s)| match s {
        Segment::Key(k) => p == k.as_str(),
        Segment::Index(i) => *p == i.to_string(),
    });
    if !same {
        return None;
    }
    let value = op.entry("value")?;
    if pointer.len() == route.0.len() {
        return Some(value.key.pos);
    }
    let rest = Route(route.0[pointer.len()..].to_vec());
    match rest.locate(&value.value) {
        (pos, true) => Some(pos),
        _ => None,
    }
}

/// A JSON pointer's reference tokens, unescaped (`~1` is `/`, `~0` is `~`; RFC 6901).
fn pointer_segments(pointer: &str) -> Option<Vec<String>> {
    let rest = pointer.strip_prefix('/')?;
    Some(rest.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(text: &str) -> Node {
        yaml::parse_single(text).ok().flatten().expect("a document")
    }

    #[test]
    fn image_names_lose_tag_and_digest() {
        assert_eq!(image_name("nginx:1.27"), "nginx");
        assert_eq!(image_name("registry:5000/team/app:1.0@sha256:abc"), "registry:5000/team/app");
        assert_eq!(image_name("registry:5000/team/app"), "registry:5000/team/app");
    }

    #[test]
    fn strategic_merge_lists_are_matched_by_key() {
        let patch = node("spec:\n  template:\n    spec:\n      containers:\n      - name: sidecar\n        image: b\n");
        let rendered = node(
            "spec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: a\n      - name: sidecar\n        image: b\n",
        );
        let route = Route::parse("spec.template.spec.containers[1].image");
        assert_eq!(strategic_merge_sets(&patch, &rendered, &route), Some(Pos { line: 6, col: 9 }));
        let route = Route::parse("spec.template.spec.containers[0].image");
        assert_eq!(strategic_merge_sets(&patch, &rendered, &route), None);
    }

    #[test]
    fn json6902_operations_set_their_path_and_what_their_value_holds() {
        let op = node("op: add\npath: /metadata/labels\nvalue:\n  team: a\n");
        assert_eq!(json6902_sets(&op, &Route::parse("metadata.labels.team")), Some(Pos { line: 4, col: 3 }));
        assert_eq!(json6902_sets(&op, &Route::parse("metadata.labels")), Some(Pos { line: 3, col: 1 }));
        assert_eq!(json6902_sets(&op, &Route::parse("metadata.labels.other")), None);
        let op = node("op: replace\npath: /spec/template/spec/containers/0/ports/0/containerPort\nvalue: 8080\n");
        let route = Route::parse("spec.template.spec.containers[0].ports[0].containerPort");
        assert_eq!(json6902_sets(&op, &route), Some(Pos { line: 3, col: 1 }));
        let op = node("op: remove\npath: /spec/replicas\n");
        assert_eq!(json6902_sets(&op, &Route::parse("spec.replicas")), None);
        let op = node("op: add\npath: /metadata/annotations/a.b~1c\nvalue: x\n");
        assert!(
            json6902_sets(
                &op,
                &Route(vec![
                    Segment::Key("metadata".into()),
                    Segment::Key("annotations".into()),
                    Segment::Key("a.b/c".into())
                ])
            )
            .is_some()
        );
    }
}
