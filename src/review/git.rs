//! Both sides of a review, read from git objects (never the user's work tree) or from two plain
//! directories: resolving base and head, the changed paths and head-side added lines, listing and
//! reading files of a commit, and writing selected files of a commit into a sandbox directory.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use git2::{Delta, DiffFindOptions, DiffLineType, DiffOptions, ErrorCode, ObjectType, Oid, Repository, Tree};
use similar::DiffTag;

use super::known::Kind;
use super::model::DiffLines;

/// Git's file mode of a symbolic link.
const LINK_MODE: i32 = 0o120000;
/// Symlinks followed while resolving one path (Linux's `ELOOP` limit).
const MAX_LINK_HOPS: usize = 40;
/// Symlinked directories expanded inside one another by `materialize`.
const MAX_LINK_NESTING: usize = 8;
/// Files `materialize` writes through symlinks, against link fan-out bombs.
const MAX_LINKED_FILES: usize = 100_000;
/// Blobs larger than this are never inflated: their size is read from the object's header first
/// (as the engine's limit per file: such a file is reported, not checked).
pub const MAX_BLOB_BYTES: u64 = crate::engine::MAX_FILE_BYTES;
/// A symlink's target is a path: longer than Linux's `PATH_MAX` is not one.
const MAX_LINK_TARGET: u64 = 4096;
/// Time budget for one file's line diff in `dir_changes`; past it the diff is coarser (more lines
/// count as added), never wrong in the other direction.
const DIFF_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot open git repository {}: {}", path.display(), source.message())]
    Open {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
    #[error("cannot resolve revision `{rev}` to a commit: {}{}", source.message(), fetch_hint(source))]
    Revision {
        rev: String,
        #[source]
        source: git2::Error,
    },
    #[error(
        "`{base}` and `{head}` have no common ancestor; if this is a shallow clone, fetch more history \
         (`git fetch --unshallow`, or `fetch-depth: 0` in actions/checkout)"
    )]
    NoMergeBase { base: String, head: String },
    #[error("cannot read `{path}` at commit {}: {}", short(commit), source.message())]
    Read {
        path: String,
        commit: Oid,
        #[source]
        source: git2::Error,
    },
    #[error(
        "`{path}` at commit {} is {} MiB, over kpath's {} MiB limit per file; it was not read",
        short(commit),
        size >> 20,
        MAX_BLOB_BYTES >> 20
    )]
    TooLarge { path: String, commit: Oid, size: u64 },
    #[error("{what}: {}", source.message())]
    Git {
        what: String,
        #[source]
        source: git2::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn fetch_hint(error: &git2::Error) -> &'static str {
    if error.code() == ErrorCode::NotFound { " (is it fetched into this clone?)" } else { "" }
}

fn short(id: &Oid) -> String {
    id.to_string().chars().take(12).collect()
}

/// Two trees to compare: the merge-base of base and head (as GitHub computes a PR's diff) and head.
#[derive(Debug, Clone)]
pub struct RevisionPair {
    /// The commit both sides are compared from: the merge-base of `base` and `head`.
    pub merge_base: Oid,
    /// The pull request's commit.
    pub head: Oid,
    /// The base branch's commit as given (may be ahead of `merge_base`).
    pub base: Oid,
    /// The revisions as the user wrote them, for messages.
    pub base_rev: String,
    pub head_rev: String,
}

/// Opens `repo` (a work tree or a bare repo), resolves `base` and `head` (any revspec: branch, tag, SHA, `HEAD~2`)
/// to commits, and finds their merge-base.
///
/// `repo` must be the repository's top directory (or its git dir): no search upwards.
pub fn resolve(repo: &Path, base: &str, head: &str) -> Result<(Repository, RevisionPair), GitError> {
    resolve_with(repo, base, head, false)
}

/// Like [`resolve`], for a repository that holds only the two commits (a shallow fetch): `base` is taken
/// as the merge-base itself (the App reads it from GitHub's compare API), so no history is walked.
pub fn resolve_known(repo: &Path, merge_base: &str, head: &str) -> Result<(Repository, RevisionPair), GitError> {
    resolve_with(repo, merge_base, head, true)
}

fn resolve_with(
    repo: &Path,
    base: &str,
    head: &str,
    base_is_merge_base: bool,
) -> Result<(Repository, RevisionPair), GitError> {
    // Opened as bare: kpath reads commits and trees only, so neither the work tree nor the index is
    // consulted (the index of a large repository is slow to load, and the work tree is not ours).
    let open_error = |source| GitError::Open { path: repo.to_path_buf(), source };
    // Objects are not hashed again on every read, as git itself does not: a fetch verifies what it stores
    // (index-pack checks every object's id), and a review reads every file of both trees once.
    git2::opts::strict_hash_verification(false);
    let git_dir = Repository::open(repo).map_err(open_error)?.path().to_path_buf();
    let repository = Repository::open_bare(&git_dir).map_err(open_error)?;
    // An empty in-memory index: libgit2 would otherwise load the repository's index file (slow on
    // large repositories) just to look up attributes for binary detection, which then goes by content.
    let mut index = git2::Index::new().map_err(open_error)?;
    repository.set_index(&mut index).map_err(open_error)?;
    let base_id = commit_of(&repository, base)?;
    let head_id = commit_of(&repository, head)?;
    let merge_base = match repository.merge_base(base_id, head_id) {
        _ if base_is_merge_base => base_id,
        Ok(id) => id,
        Err(e) if e.code() == ErrorCode::NotFound => {
            return Err(GitError::NoMergeBase { base: base.to_string(), head: head.to_string() });
        }
        Err(source) => {
            return Err(GitError::Git { what: format!("cannot find the merge-base of `{base}` and `{head}`"), source });
        }
    };
    let pair = RevisionPair {
        merge_base,
        head: head_id,
        base: base_id,
        base_rev: base.to_string(),
        head_rev: head.to_string(),
    };
    Ok((repository, pair))
}

fn commit_of(repo: &Repository, rev: &str) -> Result<Oid, GitError> {
    let object = repo.revparse_single(rev).map_err(|source| GitError::Revision { rev: rev.to_string(), source })?;
    match object.peel_to_commit() {
        Ok(commit) => Ok(commit.id()),
        Err(_) => {
            let kind = object.kind().map_or("object", |k| k.str());
            Err(GitError::Revision {
                rev: rev.to_string(),
                source: git2::Error::from_str(&format!("it names a {kind}, not a commit")),
            })
        }
    }
}

