//! Benchmark baseline: parse every YAML file under DIR with saphyr-parser and nothing else (all
//! cores), so `scripts/bench` can compare kpath's whole check against bare parsing of the same bytes.

use rayon::prelude::*;

fn main() {
    let dirs: Vec<String> = std::env::args().skip(1).collect();
    let files: Vec<std::path::PathBuf> = dirs
        .iter()
        .flat_map(|d| walkdir::WalkDir::new(d).into_iter().filter_map(Result::ok))
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    let events: usize = files
        .par_iter()
        .map(|p| {
            let Ok(text) = std::fs::read_to_string(p) else { return 0 };
            saphyr_parser::Parser::new_from_str(&text).take_while(Result::is_ok).count()
        })
        .sum();
    println!("{} files, {events} events", files.len());
}
