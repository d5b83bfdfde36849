//! Nothing of a run outlives kpath: the helm process groups and temporary directories kpath owns are
//! registered here, so that every way kpath ends stops the processes and removes the directories —
//! returning (the owners' `Drop`), SIGINT/SIGTERM/SIGHUP ([`exit_on_signals`], [`stop_everything`]), and
//! SIGKILL or a crash (helm dies of its parent-death signal, see `helm::binary`; the directories are
//! removed by the next kpath that starts, [`sweep_stale`]).
//!
//! A directory's owner holds an exclusive `flock` on `.kpath-owner` inside it for as long as it lives.
//! The kernel drops that lock when the owner dies, however it dies, so "the lock is free" means "the
//! owner is gone" — unlike a pid in the name, which another process may reuse, or which another PID
//! namespace sharing `/tmp` cannot see. See flock(2): <https://man7.org/linux/man-pages/man2/flock.2.html>.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The lock file inside an owned directory.
const OWNER_FILE: &str = ".kpath-owner";
/// Name prefixes of the directories kpath creates under the temporary directory (and sweeps).
pub const DIR_PREFIXES: [&str; 2] = ["kpath-helm-", "kpath-review-"];

/// What is alive right now: process groups by their leader's pid, and directories.
struct Registry {
    /// Set once kpath is stopping: nothing new is spawned or created after it.
    closing: bool,
    next: u64,
    groups: BTreeMap<u64, u32>,
    dirs: BTreeMap<u64, PathBuf>,
}

static REGISTRY: Mutex<Registry> =
    Mutex::new(Registry { closing: false, next: 0, groups: BTreeMap::new(), dirs: BTreeMap::new() });

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn stopping() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "kpath is stopping")
}

/// A temporary directory `<TMPDIR>/<prefix><pid>-<random>` that is removed when dropped, when kpath
/// is stopped by a signal, or — after kpath was killed — by the next kpath that starts.
pub struct OwnedDir {
    dir: Option<tempfile::TempDir>,
    /// Held open (and locked) for the directory's life.
    _owner: File,
    id: u64,
}

impl OwnedDir {
    pub fn new(prefix: &str) -> io::Result<OwnedDir> {
        let mut registry = registry();
        if registry.closing {
            return Err(stopping());
        }
        let dir = tempfile::Builder::new().prefix(&format!("{prefix}{}-", std::process::id())).tempdir()?;
        // Locked under another name first, then renamed: a sweeper never sees an owner file that is
        // not locked yet. Where the filesystem has no flock, there is no owner file, and the directory
        // is never swept by another process (better left behind than removed under a live kpath).
        let pending = dir.path().join(".kpath-owner.new");
        let owner = File::create(&pending)?;
        if owner.try_lock().is_ok() {
            std::fs::rename(&pending, dir.path().join(OWNER_FILE))?;
        } else {
            std::fs::remove_file(&pending)?;
        }
        registry.next += 1;
        let id = registry.next;
        registry.dirs.insert(id, dir.path().to_path_buf());
        Ok(OwnedDir { dir: Some(dir), _owner: owner, id })
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }
}

impl Drop for OwnedDir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
        registry().dirs.remove(&self.id);
    }
}

/// A spawned process that leads its own process group, registered so that a signal to kpath kills
/// the whole group. Kill and reap the child before dropping this.
pub struct Group {
    pid: u32,
    id: u64,
}

impl Group {
    /// SIGKILL to every process of the group: helm and anything it started.
    pub fn kill(&self) {
        kill_group(self.pid);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        registry().groups.remove(&self.id);
    }
}