fn commit_tree(repo: &Repository, commit: Oid) -> Result<Tree<'_>, GitError> {
    repo.find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(|source| GitError::Git { what: format!("cannot read commit {}", short(&commit)), source })
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The change between merge-base and head: every path added, modified, deleted or renamed (both old and new
/// path for renames), repository-relative with `/`; plus the lines added or changed on the head side per file
/// (for a modified file: the head line numbers in `+` hunks; for an added file: all its lines), and the
/// unchanged head lines the hunks show around them (3, as GitHub shows them). Binary files: path only.
pub fn changes(repo: &Repository, pair: &RevisionPair) -> Result<(Vec<String>, DiffLines), GitError> {
    let old = commit_tree(repo, pair.merge_base)?;
    let new = commit_tree(repo, pair.head)?;
    let what = || format!("cannot diff {} against {}", short(&pair.merge_base), short(&pair.head));
    // The paths that differ, found by comparing tree ids (an untouched subtree is skipped, and the trees on the
    // way to a change are usually known from an earlier review); then only those paths are compared line by
    // line: file by file, or by libgit2's tree diff when a rename may pair a removed file with an added one.
    let mut differing = BTreeSet::new();
    differ(repo, Some(old.id()), Some(new.id()), "", &mut differing)
        .map_err(|source| GitError::Git { what: what(), source })?;
    if differing.is_empty() {
        return Ok((Vec::new(), DiffLines::default()));
    }
    if let Some(lines) =
        file_by_file(repo, old.id(), new.id(), &differing).map_err(|source| GitError::Git { what: what(), source })?
    {
        return Ok((differing.into_iter().collect(), lines));
    }
    tree_diff(repo, &old, &new, &differing).map_err(|source| GitError::Git { what: what(), source })
}

/// The changed paths and head lines of `differing` by libgit2's diff of the two trees, limited to those paths,
/// with its rename detection.
fn tree_diff(
    repo: &Repository,
    old: &Tree<'_>,
    new: &Tree<'_>,
    differing: &BTreeSet<String>,
) -> Result<(Vec<String>, DiffLines), git2::Error> {
    let mut options = line_options();
    for path in differing {
        options.pathspec(path);
    }
    options.disable_pathspec_match(true);
    // Blobs over the limit are taken as binary, by the size in their header, and never loaded: the
    // line diff of a 400 MB file took 212 s and 7.6 GiB (libgit2's own threshold is 512 MB;
    // https://libgit2.org/docs/reference/main/diff/git_diff_options.html).
    options.include_typechange(true).max_size(i64::try_from(MAX_BLOB_BYTES).unwrap_or(i64::MAX));
    let mut diff = repo.diff_tree_to_tree(Some(old), Some(new), Some(&mut options))?;
    let mut find = DiffFindOptions::new();
    find.renames(true);
    // Inexact rename detection loads both blobs whole to compare them (a 400 MB added file beside a
    // small deleted one: 7 s, 405 MiB), and skips the load only when the sizes are far apart. With a
    // blob over the limit among the candidates, renames are found by identical content only.
    let candidate_too_large = diff.deltas().any(|delta| {
        let id = match delta.status() {
            Delta::Added => delta.new_file().id(),
            Delta::Deleted => delta.old_file().id(),
            _ => return false,
        };
        blob_size(repo, id).is_ok_and(|size| size > MAX_BLOB_BYTES)
    });
    find.exact_match_only(candidate_too_large);
    diff.find_similar(Some(&mut find))?;

    let mut paths = BTreeSet::new();
    for delta in diff.deltas() {
        let old_path = delta.old_file().path_bytes().map(lossy);
        let new_path = delta.new_file().path_bytes().map(lossy);
        let wanted = match delta.status() {
            Delta::Added | Delta::Copied => [None, new_path],
            Delta::Deleted => [old_path, None],
            _ => [old_path, new_path],
        };
        paths.extend(wanted.into_iter().flatten());
    }

    let mut lines = DiffLines::default();
    let mut current: Option<(Vec<u8>, String)> = None;
    diff.foreach(
        &mut |_, _| true,
        None,
        None,
        Some(&mut |delta, _, line| {
            if let Some(path) = delta.new_file().path_bytes() {
                if current.as_ref().is_none_or(|(bytes, _)| bytes != path) {
                    current = Some((path.to_vec(), lossy(path)));
                }
                if let Some((_, name)) = &current {
                    note_line(&mut lines, name, &line);
                }
            }
            true
        }),
    )?;
    Ok((paths.into_iter().collect(), lines))
}

/// Notes a diff line of `path` among the head's added lines or the hunks' context lines (others are not on the
/// head side).
fn note_line(lines: &mut DiffLines, path: &str, line: &git2::DiffLine<'_>) {
    let set = match line.origin_value() {
        DiffLineType::Addition => &mut lines.added,
        DiffLineType::Context => &mut lines.context,
        _ => return,
    };
    if let Some(number) = line.new_lineno() {
        match set.get_mut(path) {
            Some(numbers) => {
                numbers.insert(number);
            }
            None => {
                set.insert(path.to_string(), BTreeSet::from([number]));
            }
        }
    }
}

/// The options of every line diff: hunks with GitHub's context, not merged across unchanged lines.
fn line_options() -> DiffOptions {
    let mut options = DiffOptions::new();
    options.context_lines(HUNK_CONTEXT as u32).interhunk_lines(0);
    options
}

/// The head lines of the `differing` paths, each file compared on its own with its base version, when nothing
/// else is needed: no path is removed while another is added (a rename, which libgit2's tree diff pairs), and
/// every path is a regular file wherever it is. `None` otherwise. Like the tree diff, a file over
/// [`MAX_BLOB_BYTES`] (known from its header, never inflated) or a binary one has no lines.
fn file_by_file(
    repo: &Repository,
    old: Oid,
    new: Oid,
    differing: &BTreeSet<String>,
) -> Result<Option<DiffLines>, git2::Error> {
    let mut pairs = Vec::with_capacity(differing.len());
    for path in differing {
        let side = |root| -> Result<Option<Option<Oid>>, git2::Error> {
            Ok(match super::known::entry(repo, root, path, valid_name)? {
                None => Some(None),
                Some((Kind::Blob, id)) => Some(Some(id)),
                Some(_) => None,
            })
        };
        let (Some(before), Some(after)) = (side(old)?, side(new)?) else { return Ok(None) };
        pairs.push((path, before, after));
    }
    let removes = pairs.iter().any(|(_, before, after)| before.is_some() && after.is_none());
    let adds = pairs.iter().any(|(_, before, after)| before.is_none() && after.is_some());
    if removes && adds {
        return Ok(None);
    }
    let mut lines = DiffLines::default();
    for (path, before, after) in pairs {
        let Some(after) = after else { continue };
        let within = |id: Option<Oid>| id.map_or(Ok(true), |id| blob_size(repo, id).map(|size| size <= MAX_BLOB_BYTES));
        if !within(before)? || !within(Some(after))? {
            continue;
        }
        let before = before.map(|id| repo.find_blob(id)).transpose()?;
        let after = repo.find_blob(after)?;
        let mut options = line_options();
        repo.diff_blobs(
            before.as_ref(),
            Some(path),
            Some(&after),
            Some(path),
            Some(&mut options),
            None,
            None,
            None,
            Some(&mut |_, _, line| {
                note_line(&mut lines, path, &line);
                true
            }),
        )?;
    }
    Ok(Some(lines))
}

/// Adds to `out` every file path under `prefix` that differs between trees `old` and `new` (`None`: absent on
/// that side): files added, removed or changed, and every file of a subtree that replaces a file or is replaced
/// by one. Subtrees with the same id on both sides are not entered.
fn differ(
    repo: &Repository,
    old: Option<Oid>,
    new: Option<Oid>,
    prefix: &str,
    out: &mut BTreeSet<String>,
) -> Result<(), git2::Error> {
    let entries = |id: Option<Oid>| -> Result<super::known::Entries, git2::Error> {
        match id {
            Some(id) => super::known::tree(repo, id, valid_name),
            None => Ok(Arc::default()),
        }
    };
    let (old, new) = (entries(old)?, entries(new)?);
    // Both lists are in git's order (a subtree sorts as if its name ended in `/`): one merge pass pairs each
    // name's entries and skips those with the same content.
    fn key((name, kind, _): super::known::Entry<'_>) -> impl Iterator<Item = u8> + '_ {
        name.bytes().chain((kind == Kind::Tree).then_some(b'/'))
    }
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        let (before, after) = match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) => match key(a).cmp(key(b)) {
                std::cmp::Ordering::Equal => (Some(a), Some(b)),
                std::cmp::Ordering::Less => (Some(a), None),
                std::cmp::Ordering::Greater => (None, Some(b)),
            },
            (a, b) => (a, if a.is_some() { None } else { b }),
        };
        i += usize::from(before.is_some());
        j += usize::from(after.is_some());
        if let (Some(a), Some(b)) = (before, after)
            && a.2 == b.2
        {
            continue;
        }
        let name = before.or(after).map_or("", |(n, _, _)| n);
        let path = join(prefix, name);
        let tree_of = |side: Option<super::known::Entry<'_>>| side.filter(|(_, k, _)| *k == Kind::Tree).map(|e| e.2);
        let (old_tree, new_tree) = (tree_of(before), tree_of(after));
        if old_tree.is_some() || new_tree.is_some() {
            differ(repo, old_tree, new_tree, &path, out)?;
        }
        if before.or(after).is_some_and(|(_, k, _)| k != Kind::Tree) {
            out.insert(path);
        }
    }
    Ok(())
}

