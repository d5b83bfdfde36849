//! What reviews have read from git, kept by object id for the life of the process: each tree's entries and
//! each blob's text. A git id names its content, so a subtree or file that several reviews share (the untouched
//! part of a repository, push after push of a pull request in `kpath serve`) is read and inflated once, and a
//! review's cost follows what its change touched rather than the size of the repository.
//!
//! Both caches are bounded by weight (roughly the bytes they keep) and evict what was least used. Only what
//! an id fully determines is kept: a tree's entries and a blob's text, never "missing" or "unreadable", which
//! depend on the repository asked.

use std::sync::{Arc, LazyLock};

use git2::{Oid, Repository};

/// What one entry of a tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tree,
    Blob,
    /// A symbolic link (a blob whose text is the link's target).
    Link,
}

/// A tree's entries kpath uses (regular files, links, subtrees; not submodules, nor names refused by the
/// `accept` function it was read with), in the tree's order, names in one buffer.
#[derive(Debug, Default)]
pub struct Listing {
    names: String,
    items: Vec<(u32, u32, Kind, Oid)>,
}

/// One entry of a [`Listing`]: name, kind, id.
pub type Entry<'a> = (&'a str, Kind, Oid);

impl Listing {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<Entry<'_>> {
        let (start, end, kind, id) = *self.items.get(index)?;
        Some((&self.names[start as usize..end as usize], kind, id))
    }

    pub fn iter(&self) -> impl Iterator<Item = Entry<'_>> + '_ {
        (0..self.items.len()).filter_map(|i| self.get(i))
    }

    /// The entry named `name`.
    pub fn find(&self, name: &str) -> Option<(Kind, Oid)> {
        self.iter().find(|(n, _, _)| *n == name).map(|(_, kind, id)| (kind, id))
    }

    /// Reads a raw tree object (`mode SP name NUL id`, repeated): what libgit2 parses, without an allocation per
    /// entry. A malformed object is an error.
    fn parse(data: &[u8], accept: fn(&str) -> bool) -> Result<Listing, git2::Error> {
        let malformed = || git2::Error::from_str("malformed tree object");
        let mut listing = Listing::default();
        let mut rest = data;
        while !rest.is_empty() {
            let space = rest.iter().position(|b| *b == b' ').ok_or_else(malformed)?;
            let nul = rest[space..].iter().position(|b| *b == 0).ok_or_else(malformed)? + space;
            let id = rest.get(nul + 1..nul + 21).ok_or_else(malformed)?;
            let mode = std::str::from_utf8(&rest[..space])
                .ok()
                .and_then(|m| u32::from_str_radix(m, 8).ok())
                .ok_or_else(malformed)?;
            let name = &rest[space + 1..nul];
            rest = &rest[nul + 21..];
            let kind = match mode & 0o170000 {
                0o040000 => Kind::Tree,
                0o100000 => Kind::Blob,
                0o120000 => Kind::Link,
                _ => continue,
            };
            let Some(name) = std::str::from_utf8(name).ok().filter(|n| accept(n)) else { continue };
            let start = listing.names.len() as u32;
            listing.names.push_str(name);
            listing.items.push((start, listing.names.len() as u32, kind, Oid::from_bytes(id)?));
        }
        listing.names.shrink_to_fit();
        listing.items.shrink_to_fit();
        Ok(listing)
    }
}

/// A kept [`Listing`].
pub type Entries = Arc<Listing>;

/// Most bytes of tree entries kept.
const TREE_WEIGHT: u64 = 32 << 20;
/// Most bytes of blob text kept.
const TEXT_WEIGHT: u64 = 64 << 20;
/// Roughly what a cache entry costs beyond its bytes.
const OVERHEAD: u64 = 64;

#[derive(Clone)]
struct TreeWeight;

impl quick_cache::Weighter<Oid, Entries> for TreeWeight {
    fn weight(&self, _: &Oid, entries: &Entries) -> u64 {
        OVERHEAD + entries.names.len() as u64 + entries.items.len() as u64 * 32
    }
}

#[derive(Clone)]
struct TextWeight;

impl quick_cache::Weighter<Oid, Arc<str>> for TextWeight {
    fn weight(&self, _: &Oid, text: &Arc<str>) -> u64 {
        OVERHEAD + text.len() as u64
    }
}

static TREES: LazyLock<quick_cache::sync::Cache<Oid, Entries, TreeWeight>> =
    LazyLock::new(|| quick_cache::sync::Cache::with_weighter(50_000, TREE_WEIGHT, TreeWeight));

static TEXTS: LazyLock<quick_cache::sync::Cache<Oid, Arc<str>, TextWeight>> =
    LazyLock::new(|| quick_cache::sync::Cache::with_weighter(50_000, TEXT_WEIGHT, TextWeight));

/// The entries of tree `id` whose names `accept` takes (the same function for every call: the entries are
/// kept by the tree's id alone).
pub fn tree(repo: &Repository, id: Oid, accept: fn(&str) -> bool) -> Result<Entries, git2::Error> {
    if let Some(entries) = TREES.get(&id) {
        return Ok(entries);
    }
    let odb = repo.odb()?;
    let object = odb.read(id)?;
    if object.kind() != git2::ObjectType::Tree {
        return Err(git2::Error::from_str("not a tree object"));
    }
    let entries: Entries = Arc::new(Listing::parse(object.data(), accept)?);
    TREES.insert(id, entries.clone());
    Ok(entries)
}