#[cfg(unix)]
fn kill_group(pid: u32) {
    if let Ok(pgid) = libc::pid_t::try_from(pid) {
        // SAFETY: killpg has no memory effects; a group that is already gone gives ESRCH.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
}

#[cfg(not(unix))]
fn kill_group(_pid: u32) {}

/// Spawns `cmd` as the leader of a new process group (so that a terminal's Ctrl-C reaches kpath,
/// which then decides, and so that killing the group kills everything the child started) and
/// registers the group. Spawning holds the registry's lock, so a signal handler that runs meanwhile
/// either sees the group or stops the spawn.
pub fn spawn_group(cmd: &mut Command) -> io::Result<(Child, Group)> {
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(cmd, 0);
    let mut registry = registry();
    if registry.closing {
        return Err(stopping());
    }
    let child = cmd.spawn()?;
    registry.next += 1;
    let id = registry.next;
    let pid = child.id();
    registry.groups.insert(id, pid);
    Ok((child, Group { pid, id }))
}

/// Kills every registered process group and removes every registered directory; nothing new is
/// spawned or created afterwards. For the moment kpath is about to exit: the registry stays locked,
/// so a thread that would register or deregister now waits until the process ends.
pub fn stop_everything() {
    let mut registry = registry();
    registry.closing = true;
    for pid in registry.groups.values() {
        kill_group(*pid);
    }
    // Helm may still be dying (SIGKILL is delivered asynchronously) and writing into its directory;
    // a removal that races with it fails with "directory not empty", so it is tried again briefly.
    let deadline = Instant::now() + Duration::from_secs(2);
    for dir in registry.dirs.values() {
        while std::fs::remove_dir_all(dir).is_err() && dir.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    std::mem::forget(registry);
}

/// For `kpath check` and `kpath review`: on SIGINT, SIGTERM or SIGHUP, helm is killed and the
/// temporary directories are removed, then kpath dies of the signal as it would have without the
/// handler (so a shell sees 130 for Ctrl-C). The handler is a thread, not code in signal context
/// (signal-hook's iterator: <https://docs.rs/signal-hook/latest/signal_hook/iterator/>).
#[cfg(unix)]
pub fn exit_on_signals() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else { return };
    let _ = std::thread::Builder::new().name("kpath-signals".into()).spawn(move || {
        if let Some(signal) = signals.forever().next() {
            stop_everything();
            let _ = signal_hook::low_level::emulate_default_handler(signal);
            std::process::exit(128 + signal);
        }
    });
}

#[cfg(not(unix))]
pub fn exit_on_signals() {}

/// Removes the directories that kpath processes which no longer run left under the temporary
/// directory (killed with SIGKILL, or crashed): those whose owner file is no longer locked. Returns
/// how many were removed. Directories of another user, without an owner file, or that are symlinks
/// are left alone.
pub fn sweep_stale() -> usize {
    sweep_stale_in(&std::env::temp_dir())
}

fn sweep_stale_in(tmp: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(tmp) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !DIR_PREFIXES.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        // `file_type` does not follow symlinks: a planted link to elsewhere is never entered.
        let Ok(metadata) = entry.path().symlink_metadata() else { continue };
        if !metadata.is_dir() || !owned_by_us(&metadata) {
            continue;
        }
        let Ok(owner) = File::open(entry.path().join(OWNER_FILE)) else { continue };
        if owner.try_lock().is_ok() && std::fs::remove_dir_all(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(unix)]
fn owned_by_us(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid cannot fail and has no memory effects.
    metadata.uid() == unsafe { libc::geteuid() }
}

#[cfg(not(unix))]
fn owned_by_us(_metadata: &std::fs::Metadata) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owned_directory_is_removed_when_dropped_and_not_swept_while_alive() {
        let dir = OwnedDir::new("kpath-review-").unwrap();
        let path = dir.path().to_path_buf();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(&format!("kpath-review-{}-", std::process::id())), "{name}");
        assert!(path.join(OWNER_FILE).is_file());
        // Our own lock blocks a sweep from this process as it would from another one.
        sweep_stale_in(path.parent().unwrap());
        assert!(path.is_dir(), "a live directory was swept");
        drop(dir);
        assert!(!path.exists());
        assert!(!registry().dirs.values().any(|d| d == &path));
    }

    #[test]
    fn directories_of_dead_owners_are_swept_and_others_are_left() {
        let tmp = tempfile::tempdir().unwrap();
        let dead = tmp.path().join("kpath-helm-1-dead");
        std::fs::create_dir_all(dead.join("chart/templates")).unwrap();
        std::fs::write(dead.join(OWNER_FILE), "").unwrap();
        std::fs::write(dead.join("chart/templates/a.yaml"), "a: 1\n").unwrap();
        let foreign = tmp.path().join("kpath-helm-2-no-owner-file");
        std::fs::create_dir_all(&foreign).unwrap();
        let unrelated = tmp.path().join("other-dir");
        std::fs::create_dir_all(&unrelated).unwrap();
        std::fs::write(unrelated.join(OWNER_FILE), "").unwrap();
        let held = tmp.path().join("kpath-review-3-alive");
        std::fs::create_dir_all(&held).unwrap();
        let lock = File::create(held.join(OWNER_FILE)).unwrap();
        lock.lock().unwrap();

        assert_eq!(sweep_stale_in(tmp.path()), 1);
        assert!(!dead.exists());
        assert!(foreign.is_dir() && unrelated.is_dir() && held.is_dir());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_named_like_ours_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("elsewhere");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join(OWNER_FILE), "").unwrap();
        std::os::unix::fs::symlink(&target, tmp.path().join("kpath-helm-4-link")).unwrap();
        assert_eq!(sweep_stale_in(tmp.path()), 0);
        assert!(target.join(OWNER_FILE).is_file());
    }
}