/// A tree entry name we are willing to use as a path component: not empty, not `.`/`..`, no
/// separators, not `.git` (git itself refuses to check those out).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.eq_ignore_ascii_case(".git")
        && !name.contains(['/', '\\', '\0'])
        && (cfg!(not(windows)) || !name.contains(':'))
}

/// A requested repository path, normalised (`./a/b/` → `a/b`, `.` → ``); None if it has a component
/// that could leave the tree.
fn clean_request(path: &str) -> Option<String> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            _ if valid_name(part) => parts.push(part),
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") }
}

/// `inner` is `outer` or lies inside it (`""` is the root).
fn within(inner: &str, outer: &str) -> bool {
    outer.is_empty() || inner == outer || inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with('/'))
}

/// A blob's size from its object header, without inflating it (packed objects: the header of the
/// pack entry, or of its delta's base; https://libgit2.org/docs/reference/main/odb/git_odb_read_header.html).
fn blob_size(repo: &Repository, id: Oid) -> Result<u64, git2::Error> {
    let (size, _) = repo.odb()?.read_header(id)?;
    Ok(size as u64)
}

/// A symlink blob's target text; None if it is not UTF-8 or too long to be a path (such a blob is
/// never inflated).
fn link_target(repo: &Repository, id: Oid) -> Result<Option<String>, git2::Error> {
    if blob_size(repo, id)? > MAX_LINK_TARGET {
        return Ok(None);
    }
    let blob = repo.find_blob(id)?;
    Ok(std::str::from_utf8(blob.content()).ok().map(str::to_string))
}

enum Resolved<'r> {
    Blob(Oid),
    Tree(Tree<'r>),
}

/// Resolves `path` relative to directory `dir` of `root` as the OS would in a checkout, following
/// symlinks (physically: `link/..` is the target's parent). None if it leaves the tree, is
/// absolute, dangles, loops, or passes through a file or a submodule. Returns the real path.
fn resolve_in_tree<'r>(
    repo: &'r Repository,
    root: &Tree<'r>,
    dir: &str,
    path: &str,
) -> Result<Option<(String, Resolved<'r>)>, git2::Error> {
    if path.starts_with('/') {
        return Ok(None);
    }
    let mut pending: VecDeque<String> = dir.split('/').chain(path.split('/')).map(str::to_string).collect();
    let mut names: Vec<String> = Vec::new();
    let mut trees: Vec<Tree<'r>> = vec![root.clone()];
    let mut hops = 0;
    while let Some(name) = pending.pop_front() {
        match name.as_str() {
            "" | "." => continue,
            ".." => {
                if names.pop().is_none() {
                    return Ok(None);
                }
                trees.pop();
                continue;
            }
            _ if !valid_name(&name) => return Ok(None),
            _ => {}
        }
        let Some(current) = trees.last() else { return Ok(None) };
        let Some(entry) = current.get_name(&name).map(|e| Item::of(&e)) else { return Ok(None) };
        match entry.kind {
            Some(ObjectType::Blob) if entry.mode == LINK_MODE => {
                hops += 1;
                if hops > MAX_LINK_HOPS {
                    return Ok(None);
                }
                let Some(target) = link_target(repo, entry.id)? else { return Ok(None) };
                if target.starts_with('/') {
                    return Ok(None);
                }
                for part in target.split('/').rev() {
                    pending.push_front(part.to_string());
                }
            }
            Some(ObjectType::Blob) => {
                // `file/` or `file/x`: not a directory.
                if !pending.is_empty() {
                    return Ok(None);
                }
                names.push(name);
                return Ok(Some((names.join("/"), Resolved::Blob(entry.id))));
            }
            Some(ObjectType::Tree) => {
                trees.push(repo.find_tree(entry.id)?);
                names.push(name);
            }
            _ => return Ok(None),
        }
    }
    Ok(trees.pop().map(|tree| (names.join("/"), Resolved::Tree(tree))))
}

/// A tree entry's facts, free of the entry's lifetime.
#[derive(Clone, Copy)]
struct Item {
    id: Oid,
    mode: i32,
    kind: Option<ObjectType>,
}

impl Item {
    fn of(entry: &git2::TreeEntry<'_>) -> Item {
        Item { id: entry.id(), mode: entry.filemode(), kind: entry.kind() }
    }

    fn known(kind: Kind, id: Oid) -> Item {
        match kind {
            Kind::Tree => Item { id, mode: i32::from(git2::FileMode::Tree), kind: Some(ObjectType::Tree) },
            Kind::Blob => Item { id, mode: i32::from(git2::FileMode::Blob), kind: Some(ObjectType::Blob) },
            Kind::Link => Item { id, mode: LINK_MODE, kind: Some(ObjectType::Blob) },
        }
    }
}

struct Materializer<'a, 'r> {
    repo: &'r Repository,
    root: &'a Tree<'r>,
    commit: Oid,
    dest: &'a Path,
    written: HashSet<String>,
    count: usize,
    linked: usize,
}

impl Materializer<'_, '_> {
    fn read_error(&self, path: &str) -> impl Fn(git2::Error) -> GitError {
        let (path, commit) = (path.to_string(), self.commit);
        move |source| GitError::Read { path: path.clone(), commit, source }
    }

    /// Writes the entry whose real repository path is `real` at `out` (they differ inside a
    /// symlinked directory). `links` holds the real paths of the directory links being expanded.
    fn entry(&mut self, real: &str, out: &str, item: Item, links: &mut Vec<String>) -> Result<(), GitError> {
        match item.kind {
            Some(ObjectType::Blob) if item.mode == LINK_MODE => self.link(real, out, item, links),
            Some(ObjectType::Blob) => self.blob(out, item.id, !links.is_empty()),
            Some(ObjectType::Tree) => {
                let tree = self.repo.find_tree(item.id).map_err(self.read_error(real))?;
                self.tree(real, out, &tree, links)
            }
            // Submodules (commits) and anything unknown.
            _ => Ok(()),
        }
    }

    fn tree(&mut self, real: &str, out: &str, tree: &Tree<'_>, links: &mut Vec<String>) -> Result<(), GitError> {
        let items: Vec<(String, Item)> = tree
            .iter()
            .filter_map(|e| e.name().ok().filter(|n| valid_name(n)).map(|n| (n.to_string(), Item::of(&e))))
            .collect();
        for (name, item) in items {
            self.entry(&join(real, &name), &join(out, &name), item, links)?;
        }
        Ok(())
    }

    fn link(&mut self, real: &str, out: &str, item: Item, links: &mut Vec<String>) -> Result<(), GitError> {
        let (dir, _) = real.rsplit_once('/').unwrap_or(("", real));
        let Some(target) = link_target(self.repo, item.id).map_err(self.read_error(real))? else { return Ok(()) };
        let resolved = resolve_in_tree(self.repo, self.root, dir, &target).map_err(self.read_error(real))?;
        match resolved {
            None => Ok(()),
            Some((_, Resolved::Blob(id))) => self.blob(out, id, true),
            Some((target_path, Resolved::Tree(tree))) => {
                // A directory that contains the link (or one being expanded) would expand forever.
                if links.len() >= MAX_LINK_NESTING
                    || within(real, &target_path)
                    || links.iter().any(|l| within(l, &target_path))
                {
                    return Ok(());
                }
                links.push(real.to_string());
                let result = self.tree(&target_path, out, &tree, links);
                links.pop();
                result
            }
        }
    }

    fn blob(&mut self, out: &str, id: Oid, via_link: bool) -> Result<(), GitError> {
        if self.written.contains(out) || (via_link && self.linked >= MAX_LINKED_FILES) {
            return Ok(());
        }
        let path = self.dest.join(out);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|source| GitError::Io { path: parent.to_path_buf(), source })?;
        }
        let size = blob_size(self.repo, id).map_err(self.read_error(out))?;
        if size > MAX_BLOB_BYTES {
            // Not inflated: a sparse file of the same size stands in for it (no data, no memory), so
            // whatever reads the sandbox sees a file over the limit, and reports it by name instead of
            // checking it (the engine's and the chart reader's size checks come before any read).
            let file = fs::File::create(&path).map_err(|source| GitError::Io { path: path.clone(), source })?;
            file.set_len(size).map_err(|source| GitError::Io { path: path.clone(), source })?;
        } else {
            let blob = self.repo.find_blob(id).map_err(self.read_error(out))?;
            fs::write(&path, blob.content()).map_err(|source| GitError::Io { path: path.clone(), source })?;
        }
        self.written.insert(out.to_string());
        self.count += 1;
        if via_link {
            self.linked += 1;
        }
        Ok(())
    }
}

