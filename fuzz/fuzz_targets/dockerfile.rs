//! Fuzzes the Dockerfile parser (`dockerfile::parse`) and, through the engine, every Dockerfile rule and
//! the reports on the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let df = kpath::dockerfile::parse(text);
        let lines = text.lines().count() as u32;
        for ins in &df.instructions {
            assert!(ins.line >= 1 && ins.line <= ins.end_line.max(ins.line), "{ins:?}");
            assert!(ins.end_line <= lines + 1, "{ins:?} ends past line {lines}");
            let _ = ins.shell_text();
        }
        let _ = df.final_stage();
        let _ = df.final_instructions().count();
    }
    kpath_fuzz::check_file("Dockerfile", data);
});