/// The entry at `path` (`/`-separated, relative) under tree `root`, walking kept trees (see [`tree`]).
pub fn entry(
    repo: &Repository,
    root: Oid,
    path: &str,
    accept: fn(&str) -> bool,
) -> Result<Option<(Kind, Oid)>, git2::Error> {
    let mut at = (Kind::Tree, root);
    for part in path.split('/') {
        if at.0 != Kind::Tree {
            return Ok(None);
        }
        let entries = tree(repo, at.1, accept)?;
        let Some(found) = entries.find(part) else { return Ok(None) };
        at = found;
    }
    Ok(Some(at))
}

/// Blob `id`'s text (lossy UTF-8), read with `read` when it is not kept yet; `None` (never kept) when `read`
/// has none: too large, or missing from this repository.
pub fn text(id: Oid, read: impl FnOnce() -> Option<String>) -> Option<Arc<str>> {
    if let Some(text) = TEXTS.get(&id) {
        return Some(text);
    }
    let text: Arc<str> = Arc::from(read()?);
    TEXTS.insert(id, text.clone());
    Some(text)
}

/// A regular file's text by its blob id, up to [`super::git::MAX_BLOB_BYTES`], kept as [`text`] keeps it.
pub fn blob(repo: &Repository, id: Oid) -> Option<Arc<str>> {
    text(id, || super::git::read_blob(repo, id, super::git::MAX_BLOB_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept_all(_: &str) -> bool {
        true
    }

    #[test]
    fn a_raw_tree_is_read_as_libgit2_reads_it_and_a_malformed_one_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = Repository::init_bare(dir.path()).expect("repo");
        let blob = repo.blob(b"a: 1\n").expect("blob");
        let sub = repo.treebuilder(None).expect("builder").write().expect("empty tree");
        let mut builder = repo.treebuilder(None).expect("builder");
        for (name, mode, id) in [("run.sh", 0o100755, blob), ("b.yaml", 0o100644, blob), ("dir", 0o040000, sub)] {
            builder.insert(name, id, mode).expect("insert");
        }
        builder.insert("module", Oid::from_bytes(&[7; 20]).expect("id"), 0o160000).expect("submodule");
        let id = builder.write().expect("tree");
        let ours: Vec<(String, Kind, Oid)> =
            tree(&repo, id, accept_all).expect("entries").iter().map(|(n, k, i)| (n.to_string(), k, i)).collect();
        let theirs: Vec<(String, Kind, Oid)> = repo
            .find_tree(id)
            .expect("tree")
            .iter()
            .filter(|e| e.kind() != Some(git2::ObjectType::Commit))
            .map(|e| {
                let kind = if e.kind() == Some(git2::ObjectType::Tree) { Kind::Tree } else { Kind::Blob };
                (e.name().expect("name").to_string(), kind, e.id())
            })
            .collect();
        assert_eq!(ours, theirs, "submodules left out, the order kept");
        for bad in [&b"100644 a.yaml"[..], b"100644 a.yaml\0short", b"1x0644 a.yaml\0aaaaaaaaaaaaaaaaaaaa"] {
            assert!(Listing::parse(bad, accept_all).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_tree_and_a_blob_are_read_once_and_then_served_by_id_whatever_the_repository() {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = Repository::init_bare(dir.path()).expect("repo");
        let blob = repo.blob(b"kind: ConfigMap\n").expect("blob");
        let mut builder = repo.treebuilder(None).expect("builder");
        builder.insert("cm.yaml", blob, 0o100644).expect("insert");
        builder.insert("link", repo.blob(b"cm.yaml").expect("blob"), 0o120000).expect("insert");
        let id = builder.write().expect("tree");

        let entries = tree(&repo, id, accept_all).expect("entries");
        assert_eq!(entry(&repo, id, "cm.yaml", accept_all).expect("entry"), Some((Kind::Blob, blob)));
        assert_eq!(entry(&repo, id, "cm.yaml/x", accept_all).expect("entry"), None);
        assert_eq!(entry(&repo, id, "absent", accept_all).expect("entry"), None);
        let kinds: Vec<(&str, Kind)> = entries.iter().map(|(n, k, _)| (n, k)).collect();
        assert_eq!(kinds, [("cm.yaml", Kind::Blob), ("link", Kind::Link)]);
        // Another repository without the objects gets them by id alone.
        let other_dir = tempfile::tempdir().expect("temp dir");
        let other = Repository::init_bare(other_dir.path()).expect("repo");
        assert!(other.find_tree(id).is_err());
        assert_eq!(tree(&other, id, accept_all).expect("kept").len(), 2);

        let read = |repo: &Repository| repo.find_blob(blob).ok().map(|b| String::from_utf8_lossy(b.content()).into());
        assert_eq!(text(blob, || read(&repo)).as_deref(), Some("kind: ConfigMap\n"));
        assert_eq!(text(blob, || read(&other)).as_deref(), Some("kind: ConfigMap\n"));
        // What a repository cannot read is not remembered as missing.
        let absent = Oid::hash_object(git2::ObjectType::Blob, b"elsewhere").expect("id");
        assert_eq!(text(absent, || None), None);
        assert_eq!(text(absent, || Some("found".into())).as_deref(), Some("found"));
    }
}
