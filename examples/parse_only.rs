//! Benchmark baselines: parse every YAML file under DIR and do nothing else (all cores), so
//! `scripts/bench` can compare kpath's whole check against bare parsing of the same bytes.
//!
//! `parse_only events DIR`: saphyr-parser's event stream, counted (the floor: no tree at all).
//! `parse_only tree DIR`: saphyr's own loader into `MarkedYaml` (a tree with spans, as any consumer needs).

#[path = "support/yaml_files.rs"]
mod yaml_files;

use rayon::prelude::*;
use saphyr::{LoadableYamlNode, MarkedYaml};

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(mode), Some(dir)) = (args.next(), args.next()) else {
        eprintln!("usage: parse_only events|tree DIR");
        return std::process::ExitCode::from(2);
    };
    let files = yaml_files::under(&dir);
    let count: usize = files
        .par_iter()
        .map(|p| {
            let Ok(text) = std::fs::read_to_string(p) else { return 0 };
            if mode == "tree" {
                MarkedYaml::load_from_str(&text).map(|docs| docs.len()).unwrap_or(0)
            } else {
                saphyr_parser::Parser::new_from_str(&text).take_while(Result::is_ok).count()
            }
        })
        .sum();
    println!("{} files, {count} {}", files.len(), if mode == "tree" { "documents" } else { "events" });
    std::process::ExitCode::SUCCESS
}
