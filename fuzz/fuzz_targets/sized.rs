//! Size-aware fuzzing: a few fuzzed numbers (`kpath_fuzz::Shape`) become large inputs (many documents or
//! stages, deep nesting, long ARG/ENV chains, repeated keys, huge comments) for the YAML loader, the
//! Dockerfile parser, the IAM reader and the command parser. Run with `-timeout=10 -rss_limit_mb=1024`
//! (scripts/fuzz does): quadratic or exponential cost then shows up as a timeout or out-of-memory crash.
//! `scripts/fuzz repro sized ARTIFACT` prints the shape of a crashing input (`KPATH_FUZZ_SHOW=1`).
#![no_main]

use kpath_fuzz::{Generated, Shape};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|shape: Shape| {
    if std::env::var_os("KPATH_FUZZ_SHOW").is_some() {
        eprintln!("{shape:#?}");
    }
    match shape.generate() {
        Generated::File { name, text } => {
            kpath_fuzz::check_file(name, text.as_bytes());
        }
        Generated::Comment(body) => kpath_fuzz::run_commands(&body),
    }
});