/// Writes the files of `commit` whose repo-relative path equals one of `paths` or lies under one of `dirs`
/// (directory prefixes, `""` meaning the whole tree) into `dest`, creating directories. Returns the number of
/// files written. Requested paths that do not exist are ignored.
///
/// One pass over the tree: each tree on the way to a requested path is read once, whatever the number
/// of requests (a lookup per path would read a directory of n files n times).
///
/// Symlinks are never created: a link whose target (followed like a checkout would, through further
/// links) stays inside the tree is written as a regular file holding the target file's content, or,
/// for a directory target, as a directory holding its files (cycles and nesting beyond
/// `MAX_LINK_NESTING` skipped); links leaving the tree, absolute or dangling are skipped, as are
/// submodules and entries with unsafe names (`..`, `.git`, separators). A blob over [`MAX_BLOB_BYTES`]
/// is not inflated: a sparse file of its size stands in for it, so the check reports it by name.
/// `dest` should be a new or empty directory: existing files are overwritten, and existing symlinks
/// in it would be followed.
pub fn materialize(
    repo: &Repository,
    commit: Oid,
    paths: &[String],
    dirs: &[String],
    dest: &Path,
) -> Result<usize, GitError> {
    let root = commit_tree(repo, commit)?;
    let mut m = Materializer { repo, root: &root, commit, dest, written: HashSet::new(), count: 0, linked: 0 };
    let wanted = Wanted::new(paths, dirs);
    if wanted.everything {
        m.tree("", "", &root, &mut Vec::new())?;
    } else {
        m.select("", root.id(), &wanted)?;
    }
    Ok(m.count)
}

/// What `materialize` was asked for, as sets of clean repository paths.
#[derive(Default)]
struct Wanted {
    /// `""` was among the directories.
    everything: bool,
    files: HashSet<String>,
    dirs: HashSet<String>,
    /// Every directory on the way to a requested file or directory (`""` included).
    ancestors: HashSet<String>,
    /// For each directory on the way, the names in it that are requested or on the way: the others of a large
    /// directory are passed over without building their paths.
    names: HashMap<String, HashSet<String>>,
}

impl Wanted {
    fn new(paths: &[String], dirs: &[String]) -> Wanted {
        let mut wanted = Wanted::default();
        for (requests, is_dir) in [(dirs, true), (paths, false)] {
            for path in requests.iter().filter_map(|p| clean_request(p)) {
                if path.is_empty() {
                    wanted.everything |= is_dir;
                    continue;
                }
                let mut ancestor = path.as_str();
                loop {
                    let (parent, name) = ancestor.rsplit_once('/').unwrap_or(("", ancestor));
                    wanted.names.entry(parent.to_string()).or_default().insert(name.to_string());
                    wanted.ancestors.insert(parent.to_string());
                    if parent.is_empty() {
                        break;
                    }
                    ancestor = parent;
                }
                if is_dir {
                    wanted.dirs.insert(path)
                } else {
                    wanted.files.insert(path)
                };
            }
        }
        wanted
    }
}

impl Materializer<'_, '_> {
    /// Walks `tree` (at `prefix`) writing what `wanted` asks for, entering only directories on the
    /// way to a request.
    fn select(&mut self, prefix: &str, tree: Oid, wanted: &Wanted) -> Result<(), GitError> {
        let Some(names) = wanted.names.get(prefix) else { return Ok(()) };
        let entries = super::known::tree(self.repo, tree, valid_name).map_err(self.read_error(prefix))?;
        let mut path = String::new();
        // A few names are looked up; many are matched in one pass over the entries.
        let found: Vec<super::known::Entry<'_>> = if names.len() * 16 < entries.len() {
            let mut found: Vec<_> =
                names.iter().filter_map(|n| entries.find(n).map(|(kind, id)| (n.as_str(), kind, id))).collect();
            found.sort_unstable_by(|a, b| a.0.cmp(b.0));
            found
        } else {
            entries.iter().filter(|(name, _, _)| names.contains(*name)).collect()
        };
        for (name, kind, id) in found {
            path.clear();
            if !prefix.is_empty() {
                path.push_str(prefix);
                path.push('/');
            }
            path.push_str(name);
            let is_tree = kind == Kind::Tree;
            if wanted.dirs.contains(&path) || (!is_tree && wanted.files.contains(&path)) {
                self.entry(&path, &path, Item::known(kind, id), &mut Vec::new())?;
            } else if is_tree && wanted.ancestors.contains(&path) {
                self.select(&path.clone(), id, wanted)?;
            }
        }
        Ok(())
    }
}

/// Every file path in `commit`'s tree (repo-relative, `/`, sorted): regular files and symlinks;
/// not submodules, nor entries with non-UTF-8 or unsafe names (see `materialize`). Reads trees only.
pub fn list_files(repo: &Repository, commit: Oid) -> Result<Vec<String>, GitError> {
    Ok(list_blobs(repo, commit)?.into_iter().map(|(path, _)| path).collect())
}

/// Like [`list_files`], with each regular file's blob id (`None` for a symlink, which [`read_file`]
/// resolves): reading a file by its id costs one object read, where a lookup by path reads (and verifies)
/// every tree on the way, each time. Trees are read through [`super::known`]: a subtree an earlier review
/// listed is not read again.
pub fn list_blobs(repo: &Repository, commit: Oid) -> Result<Vec<(String, Option<Oid>)>, GitError> {
    let root = commit_tree(repo, commit)?;
    let mut files = Vec::new();
    // Depth first, each tree's entries in git's order (a subtree sorts as if its name ended in `/`): the paths
    // come out in byte order, as a sort would put them (checked, and sorted when a tree is out of order).
    let mut stack = vec![(String::new(), Kind::Tree, root.id())];
    while let Some((path, kind, id)) = stack.pop() {
        match kind {
            Kind::Blob => files.push((path, Some(id))),
            Kind::Link => files.push((path, None)),
            Kind::Tree => {
                let entries = super::known::tree(repo, id, valid_name).map_err(|source| GitError::Read {
                    path: if path.is_empty() { ".".into() } else { path.clone() },
                    commit,
                    source,
                })?;
                for (name, kind, id) in entries.iter().collect::<Vec<_>>().into_iter().rev() {
                    let mut child = String::with_capacity(path.len() + 1 + name.len());
                    if !path.is_empty() {
                        child.push_str(&path);
                        child.push('/');
                    }
                    child.push_str(name);
                    stack.push((child, kind, id));
                }
            }
        }
    }
    if !files.is_sorted() {
        files.sort_unstable();
    }
    Ok(files)
}

/// A regular file's text by its blob id (see [`list_blobs`]); `None` when it is larger than `cap` bytes
/// (known before it is inflated) or cannot be read.
pub fn read_blob(repo: &Repository, id: Oid, cap: u64) -> Option<String> {
    let size = blob_size(repo, id).ok()?;
    if size > cap.min(MAX_BLOB_BYTES) {
        return None;
    }
    repo.find_blob(id).ok().map(|blob| lossy(blob.content()))
}

/// Reads one file's text at `commit` (None if absent, a directory, or a symlink that leaves the
/// tree; symlinks inside the tree are followed). Non-UTF-8 bytes are replaced (U+FFFD). A file over
/// [`MAX_BLOB_BYTES`] is an error naming it, found before the blob is inflated.
pub fn read_file(repo: &Repository, commit: Oid, path: &str) -> Result<Option<String>, GitError> {
    let root = commit_tree(repo, commit)?;
    let Some(clean) = clean_request(path) else { return Ok(None) };
    if clean.is_empty() {
        return Ok(None);
    }
    let read_error = |source| GitError::Read { path: path.to_string(), commit, source };
    match resolve_in_tree(repo, &root, "", &clean).map_err(read_error)? {
        Some((_, Resolved::Blob(id))) => {
            let size = blob_size(repo, id).map_err(read_error)?;
            if size > MAX_BLOB_BYTES {
                return Err(GitError::TooLarge { path: path.to_string(), commit, size });
            }
            let blob = repo.find_blob(id).map_err(read_error)?;
            Ok(Some(lossy(blob.content())))
        }
        _ => Ok(None),
    }
}

