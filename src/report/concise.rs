//! `concise`: one line per finding, `path:line:col: severity[rule] message (environments)`, the form ruff and
//! kube-linter print, for CI logs and editors' problem matchers; then one summary line.

use std::fmt::Write;

use super::Summary;
use crate::engine::Report;

/// One line per active finding, sorted as the report is, and the counts.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for f in report.findings.iter().filter(|f| f.counts()) {
        // A message is one line here whatever it holds: newlines would start a line a matcher misreads.
        let message = f.message.replace(['\r', '\n'], " ");
        let environments =
            if f.environments.is_empty() { String::new() } else { format!(" ({})", f.environments.join(", ")) };
        let _ = writeln!(out, "{}:{}:{}: {}[{}] {message}{environments}", f.file, f.line, f.column, f.severity, f.rule);
    }
    let s = Summary::of(report);
    let _ = writeln!(
        out,
        "Found {} errors, {} warnings, {} notices ({} suppressed).",
        s.errors, s.warnings, s.notices, s.suppressed
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Finding, Severity};

    #[test]
    fn one_line_per_finding_with_its_place_severity_and_rule() {
        let mut report = Report::default();
        report.findings.push(Finding {
            rule: "image-latest",
            severity: Severity::Warning,
            message: "uses `nginx:latest`\nagain".into(),
            file: "apps/web.yaml".into(),
            line: 12,
            column: 7,
            route: None,
            object: None,
            help: "".into(),
            suppressed: None,
            locations: Vec::new(),
            environments: vec!["prod".into(), "staging".into()],
            document: None,
            origin: None,
            part: None,
        });
        let text = render(&report);
        let first = text.lines().next().unwrap_or_default();
        assert_eq!(first, "apps/web.yaml:12:7: warning[image-latest] uses `nginx:latest` again (prod, staging)");
        assert_eq!(text.lines().count(), 2);
    }
}
