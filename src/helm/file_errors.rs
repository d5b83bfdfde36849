//! Helm errors about one chart file (too large, or a values file that is not valid YAML), placed on
//! that file instead of `Chart.yaml`.
//!
//! Helm names the file in three shapes (Helm 3.17): `chart file "values.yaml" is larger than the maximum
//! file size 5242880` (base name only, from its chart loader), `cannot load values.yaml: error
//! converting YAML to JSON: yaml: line 2: …` (the chart's values), and `failed to parse ./prod.yaml: …`
//! (a `--values` file, the sandbox path already replaced by `.`).

use std::path::Path;

use super::RenderProblem;
use crate::yaml::Pos;

/// The chart file a Helm error names, with the line when Helm gives one; `None` when the message is not
/// about one file.
pub fn locate(message: &str, chart_dir: &Path) -> Option<RenderProblem> {
    if let Some(rest) = message.split("chart file \"").nth(1)
        && let Some((name, tail)) = rest.split_once('"')
        && tail.trim_start().starts_with("is larger than")
    {
        let limit = tail.split_whitespace().last().and_then(|n| n.parse::<u64>().ok());
        let file = find_large_file(chart_dir, name, limit.unwrap_or(0)).unwrap_or_else(|| name.to_string());
        let size = std::fs::metadata(chart_dir.join(&file)).map(|m| m.len()).ok();
        let detail = match (size, limit) {
            (Some(size), Some(limit)) => format!(
                "`{file}` is {} MiB; Helm refuses any chart file over {} MiB ({limit} bytes), so the chart does not \
                 render: split the file or move the data out of the chart",
                size >> 20,
                limit >> 20
            ),
            _ => format!("{message}: Helm refuses chart files this large, so the chart does not render"),
        };
        return Some(RenderProblem { file, pos: Pos { line: 1, col: 1 }, message: detail });
    }
    for marker in ["cannot load ", "failed to parse "] {
        let Some(rest) = message.split(marker).nth(1) else { continue };
        let Some((path, _)) = rest.split_once(": ") else { continue };
        let file = path.trim_start_matches("./").to_string();
        if file.is_empty() || file.contains("..") || !chart_dir.join(&file).is_file() {
            continue;
        }
        let line = rest
            .split("yaml: line ")
            .nth(1)
            .and_then(|l| l.split(':').next())
            .and_then(|l| l.trim().parse::<u32>().ok())
            .unwrap_or(1);
        return Some(RenderProblem { file, pos: Pos { line, col: 1 }, message: message.to_string() });
    }
    None
}

/// The chart-relative path of the file Helm named by its base name: the first (in path order) with that
/// name and over the limit. `.git` is not looked into.
fn find_large_file(chart_dir: &Path, name: &str, limit: u64) -> Option<String> {
    walkdir::WalkDir::new(chart_dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || e.file_name() != ".git")
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.file_name().to_string_lossy() == name)
        .find(|e| e.metadata().is_ok_and(|m| m.len() > limit))
        .and_then(|e| e.path().strip_prefix(chart_dir).ok().map(|p| p.to_string_lossy().replace('\\', "/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_over_helms_limit_is_named_with_its_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("files")).expect("mkdir");
        std::fs::write(dir.path().join("values.yaml"), "a: 1\n").expect("write");
        std::fs::write(dir.path().join("files/values.yaml"), vec![b'#'; 2048]).expect("write");
        let p = locate("chart file \"values.yaml\" is larger than the maximum file size 1024", dir.path())
            .expect("located");
        assert_eq!((p.file.as_str(), p.pos.line), ("files/values.yaml", 1));
        assert!(p.message.contains("`files/values.yaml`"), "{}", p.message);
    }

    #[test]
    fn values_files_that_do_not_parse_are_named_with_their_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("values.yaml"), "a: [\n").expect("write");
        std::fs::write(dir.path().join("prod.yaml"), "a: x\n  b: y\n").expect("write");
        let p = locate(
            "cannot load values.yaml: error converting YAML to JSON: yaml: line 2: did not find expected node content",
            dir.path(),
        )
        .expect("located");
        assert_eq!((p.file.as_str(), p.pos.line), ("values.yaml", 2));
        let p = locate(
            "failed to parse ./prod.yaml: error converting YAML to JSON: yaml: line 2: mapping values are not allowed",
            dir.path(),
        )
        .expect("located");
        assert_eq!((p.file.as_str(), p.pos.line), ("prod.yaml", 2));
        assert!(locate("failed to parse ../../etc/passwd: x", dir.path()).is_none());
        assert!(locate("something else entirely", dir.path()).is_none());
    }
}
