//! GitHub Actions workflow commands (`::error file=…,line=…::message`), one per active finding.
//! See <https://docs.github.com/actions/reference/workflow-commands-for-github-actions>.

use std::fmt::Write;

use super::Summary;
use crate::engine::Report;
use crate::finding::Severity;

fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for f in report.findings.iter().filter(|f| f.counts()) {
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
        };
        let _ = writeln!(
            out,
            "::{level} file={},line={},col={},title={}::{}",
            escape_property(&f.file),
            f.line,
            f.column,
            escape_property(&format!("kpath {}", f.rule)),
            escape_data(&format!("{}\n{}", f.message, f.help)),
        );
    }
    let s = Summary::of(report);
    let _ = writeln!(
        out,
        "kpath: {} errors, {} warnings, {} notices ({} suppressed)",
        s.errors, s.warnings, s.notices, s.suppressed
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(escape_property("a,b:c%\n"), "a%2Cb%3Ac%25%0A");
        assert_eq!(escape_data("a,b:c"), "a,b:c");
    }
}
