//! Benchmark: heap bytes the cross-object facts keep per object, `facts_memory DIR` (`scripts/bench`).
//!
//! Reads every YAML file under DIR as a check keeps it after its tree is gone (the objects' facts, every fact
//! kind any rule reads), joins them into the index the cross-object rules query, and prints the live heap
//! that remains, counted by a global allocator: what the facts cost, apart from parsing and findings.

#[path = "support/yaml_files.rs"]
mod yaml_files;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use kpath::engine::ContextFile;
use kpath::model::facts::{FactSet, Facts};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is kept beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() -> std::process::ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: facts_memory DIR");
        return std::process::ExitCode::from(2);
    };
    let files = yaml_files::under(&dir);
    let before = LIVE.load(Ordering::Relaxed);
    let mut all = FactSet::default();
    for path in &files {
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        let name = path.to_string_lossy();
        all.extend(ContextFile::read(&name, &text).facts);
    }
    // As a check does before its cross-object rules run.
    all.shrink_to_fit();
    let objects = all.len().max(1);
    let read = LIVE.load(Ordering::Relaxed) - before;
    let facts = Facts::new(all);
    let indexed = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "{} objects: facts {:.0} bytes/object, with the name index {:.0} bytes/object ({:.1} MiB)",
        facts.objects.len(),
        read as f64 / objects as f64,
        indexed as f64 / objects as f64,
        indexed as f64 / 1_048_576.0
    );
    std::process::ExitCode::SUCCESS
}
