//! Cross-object facts: the small part of each object that rules spanning several objects need, read while a
//! file's tree is in memory so the trees themselves can be dropped (memory follows the largest file, not the
//! corpus).
//!
//! Every object keeps only its identity and place ([`ObjectFacts`]). What a rule needs beyond that is a
//! [`Fact`] the rule declares ([`FactKind`]): an autoscaler's target, a workload's requests, a ConfigMap's
//! keys. Each kind is a table of its own holding rows only for the objects that have it, and it is read only
//! when a rule that reads it is on. A new cross-object rule adds its fact beside itself; nothing here changes,
//! and no object pays for a fact it does not have.

use std::any::Any;
use std::sync::Arc;

use compact_str::CompactString;

use crate::finding::ObjectId;
use crate::model::{Object, PodSpec};
use crate::yaml::{Pos, Route};

/// A place in a file, already resolved, for findings raised after the tree is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: Arc<str>,
    pub document: usize,
    pub pos: Pos,
    pub route: Route,
}

/// A place inside its object's document: a fact's place costs no file name, its object holds that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spot {
    pub pos: Pos,
    pub route: Route,
}

impl Spot {
    /// The place of `route` in the object (the nearest existing ancestor's when the field is missing).
    pub fn of(object: &Object<'_>, route: Route) -> Spot {
        let (pos, _) = route.locate(object.root);
        Spot { pos, route }
    }
}

/// What every object keeps for the cross-object rules: who it is, where it is, what it is deployed with.
#[derive(Debug, Clone)]
pub struct ObjectFacts {
    pub api_version: CompactString,
    pub kind: CompactString,
    pub namespace: Option<CompactString>,
    pub name: CompactString,
    pub file: Arc<str>,
    pub document: u32,
    /// Where the object starts (its `kind:` line).
    pub pos: Pos,
    /// The Helm environment render this object came from (`release/env`); `None` for plain files
    /// and renders without environments. Objects of different environments never relate.
    pub scope: Option<Arc<str>>,
    /// Context only: an unchanged object a review reads beside the checked ones. A finding about a relation
    /// goes on a checked object when the rule can choose.
    pub context: bool,
}

impl ObjectFacts {
    fn read(object: &Object<'_>, file: &Arc<str>, document: usize) -> ObjectFacts {
        ObjectFacts {
            api_version: object.api_version.into(),
            kind: object.kind.into(),
            namespace: object.namespace.map(CompactString::from),
            name: object.name.into(),
            file: file.clone(),
            document: u32::try_from(document).unwrap_or(u32::MAX),
            pos: Route::root().key("kind").locate(object.root).0,
            scope: None,
            context: false,
        }
    }

    /// The object's identity, as findings carry it.
    pub fn id(&self) -> ObjectId {
        ObjectId {
            api_version: self.api_version.to_string(),
            kind: self.kind.to_string(),
            namespace: self.namespace.as_ref().map(ToString::to_string),
            name: self.name.to_string(),
        }
    }

    /// The API group (`apps` for `apps/v1`, empty for the core group).
    pub fn group(&self) -> &str {
        self.api_version.split_once('/').map_or("", |(group, _)| group)
    }

    /// Where the object starts (its `kind:` line).
    pub fn place(&self) -> Place {
        self.at(&Spot { pos: self.pos, route: Route::root().key("kind") })
    }

    /// A place of this object's document.
    pub fn at(&self, spot: &Spot) -> Place {
        Place { file: self.file.clone(), document: self.document as usize, pos: spot.pos, route: spot.route.clone() }
    }

