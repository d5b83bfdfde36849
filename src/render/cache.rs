//! A content-addressed cache of render results, shared by renderers: in memory (bounded) and, when a
//! directory is given, on disk (written then renamed, so a reader never sees half an entry).
//!
//! The key is a digest of everything a render reads ([`Key`]); the value is the renderer's own text
//! (rendered output, or an encoded failure), so failed renders are cached like successful ones.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

/// Entries kept in memory, up to this many bytes in all (then the memory cache starts again empty);
/// the disk cache has no such bound.
pub const MEMORY_BYTES: usize = 256 << 20;

/// Builds a cache key from length-prefixed fields, so `("ab", "c")` and `("a", "bc")` differ.
pub struct Key {
    hasher: Sha256,
}

impl Key {
    /// A key in `namespace` (`kustomize`), which also names the files on disk.
    pub fn new(namespace: &str) -> Key {
        let mut key = Key { hasher: Sha256::new() };
        key.field(namespace.as_bytes());
        key
    }

    pub fn field(&mut self, bytes: &[u8]) -> &mut Key {
        self.hasher.update((bytes.len() as u64).to_le_bytes());
        self.hasher.update(bytes);
        self
    }

    pub fn finish(self) -> String {
        self.hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[derive(Default)]
struct Memory {
    entries: HashMap<String, Arc<str>>,
    bytes: usize,
}

fn memory() -> &'static Mutex<Memory> {
    static MEMORY: OnceLock<Mutex<Memory>> = OnceLock::new();
    MEMORY.get_or_init(Mutex::default)
}

fn file_name(namespace: &str, key: &str) -> String {
    format!("{namespace}-{key}.txt")
}

/// The entry for `key`: from memory, else from `dir` (then kept in memory too).
pub fn get(namespace: &str, key: &str, dir: Option<&Path>) -> Option<Arc<str>> {
    if let Some(text) = memory().lock().ok()?.entries.get(key) {
        return Some(Arc::clone(text));
    }
    // Bounded like every file kpath reads: an entry larger than the memory cache is not one kpath wrote.
    let bytes = crate::loader::read_bounded(&dir?.join(file_name(namespace, key)), MEMORY_BYTES as u64).ok()?;
    let text: Arc<str> = Arc::from(String::from_utf8(bytes).ok()?.as_str());
    remember(key, Arc::clone(&text));
    Some(text)
}

/// Stores `text` under `key` in memory and, when `dir` is given, on disk. Failures to write are ignored:
/// the cache only saves time.
pub fn put(namespace: &str, key: &str, text: &str, dir: Option<&Path>) {
    remember(key, Arc::from(text));
    let Some(dir) = dir else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) else { return };
    if std::io::Write::write_all(&mut tmp, text.as_bytes()).is_ok() {
        let _ = tmp.persist(dir.join(file_name(namespace, key)));
    }
}

fn remember(key: &str, text: Arc<str>) {
    let Ok(mut memory) = memory().lock() else { return };
    if text.len() > MEMORY_BYTES {
        return;
    }
    if memory.bytes + text.len() > MEMORY_BYTES {
        memory.entries.clear();
        memory.bytes = 0;
    }
    memory.bytes += text.len();
    if let Some(old) = memory.entries.insert(key.to_string(), text) {
        memory.bytes = memory.bytes.saturating_sub(old.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_fields() {
        let mut a = Key::new("t");
        a.field(b"ab").field(b"c");
        let mut b = Key::new("t");
        b.field(b"a").field(b"bc");
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn entries_come_back_from_memory_and_from_disk() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut key = Key::new("test");
        key.field(b"entries_come_back_from_memory_and_from_disk");
        let key = key.finish();
        assert!(get("test", &key, Some(dir.path())).is_none());
        put("test", &key, "rendered", Some(dir.path()));
        assert_eq!(get("test", &key, None).as_deref(), Some("rendered"));
        // Another process: only the disk has it.
        memory().lock().expect("the cache lock").entries.clear();
        assert_eq!(get("test", &key, Some(dir.path())).as_deref(), Some("rendered"));
    }
}
