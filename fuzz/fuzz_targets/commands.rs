//! Fuzzes the `/kpath` command parser (`app::commands::parse`) on any comment body, with every reply.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = std::str::from_utf8(data) {
        kpath_fuzz::run_commands(body);
    }
});