    /// Can these two objects relate? Only within one environment's render, or with plain files.
    pub fn same_scope(&self, other: &ObjectFacts) -> bool {
        match (&self.scope, &other.scope) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
}

/// A fact some cross-object rule needs about an object, read from the object while its tree is at hand.
pub trait Fact: Any + Clone + Send + Sync + std::fmt::Debug {
    /// The fact of this object, or `None` when it has none (most objects have none of most facts).
    fn read(object: &Object<'_>, pod: Option<&PodSpec<'_>>) -> Option<Self>;
}

/// A kind of fact, as a rule declares what it reads (`rules::Global::reads`).
pub struct FactKind {
    /// Unique among kinds: tables of the same kind from different reads join by it.
    pub name: &'static str,
    new: fn(&'static str) -> Box<dyn Table>,
}

impl FactKind {
    pub const fn of<T: Fact>(name: &'static str) -> FactKind {
        FactKind { name, new: Rows::<T>::boxed }
    }
}

impl std::fmt::Debug for FactKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// A fact table, whatever its fact.
trait Table: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &'static str;
    fn read(&mut self, index: u32, object: &Object<'_>, pod: Option<&PodSpec<'_>>);
    /// Appends another table of the same kind whose objects follow this one's after `offset`.
    fn take(&mut self, other: Box<dyn Table>, offset: u32);
    fn as_any(&self) -> &dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    fn clone_box(&self) -> Box<dyn Table>;
    fn shrink_to_fit(&mut self);
    /// An empty table of the same kind.
    fn empty(&self) -> Box<dyn Table>;
}

/// The rows of one fact kind: (object index, fact), in object order.
struct Rows<T> {
    name: &'static str,
    rows: Vec<(u32, T)>,
}

impl<T> std::fmt::Debug for Rows<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} rows)", self.name, self.rows.len())
    }
}

impl<T: Fact> Rows<T> {
    fn boxed(name: &'static str) -> Box<dyn Table> {
        Box::new(Rows::<T> { name, rows: Vec::new() })
    }
}