/// What a path holds in a plain directory.
#[derive(PartialEq, Eq)]
enum Content {
    File(Vec<u8>),
    /// A file over [`MAX_BLOB_BYTES`], known by its size and a digest read in pieces: never held whole,
    /// and never diffed by line (the checks report it as too large).
    Large(u64, [u8; 32]),
    /// A symlink, compared by its target text like git does (never followed).
    Link(PathBuf),
}

/// A digest of a file read 64 KiB at a time.
fn digest_of(path: &Path) -> io::Result<[u8; 32]> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&chunk[..n]);
    }
}

/// Git's heuristic: a NUL byte in the first 8000 bytes.
fn is_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(8000).any(|&b| b == 0)
}

fn with_path(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

/// Files and symlinks under `root` by `/`-separated relative path, skipping `.git`.
fn scan(root: &Path) -> io::Result<BTreeMap<String, (PathBuf, bool)>> {
    let mut found = BTreeMap::new();
    let walk = walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || e.file_name() != ".git");
    for item in walk {
        let entry = item.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            let error = e.into_io_error().unwrap_or_else(|| io::Error::other("filesystem loop"));
            with_path(&path, error)
        })?;
        let kind = entry.file_type();
        if entry.depth() == 0 || !(kind.is_file() || kind.is_symlink()) {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(root) else { continue };
        let name: Vec<String> = relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        found.insert(name.join("/"), (entry.path().to_path_buf(), kind.is_symlink()));
    }
    Ok(found)
}

fn read_content(path: &Path, is_link: bool) -> io::Result<Content> {
    let content = if is_link {
        fs::read_link(path).map(Content::Link)
    } else {
        match fs::metadata(path) {
            Ok(meta) if meta.len() > MAX_BLOB_BYTES => digest_of(path).map(|d| Content::Large(meta.len(), d)),
            _ => crate::loader::read_bounded(path, MAX_BLOB_BYTES).map(Content::File),
        }
    };
    content.map_err(|e| with_path(path, e))
}

/// Head line numbers (1-based) inserted or replaced going from `old` to `new`.
fn hunk_lines(old: &str, new: &str) -> (BTreeSet<u32>, BTreeSet<u32>) {
    let diff = similar::TextDiff::configure().timeout(DIFF_TIMEOUT).diff_lines(old, new);
    let mut added = BTreeSet::new();
    let mut context = BTreeSet::new();
    // Hunks as `git diff` and GitHub cut them: changes with 3 unchanged lines around them.
    for group in diff.grouped_ops(HUNK_CONTEXT) {
        for op in group {
            let (tag, _, range) = op.as_tag_tuple();
            let lines = range.filter_map(|i| u32::try_from(i + 1).ok());
            match tag {
                DiffTag::Insert | DiffTag::Replace => added.extend(lines),
                DiffTag::Equal => context.extend(lines),
                DiffTag::Delete => {}
            }
        }
    }
    (added, context)
}

/// Unchanged lines a hunk shows around a change: git's default, and what GitHub's pull request diff shows
/// (review comments may go on them).
const HUNK_CONTEXT: usize = 3;

