//! The App's steady review cost: one process (as `kpath serve` is) reviews push after push of one pull request,
//! each push a new head commit beside the same base, so the untouched part of the repository is the same trees
//! and blobs every time. Prints the first review's time and the median of the later ones. Run by
//! `scripts/bench --review-only`.
//!
//! Usage: `review_steady REPO BASE HEAD...` (each HEAD a commit of REPO, reviewed in order against BASE).

use std::path::PathBuf;
use std::time::Instant;

use kpath::review::run::{self, Options, Source};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [repo, base, heads @ ..] = args.as_slice() else {
        eprintln!("usage: review_steady REPO BASE HEAD...");
        std::process::exit(2);
    };
    if heads.is_empty() {
        eprintln!("review_steady: name at least one head commit");
        std::process::exit(2);
    }
    let options = Options { no_cache: true, ..Options::default() };
    let mut times = Vec::new();
    for head in heads {
        let source = Source::Git { repo: PathBuf::from(repo), base: base.clone(), head: head.clone() };
        let start = Instant::now();
        if let Err(e) = run::review(&source, &options) {
            eprintln!("review_steady: {head}: {e}");
            std::process::exit(1);
        }
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let first = times[0];
    let mut later = times[1..].to_vec();
    later.sort_by(f64::total_cmp);
    let median = later.get(later.len() / 2).copied().unwrap_or(first);
    println!("first {first:.2} ms  steady {median:.2} ms  ({} reviews)", times.len());
}