impl<T: Fact> Table for Rows<T> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn read(&mut self, index: u32, object: &Object<'_>, pod: Option<&PodSpec<'_>>) {
        if let Some(fact) = T::read(object, pod) {
            self.rows.push((index, fact));
        }
    }

    fn take(&mut self, other: Box<dyn Table>, offset: u32) {
        if let Ok(other) = other.into_any().downcast::<Rows<T>>() {
            self.rows.extend(other.rows.into_iter().map(|(i, fact)| (i + offset, fact)));
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn clone_box(&self) -> Box<dyn Table> {
        Box::new(Rows { name: self.name, rows: self.rows.clone() })
    }

    fn empty(&self) -> Box<dyn Table> {
        Rows::<T>::boxed(self.name)
    }

    fn shrink_to_fit(&mut self) {
        self.rows.shrink_to_fit();
    }
}

/// The facts read from some objects (one file's, one render's): every object's [`ObjectFacts`], and one
/// table per fact kind asked for. `FactSet::default()` reads no kind: it is a set others are joined into.
#[derive(Debug, Default)]
pub struct FactSet {
    pub objects: Vec<ObjectFacts>,
    tables: Vec<Box<dyn Table>>,
}

impl Clone for FactSet {
    fn clone(&self) -> FactSet {
        FactSet { objects: self.objects.clone(), tables: self.tables.iter().map(|t| t.clone_box()).collect() }
    }
}

impl FactSet {
    /// A set that reads these kinds of each object.
    pub fn new(kinds: &[&'static FactKind]) -> FactSet {
        FactSet { objects: Vec::new(), tables: kinds.iter().map(|kind| (kind.new)(kind.name)).collect() }
    }

    /// Reads one object: its identity and place, and the fact of each kind the set reads.
    pub fn read(&mut self, object: &Object<'_>, pod: Option<&PodSpec<'_>>, file: &Arc<str>, document: usize) {
        let index = u32::try_from(self.objects.len()).unwrap_or(u32::MAX);
        self.objects.push(ObjectFacts::read(object, file, document));
        for table in &mut self.tables {
            table.read(index, object, pod);
        }
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Moves another set's facts to the end of this one.
    pub fn extend(&mut self, other: FactSet) {
        let offset = u32::try_from(self.objects.len()).unwrap_or(u32::MAX);
        self.objects.extend(other.objects);
        for table in other.tables {
            self.table_like(table.as_ref()).take(table, offset);
        }
    }

    /// Copies another set's facts to the end of this one (a context file shared between checks), with `edit`
    /// applied to each object. Kinds this set does not hold yet are kept too.
    pub fn extend_from(&mut self, other: &FactSet, edit: impl Fn(&mut ObjectFacts)) {
        let offset = u32::try_from(self.objects.len()).unwrap_or(u32::MAX);
        self.objects.extend(other.objects.iter().cloned().map(|mut o| {
            edit(&mut o);
            o
        }));
        for table in &other.tables {
            self.table_like(table.as_ref()).take(table.clone_box(), offset);
        }
    }

    /// This set's table of `like`'s kind, made when missing.
    fn table_like(&mut self, like: &dyn Table) -> &mut Box<dyn Table> {
        let at = match self.tables.iter().position(|t| t.name() == like.name()) {
            Some(at) => at,
            None => {
                self.tables.push(like.empty());
                self.tables.len() - 1
            }
        };
        &mut self.tables[at]
    }

    /// Gives back what growing the tables left unused (kept for the whole check: up to half of each).
    pub fn shrink_to_fit(&mut self) {
        self.objects.shrink_to_fit();
        for table in &mut self.tables {
            table.shrink_to_fit();
        }
    }

    /// Every object's file becomes `file` (the same objects, named under another path).
    pub fn move_to(&mut self, file: &Arc<str>) {
        for object in &mut self.objects {
            object.file = file.clone();
        }
    }
}

/// The facts of every object checked together, for rules that span objects, indexed by kind and name so
/// that cross-object lookups stay linear in the number of objects.
#[derive(Debug, Default)]
pub struct Facts {
    pub objects: Vec<ObjectFacts>,
    tables: Vec<Box<dyn Table>>,
    /// Object indices sorted by kind, then name.
    by_name: Vec<u32>,
    /// Objects of render units that were not rendered may exist (a review renders only the affected units):
    /// a plain file's object missing its counterpart may have it there, so rules do not conclude it is absent.
    pub partial: bool,
}

impl Facts {
    pub fn new(mut set: FactSet) -> Facts {
        set.shrink_to_fit();
        let FactSet { objects, tables } = set;
        let mut by_name: Vec<u32> = (0..u32::try_from(objects.len()).unwrap_or(u32::MAX)).collect();
        by_name.sort_by(|&a, &b| {
            let (a, b) = (&objects[a as usize], &objects[b as usize]);
            (a.kind.as_str(), a.name.as_str()).cmp(&(b.kind.as_str(), b.name.as_str()))
        });
        Facts { objects, tables, by_name, partial: false }
    }

    /// Objects of this kind and name, in any namespace.
    pub fn named<'a>(&'a self, kind: &str, name: &str) -> impl Iterator<Item = &'a ObjectFacts> + 'a {
        let key = |i: &u32| {
            let o = &self.objects[*i as usize];
            (o.kind.as_str(), o.name.as_str())
        };
        let start = self.by_name.partition_point(|i| key(i) < (kind, name));
        let end = start + self.by_name[start..].partition_point(|i| key(i) <= (kind, name));
        self.by_name[start..end].iter().map(|&i| &self.objects[i as usize])
    }

    fn rows<T: Fact>(&self) -> &[(u32, T)] {
        self.tables.iter().find_map(|t| t.as_any().downcast_ref::<Rows<T>>()).map_or(&[], |r| r.rows.as_slice())
    }

    /// Every object with a fact of this kind, and its fact (empty when no rule read this kind).
    pub fn with<T: Fact>(&self) -> impl Iterator<Item = (&ObjectFacts, &T)> {
        self.rows::<T>().iter().filter_map(|(i, fact)| Some((self.objects.get(*i as usize)?, fact)))
    }

    /// The fact of this kind of one of these objects.
    pub fn get<T: Fact>(&self, object: &ObjectFacts) -> Option<&T> {
        let index = self.index_of(object)?;
        let rows = self.rows::<T>();
        rows.binary_search_by_key(&index, |(i, _)| *i).ok().map(|at| &rows[at].1)
    }

    /// Where `object` is in `objects` (it must be one of them, by reference).
    fn index_of(&self, object: &ObjectFacts) -> Option<u32> {
        let size = std::mem::size_of::<ObjectFacts>();
        let start = self.objects.as_ptr() as usize;
        let at = std::ptr::from_ref(object) as usize;
        let offset = at.checked_sub(start)?;
        let index = offset / size;
        (offset % size == 0 && index < self.objects.len()).then(|| u32::try_from(index).ok()).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test fact: the `spec.size` of objects that have one.
    #[derive(Debug, Clone, PartialEq)]
    struct Size(String);

    impl Fact for Size {
        fn read(object: &Object<'_>, _: Option<&PodSpec<'_>>) -> Option<Size> {
            object.root.get_path(&["spec", "size"]).and_then(crate::yaml::Node::as_text).map(|s| Size(s.to_string()))
        }
    }

    static SIZE: FactKind = FactKind::of::<Size>("test-size");

    fn set(file: &str, yaml: &str, kinds: &[&'static FactKind]) -> FactSet {
        let file: Arc<str> = Arc::from(file);
        let mut set = FactSet::new(kinds);
        let (docs, _) = crate::yaml::parse_stream(yaml);
        for doc in &docs {
            let root = doc.root.as_ref().expect("document");
            let object = Object::from_root(root).expect("object");
            set.read(&object, object.pod_spec().as_ref(), &file, doc.index);
        }
        set
    }

    const TWO: &str = "apiVersion: v1\nkind: Thing\nmetadata: {name: a, namespace: x}\nspec: {size: big}\n---\n\
apiVersion: v1\nkind: Thing\nmetadata: {name: b}\n";

    #[test]
    fn only_objects_with_a_fact_have_a_row_and_each_finds_its_own_after_joining() {
        let mut all = set("one.yaml", TWO, &[&SIZE]);
        all.extend(set("two.yaml", &TWO.replace("big", "small"), &[&SIZE]));
        let mut context =
            set("three.yaml", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {size: huge}\n", &[&SIZE]);
        context.move_to(&Arc::from("renamed.yaml"));
        all.extend_from(&context, |o| o.context = true);
        let facts = Facts::new(all);
        assert_eq!(facts.objects.len(), 5);
        let sized: Vec<(&str, bool, &str)> =
            facts.with::<Size>().map(|(o, s)| (&*o.file, o.context, s.0.as_str())).collect();
        assert_eq!(sized, [("one.yaml", false, "big"), ("two.yaml", false, "small"), ("renamed.yaml", true, "huge")]);
        let named: Vec<Option<&Size>> = facts.named("Thing", "a").map(|o| facts.get::<Size>(o)).collect();
        assert_eq!(named.len(), 3);
        assert!(named.iter().all(Option::is_some));
        assert!(facts.named("Thing", "b").all(|o| facts.get::<Size>(o).is_none()));
        assert_eq!(facts.named("Thing", "c").count(), 0);
        assert_eq!(facts.named("Other", "a").count(), 0);
        let first = facts.named("Thing", "a").next().expect("a");
        assert_eq!((first.place().pos.line, first.id().namespace.as_deref()), (2, Some("x")));
    }

    #[test]
    fn a_kind_no_rule_asks_for_is_not_read() {
        let facts = Facts::new(set("one.yaml", TWO, &[]));
        assert_eq!(facts.objects.len(), 2);
        assert_eq!(facts.with::<Size>().count(), 0);
    }

    #[test]
    fn an_object_of_another_set_has_no_fact_here() {
        let facts = Facts::new(set("one.yaml", TWO, &[&SIZE]));
        let other = Facts::new(set("one.yaml", TWO, &[&SIZE]));
        let stranger = &other.objects[0];
        assert!(facts.get::<Size>(stranger).is_none());
        assert!(other.get::<Size>(stranger).is_some());
    }
}