/// Compares two directories: changed paths (added/modified/deleted, by content; symlinks by their
/// target text, never followed) and head-side added lines, computed with `similar`'s line diff (a
/// file new on head, or replacing a binary file or symlink, has all its lines added; binary files:
/// path only). Skips `.git`.
pub fn dir_changes(base: &Path, head: &Path) -> io::Result<(Vec<String>, DiffLines)> {
    let old = scan(base)?;
    let new = scan(head)?;
    let mut changed: Vec<String> = old.keys().filter(|p| !new.contains_key(*p)).cloned().collect();
    let mut lines = DiffLines::default();
    for (path, (file, is_link)) in &new {
        let head_content = read_content(file, *is_link)?;
        let base_content = match old.get(path) {
            Some((file, is_link)) => Some(read_content(file, *is_link)?),
            None => None,
        };
        if base_content.as_ref() == Some(&head_content) {
            continue;
        }
        changed.push(path.clone());
        if let Content::File(bytes) = &head_content
            && !is_binary(bytes)
        {
            let old_text = match &base_content {
                Some(Content::File(old)) if !is_binary(old) => String::from_utf8_lossy(old),
                _ => "".into(),
            };
            let (added, context) = hunk_lines(&old_text, &String::from_utf8_lossy(bytes));
            if !added.is_empty() {
                lines.added.insert(path.clone(), added);
            }
            if !context.is_empty() {
                lines.context.insert(path.clone(), context);
            }
        }
    }
    changed.sort();
    Ok((changed, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    enum E<'a> {
        File(&'a str),
        Bytes(&'a [u8]),
        Link(&'a str),
        Submodule,
    }

    enum Node {
        Leaf(Oid, i32),
        Dir(BTreeMap<String, Node>),
    }

    fn write_tree(repo: &Repository, dir: &BTreeMap<String, Node>) -> Oid {
        let mut builder = repo.treebuilder(None).unwrap();
        for (name, node) in dir {
            match node {
                Node::Leaf(id, mode) => builder.insert(name, *id, *mode).unwrap(),
                Node::Dir(children) => builder.insert(name, write_tree(repo, children), 0o040000).unwrap(),
            };
        }
        builder.write().unwrap()
    }

    /// Commits exactly `files` (a full snapshot) on `branch` with `parents`, writing no work tree.
    fn commit(repo: &Repository, branch: &str, parents: &[Oid], files: &[(&str, E<'_>)]) -> Oid {
        let mut root = BTreeMap::new();
        for (path, entry) in files {
            let (id, mode) = match entry {
                E::File(text) => (repo.blob(text.as_bytes()).unwrap(), 0o100644),
                E::Bytes(bytes) => (repo.blob(bytes).unwrap(), 0o100644),
                E::Link(target) => (repo.blob(target.as_bytes()).unwrap(), LINK_MODE),
                E::Submodule => (Oid::from_str("1234567890123456789012345678901234567890").unwrap(), 0o160000),
            };
            let parts: Vec<&str> = path.split('/').collect();
            let mut dir = &mut root;
            for part in &parts[..parts.len() - 1] {
                let node = dir.entry(part.to_string()).or_insert_with(|| Node::Dir(BTreeMap::new()));
                let Node::Dir(children) = node else { panic!("{part} is a file") };
                dir = children;
            }
            dir.insert(parts[parts.len() - 1].to_string(), Node::Leaf(id, mode));
        }
        let tree = repo.find_tree(write_tree(repo, &root)).unwrap();
        let sig = git2::Signature::new("Test", "test@example.com", &git2::Time::new(1_700_000_000, 0)).unwrap();
        let parents: Vec<git2::Commit<'_>> = parents.iter().map(|p| repo.find_commit(*p).unwrap()).collect();
        let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
        repo.commit(Some(&format!("refs/heads/{branch}")), &sig, &sig, "commit", &tree, &parents).unwrap()
    }

    fn resolve_err(repo: &Path, base: &str, head: &str) -> GitError {
        match resolve(repo, base, head) {
            Ok(_) => panic!("{base}...{head} resolved"),
            Err(e) => e,
        }
    }

    fn numbered(n: u32) -> String {
        (1..=n).map(|i| format!("line {i}\n")).collect()
    }

    fn lines_of(diff: &DiffLines, path: &str) -> Vec<u32> {
        diff.added.get(path).map(|s| s.iter().copied().collect()).unwrap_or_default()
    }

    /// A repo with a `main` root commit holding `files`; returns its tempdir, repo and commit.
    fn repo_with(files: &[(&str, E<'_>)]) -> (tempfile::TempDir, Repository, Oid) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let id = commit(&repo, "main", &[], files);
        (dir, repo, id)
    }

    fn all_files(root: &Path) -> Vec<String> {
        let mut out: Vec<String> = walkdir::WalkDir::new(root)
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| !e.file_type().is_dir())
            .map(|e| e.path().strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn merge_base_hides_changes_made_only_on_base() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let c1 = commit(&repo, "main", &[], &[("a.yaml", E::File("a: 1\n")), ("b.yaml", E::File("b: 1\n"))]);
        let feature = commit(&repo, "feature", &[c1], &[("a.yaml", E::File("a: 2\n")), ("b.yaml", E::File("b: 1\n"))]);
        let c2 = commit(
            &repo,
            "main",
            &[c1],
            &[("a.yaml", E::File("a: 1\n")), ("b.yaml", E::File("b: 2\n")), ("c.yaml", E::File("c: 1\n"))],
        );
        let (repo, pair) = resolve(dir.path(), "main", "feature").unwrap();
        assert_eq!((pair.merge_base, pair.head, pair.base), (c1, feature, c2));
        let (paths, lines) = changes(&repo, &pair).unwrap();
        assert_eq!(paths, ["a.yaml"]);
        assert_eq!(lines.added.len(), 1);
        assert!(lines.contains("a.yaml", 1));
    }

    #[test]
    fn modified_file_reports_exactly_the_inserted_head_lines() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let before = numbered(10);
        let mut after: Vec<String> = before.lines().map(|l| format!("{l}\n")).collect();
        after.insert(5, "new a\n".into());
        after.insert(6, "new b\n".into());
        let after = after.concat();
        let mut changed = before.replace("line 3\n", "line three\n");
        changed = changed.replace("line 9\n", "");
        let c1 = commit(&repo, "main", &[], &[("m.yaml", E::File(&before)), ("r.yaml", E::File(&before))]);
        commit(&repo, "pr", &[c1], &[("m.yaml", E::File(&after)), ("r.yaml", E::File(&changed))]);
        let (repo, pair) = resolve(dir.path(), "main", "pr").unwrap();
        let (paths, lines) = changes(&repo, &pair).unwrap();
        assert_eq!(paths, ["m.yaml", "r.yaml"]);
        assert_eq!(lines_of(&lines, "m.yaml"), [6, 7]);
        // A replaced line counts; a deleted one has no head line.
        assert_eq!(lines_of(&lines, "r.yaml"), [3]);
    }

    #[test]
    fn added_deleted_renamed_and_binary_files() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let long = numbered(20);
        let renamed = long.replace("line 12\n", "line twelve\n");
        let c1 = commit(
            &repo,
            "main",
            &[],
            &[
                ("gone.yaml", E::File("x: 1\n")),
                ("old/name.yaml", E::File(&long)),
                ("img.bin", E::Bytes(b"\0\x01\x02")),
            ],
        );
        commit(
            &repo,
            "pr",
            &[c1],
            &[
                ("new.yaml", E::File("a: 1\nb: 2\nc: 3\nd: 4")),
                ("new/name.yaml", E::File(&renamed)),
                ("img.bin", E::Bytes(b"\0\x01\x03\n\n")),
                ("empty.yaml", E::File("")),
            ],
        );
        let (repo, pair) = resolve(dir.path(), "main", "pr").unwrap();
        let (paths, lines) = changes(&repo, &pair).unwrap();
        assert_eq!(paths, ["empty.yaml", "gone.yaml", "img.bin", "new.yaml", "new/name.yaml", "old/name.yaml"]);
        assert_eq!(lines_of(&lines, "new.yaml"), [1, 2, 3, 4]);
        assert_eq!(lines_of(&lines, "new/name.yaml"), [12], "a rename reports only its edited line");
        let mut keys: Vec<&String> = lines.added.keys().collect();
        keys.sort();
        assert_eq!(keys, ["new.yaml", "new/name.yaml"], "deleted, binary and empty files have no lines");
    }

    #[test]
    fn comparing_file_by_file_gives_what_the_tree_diff_gives() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let long = numbered(40);
        let edited = long.replace("line 3\n", "line three\n").replace("line 30\n", "line thirty\nextra\n");
        let base: Vec<(&str, E<'_>)> = vec![
            ("keep/a.yaml", E::File("a: 1\n")),
            ("long.yaml", E::File(&long)),
            ("img.bin", E::Bytes(b"\0\x01")),
            ("gone.yaml", E::File("x: 1\n")),
        ];
        let c1 = commit(&repo, "main", &[], &base);
        // Edits and additions (no removal: nothing to pair as a rename).
        let c2 = commit(
            &repo,
            "edits",
            &[c1],
            &[
                ("keep/a.yaml", E::File("a: 1\n")),
                ("long.yaml", E::File(&edited)),
                ("img.bin", E::Bytes(b"\0\x02\n")),
                ("gone.yaml", E::File("x: 1\n")),
                ("new/added.yaml", E::File("a: 1\nb: 2\n")),
                ("empty.yaml", E::File("")),
            ],
        );
        // Removals only.
        let c3 = commit(&repo, "removals", &[c1], &[("keep/a.yaml", E::File("a: 1\n")), ("long.yaml", E::File(&long))]);
        for head in [c2, c3] {
            let (old, new) =
                (repo.find_commit(c1).unwrap().tree().unwrap(), repo.find_commit(head).unwrap().tree().unwrap());
            let mut differing = BTreeSet::new();
            differ(&repo, Some(old.id()), Some(new.id()), "", &mut differing).unwrap();
            let fast = file_by_file(&repo, old.id(), new.id(), &differing).unwrap().expect("compared file by file");
            let (paths, lines) = tree_diff(&repo, &old, &new, &differing).unwrap();
            assert_eq!(differing.iter().cloned().collect::<Vec<_>>(), paths);
            let sorted = |m: &std::collections::HashMap<String, BTreeSet<u32>>| {
                m.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<BTreeMap<_, _>>()
            };
            assert_eq!(sorted(&fast.added), sorted(&lines.added));
            assert_eq!(sorted(&fast.context), sorted(&lines.context));
        }
        assert_eq!(
            lines_of(&changes(&repo, &resolve(dir.path(), "main", "edits").unwrap().1).unwrap().1, "long.yaml"),
            [3, 30, 31]
        );
        // A removal beside an addition may be a rename: the tree diff pairs them.
        let c4 = commit(
            &repo,
            "moved",
            &[c1],
            &[
                ("keep/a.yaml", E::File("a: 1\n")),
                ("moved.yaml", E::File(&long)),
                ("img.bin", E::Bytes(b"\0\x01")),
                ("gone.yaml", E::File("x: 1\n")),
            ],
        );
        let (old, new) = (repo.find_commit(c1).unwrap().tree().unwrap(), repo.find_commit(c4).unwrap().tree().unwrap());
        let mut differing = BTreeSet::new();
        differ(&repo, Some(old.id()), Some(new.id()), "", &mut differing).unwrap();
        assert!(file_by_file(&repo, old.id(), new.id(), &differing).unwrap().is_none());
    }

    #[test]
    fn a_changed_file_over_the_limit_is_listed_without_lines() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let (x, y) = (vec![b'x'; (MAX_BLOB_BYTES + 1) as usize], vec![b'y'; (MAX_BLOB_BYTES + 1) as usize]);
        let c1 = commit(&repo, "main", &[], &[("big.yaml", E::Bytes(&x)), ("a.yaml", E::File("a: 1\n"))]);
        commit(&repo, "pr", &[c1], &[("big.yaml", E::Bytes(&y)), ("a.yaml", E::File("a: 2\n"))]);
        let (repo, pair) = resolve(dir.path(), "main", "pr").unwrap();
        let (paths, lines) = changes(&repo, &pair).unwrap();
        assert_eq!(paths, ["a.yaml", "big.yaml"]);
        assert_eq!(lines_of(&lines, "a.yaml"), [1]);
        assert!(!lines.added.contains_key("big.yaml") && !lines.context.contains_key("big.yaml"));
    }

    #[test]
    fn a_file_that_becomes_a_directory_and_back_is_reported_whole_and_untouched_trees_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let c1 = commit(
            &repo,
            "main",
            &[],
            &[("a/deep/x.yaml", E::File("x: 1\n")), ("b", E::File("b\n")), ("c/y.yaml", E::File("y: 1\n"))],
        );
        commit(
            &repo,
            "pr",
            &[c1],
            &[("a/deep/x.yaml", E::File("x: 1\n")), ("b/inner.yaml", E::File("i: 1\n")), ("c", E::File("c\n"))],
        );
        let (repo, pair) = resolve(dir.path(), "main", "pr").unwrap();
        let (paths, lines) = changes(&repo, &pair).unwrap();
        assert_eq!(paths, ["b", "b/inner.yaml", "c", "c/y.yaml"]);
        assert_eq!(lines_of(&lines, "b/inner.yaml"), [1]);
        assert_eq!(lines_of(&lines, "c"), [1]);
        // The same commit on both sides changes nothing.
        let (same, pair) = resolve(dir.path(), "pr", "pr").unwrap();
        assert_eq!(changes(&same, &pair).unwrap().0, Vec::<String>::new());
    }

    #[test]
    fn bare_repo_and_relative_revspecs() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        repo.set_head("refs/heads/main").unwrap();
        let c1 = commit(&repo, "main", &[], &[("a", E::File("1\n"))]);
        let c2 = commit(&repo, "main", &[c1], &[("a", E::File("1\n2\n"))]);
        repo.tag_lightweight("v1", &repo.find_object(c1, None).unwrap(), false).unwrap();
        let (repo, pair) = resolve(dir.path(), "v1", "main").unwrap();
        assert_eq!((pair.merge_base, pair.head), (c1, c2));
        let (_, pair) = resolve(dir.path(), "HEAD~1", &c2.to_string()).unwrap();
        assert_eq!(pair.merge_base, c1);
        assert_eq!(changes(&repo, &pair).unwrap().0, ["a"]);
    }

    #[test]
    fn errors_name_the_repository_and_revision() {
        let (dir, repo, c1) = repo_with(&[("a", E::File("1\n"))]);
        let error = resolve_err(dir.path(), "no-such-branch", "main");
        assert!(matches!(&error, GitError::Revision { rev, .. } if rev == "no-such-branch"), "{error:?}");
        let text = error.to_string();
        assert!(text.contains("`no-such-branch`") && text.contains("fetched"), "{text}");

        let error = resolve_err(dir.path(), "main", "main~5");
        assert!(error.to_string().contains("`main~5`"), "{error}");

        // A revision naming a blob is not a commit.
        let blob = repo.blob(b"x").unwrap();
        let error = resolve_err(dir.path(), "main", &blob.to_string());
        assert!(error.to_string().contains("blob, not a commit"), "{error}");

        let missing = dir.path().join("nowhere");
        let error = resolve_err(&missing, "main", "main");
        assert!(matches!(error, GitError::Open { .. }));
        assert!(error.to_string().contains("nowhere"), "{error}");

        let other = commit(&repo, "orphan", &[], &[("b", E::File("2\n"))]);
        assert_ne!(other, c1);
        let error = resolve_err(dir.path(), "main", "orphan");
        assert!(matches!(&error, GitError::NoMergeBase { base, head } if base == "main" && head == "orphan"));
        assert!(error.to_string().contains("no common ancestor"), "{error}");
    }

    #[test]
    fn materialize_writes_only_what_was_asked_and_no_escaping_links() {
        let (_dir, repo, c1) = repo_with(&[
            ("charts/app/Chart.yaml", E::File("name: app\n")),
            ("charts/app/templates/deploy.yaml", E::File("kind: Deployment\n")),
            ("charts/app/templates/passwd", E::Link("../../../../etc/passwd")),
            ("charts/app/abs", E::Link("/etc/passwd")),
            ("charts/app/values-shared.yaml", E::Link("../../shared/values.yaml")),
            ("charts/app/dangling", E::Link("nope.yaml")),
            ("charts/app/sub", E::Submodule),
            ("charts/apple/Chart.yaml", E::File("name: apple\n")),
            ("charts/other/Chart.yaml", E::File("name: other\n")),
            ("manifests/a.yaml", E::File("a\n")),
            ("manifests/b.yaml", E::File("b\n")),
            ("shared/values.yaml", E::File("replicas: 2\n")),
        ]);
        let out = tempfile::tempdir().unwrap();
        let paths = ["manifests/a.yaml".to_string(), ".kpath.yml".to_string(), "../manifests/b.yaml".to_string()];
        let n = materialize(&repo, c1, &paths, &["charts/app/".to_string()], out.path()).unwrap();
        let files = all_files(out.path());
        assert_eq!(
            files,
            [
                "charts/app/Chart.yaml",
                "charts/app/templates/deploy.yaml",
                "charts/app/values-shared.yaml",
                "manifests/a.yaml"
            ]
        );
        assert_eq!(n, 4);
        let shared = out.path().join("charts/app/values-shared.yaml");
        assert!(fs::symlink_metadata(&shared).unwrap().file_type().is_file());
        assert_eq!(fs::read_to_string(shared).unwrap(), "replicas: 2\n");
        assert!(fs::symlink_metadata(out.path().join("charts/app/templates/passwd")).is_err());
    }

    #[test]
    fn materialize_whole_tree_expands_directory_links_without_looping() {
        let (_dir, repo, c1) = repo_with(&[
            ("a/x.yaml", E::File("x\n")),
            ("a/loop", E::Link("..")),
            ("a/self", E::Link(".")),
            ("a/to-b", E::Link("../b")),
            ("b/y.yaml", E::File("y\n")),
            ("b/to-a", E::Link("../a")),
            ("b/chain", E::Link("../a/to-b/y.yaml")),
            ("top", E::Link("a/to-b/../x.yaml")),
        ]);
        let out = tempfile::tempdir().unwrap();
        let n = materialize(&repo, c1, &[], &["".to_string()], out.path()).unwrap();
        let files = all_files(out.path());
        // `top` resolves physically: a/to-b is b, so b/../x.yaml is x.yaml at the root: absent.
        assert_eq!(files, ["a/to-b/chain", "a/to-b/y.yaml", "a/x.yaml", "b/chain", "b/to-a/x.yaml", "b/y.yaml"]);
        assert_eq!(n, files.len());
        assert_eq!(fs::read_to_string(out.path().join("b/chain")).unwrap(), "y\n");
    }

    /// Trees written raw, as a hostile repository could hold them.
    fn raw_tree(repo: &Repository, entries: &[(&str, &[u8], Oid)]) -> Oid {
        let mut data = Vec::new();
        for (mode, name, id) in entries {
            data.extend_from_slice(mode.as_bytes());
            data.push(b' ');
            data.extend_from_slice(name);
            data.push(0);
            data.extend_from_slice(id.as_bytes());
        }
        repo.odb().unwrap().write(ObjectType::Tree, &data).unwrap()
    }

    #[test]
    fn materialize_refuses_hostile_entry_names() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let blob = repo.blob(b"pwned\n").unwrap();
        let inner = raw_tree(&repo, &[("100644", b"escape.txt", blob)]);
        let root = raw_tree(
            &repo,
            &[
                ("40000", b"..", inner),
                ("40000", b".GIT", inner),
                ("100644", b"a\\..\\b", blob),
                ("100644", b"ok.txt", blob),
            ],
        );
        let sig = git2::Signature::new("T", "t@example.com", &git2::Time::new(0, 0)).unwrap();
        let tree = repo.find_tree(root).unwrap();
        let c = repo.commit(None, &sig, &sig, "evil", &tree, &[]).unwrap();
        let base = tempfile::tempdir().unwrap();
        let out = base.path().join("out");
        fs::create_dir(&out).unwrap();
        let n =
            materialize(&repo, c, &["../escape.txt".to_string()], &["".to_string(), "..".to_string()], &out).unwrap();
        assert_eq!(n, 1);
        assert_eq!(all_files(base.path()), ["out/ok.txt"]);
        assert_eq!(list_files(&repo, c).unwrap(), ["ok.txt"]);
    }

    #[test]
    fn list_and_read_files() {
        let (_dir, repo, c1) = repo_with(&[
            ("Chart.yaml", E::File("name: x\n")),
            ("templates/a.yaml", E::File("a: 1\n")),
            ("templates/link.yaml", E::Link("a.yaml")),
            ("escape.yaml", E::Link("../outside.yaml")),
            ("latin1.txt", E::Bytes(b"caf\xe9\n")),
            ("vendor/sub", E::Submodule),
        ]);
        assert_eq!(
            list_files(&repo, c1).unwrap(),
            ["Chart.yaml", "escape.yaml", "latin1.txt", "templates/a.yaml", "templates/link.yaml"]
        );
        assert_eq!(read_file(&repo, c1, "templates/a.yaml").unwrap().as_deref(), Some("a: 1\n"));
        assert_eq!(read_file(&repo, c1, "./templates/link.yaml").unwrap().as_deref(), Some("a: 1\n"));
        assert_eq!(read_file(&repo, c1, "latin1.txt").unwrap().as_deref(), Some("caf\u{fffd}\n"));
        for absent in ["missing.yaml", "templates", "escape.yaml", "vendor/sub", "", "../Chart.yaml", "Chart.yaml/x"] {
            assert_eq!(read_file(&repo, c1, absent).unwrap(), None, "{absent}");
        }
    }

    #[test]
    fn list_files_of_a_large_tree() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let blob = repo.blob(b"kind: ConfigMap\n").unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        for d in 0..100 {
            let mut sub = repo.treebuilder(None).unwrap();
            for f in 0..100 {
                sub.insert(format!("f{f}.yaml"), blob, 0o100644).unwrap();
            }
            root.insert(format!("d{d}"), sub.write().unwrap(), 0o040000).unwrap();
        }
        let tree = repo.find_tree(root.write().unwrap()).unwrap();
        let sig = git2::Signature::new("T", "t@example.com", &git2::Time::new(0, 0)).unwrap();
        let c = repo.commit(None, &sig, &sig, "big", &tree, &[]).unwrap();
        let start = std::time::Instant::now();
        let files = list_files(&repo, c).unwrap();
        assert_eq!(files.len(), 10_000);
        assert!(files.contains(&"d42/f7.yaml".to_string()));
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn comparing_two_directories() {
        let base = tempfile::tempdir().unwrap();
        let head = tempfile::tempdir().unwrap();
        let write = |root: &Path, path: &str, data: &[u8]| {
            let p = root.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, data).unwrap();
        };
        let ten = numbered(10);
        let mut inserted: Vec<String> = ten.lines().map(|l| format!("{l}\n")).collect();
        inserted.insert(5, "new a\n".into());
        inserted.insert(6, "new b\n".into());
        for (root, m) in [(base.path(), ten.clone()), (head.path(), inserted.concat())] {
            write(root, "charts/app/values.yaml", m.as_bytes());
            write(root, "same.yaml", b"same\n");
            write(root, ".git/HEAD", m.as_bytes());
            write(root, "sub/.git", m.as_bytes());
        }
        write(base.path(), "gone.yaml", b"x\n");
        write(head.path(), "added.yaml", b"a\nb\n");
        write(base.path(), "bin.dat", b"\0a");
        write(head.path(), "bin.dat", b"\0b\nc\n");
        let (changed, lines) = dir_changes(base.path(), head.path()).unwrap();
        assert_eq!(changed, ["added.yaml", "bin.dat", "charts/app/values.yaml", "gone.yaml"]);
        assert_eq!(lines_of(&lines, "charts/app/values.yaml"), [6, 7]);
        assert_eq!(lines_of(&lines, "added.yaml"), [1, 2]);
        assert_eq!(lines.added.len(), 2);

        let error = dir_changes(&base.path().join("missing"), head.path()).unwrap_err();
        assert!(error.to_string().contains("missing"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn directory_symlinks_compare_by_target_text() {
        let base = tempfile::tempdir().unwrap();
        let head = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", base.path().join("l")).unwrap();
        std::os::unix::fs::symlink("/etc/hosts", head.path().join("l")).unwrap();
        std::os::unix::fs::symlink("/etc", head.path().join("d")).unwrap();
        let (changed, lines) = dir_changes(base.path(), head.path()).unwrap();
        assert_eq!(changed, ["d", "l"]);
        assert!(lines.added.is_empty());
    }

    #[test]
    fn materialize_writes_thousands_of_selected_files_from_one_directory() {
        // 3,000 files in one directory, 2,000 of them asked for one by one: each is found in one walk
        // of the tree (a lookup per path read the directory's tree once per path: 20k files, 162 s).
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let mut manifests = repo.treebuilder(None).unwrap();
        for i in 0..3000 {
            let id = repo.blob(format!("n: {i}\n").as_bytes()).unwrap();
            manifests.insert(format!("cm{i}.yaml"), id, 0o100644).unwrap();
        }
        let manifests = manifests.write().unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        root.insert("manifests", manifests, 0o040000).unwrap();
        let tree = repo.find_tree(root.write().unwrap()).unwrap();
        let sig = git2::Signature::new("Test", "test@example.com", &git2::Time::new(1_700_000_000, 0)).unwrap();
        let id = repo.commit(None, &sig, &sig, "many", &tree, &[]).unwrap();
        let wanted: Vec<String> = (0..3000).filter(|i| i % 3 != 0).map(|i| format!("manifests/cm{i}.yaml")).collect();
        let out = tempfile::tempdir().unwrap();
        assert_eq!(materialize(&repo, id, &wanted, &[], out.path()).unwrap(), 2000);
        let mut expected = wanted.clone();
        expected.sort();
        assert_eq!(all_files(out.path()), expected);
        assert_eq!(fs::read_to_string(out.path().join("manifests/cm2999.yaml")).unwrap(), "n: 2999\n");
    }

    #[test]
    fn blobs_over_the_limit_are_sized_from_their_header_and_never_inflated() {
        let big = vec![b'x'; (MAX_BLOB_BYTES + 1) as usize];
        let (_dir, repo, id) = repo_with(&[
            ("big.yaml", E::Bytes(&big)),
            ("small.yaml", E::File("a: 1\n")),
            // A "symlink" whose target text is far longer than any path.
            ("long-link", E::Link(&"a/".repeat(3000))),
        ]);
        drop(big);
        let out = tempfile::tempdir().unwrap();
        materialize(&repo, id, &[], &[String::new()], out.path()).unwrap();
        // A sparse stand-in of the same size: the engine reports it as over the limit, by name.
        let meta = fs::metadata(out.path().join("big.yaml")).unwrap();
        assert_eq!(meta.len(), MAX_BLOB_BYTES + 1);
        assert_eq!(fs::read_to_string(out.path().join("small.yaml")).unwrap(), "a: 1\n");
        assert!(!out.path().join("long-link").exists());
        match read_file(&repo, id, "big.yaml") {
            Err(e @ GitError::TooLarge { .. }) => {
                let message = e.to_string();
                assert!(message.contains("`big.yaml`") && message.contains("16 MiB limit"), "{message}");
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn a_large_added_file_beside_a_deleted_one_is_not_compared_for_renames() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let base = commit(&repo, "main", &[], &[("old.yaml", E::File("a: 1\n")), ("same.yaml", E::File("s: 1\n"))]);
        let big = vec![b'y'; (MAX_BLOB_BYTES + 1) as usize];
        // `same.yaml` moves unchanged: still a rename (found by identical content).
        commit(&repo, "pr", &[base], &[("big.yaml", E::Bytes(&big)), ("moved.yaml", E::File("s: 1\n"))]);
        let (repo, pair) = resolve(dir.path(), "main", "pr").unwrap();
        let (paths, lines) = changes(&repo, &pair).unwrap();
        assert_eq!(paths, ["big.yaml", "moved.yaml", "old.yaml", "same.yaml"]);
        // Over the limit: path only, like a binary file.
        assert!(lines_of(&lines, "big.yaml").is_empty());
    }
}
