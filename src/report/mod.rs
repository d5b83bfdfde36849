//! Report formats for `kpath check`: `text` (rustc/ruff style), `concise` (one line per finding), `json`
//! (documented in README),
//! `sarif` (2.1.0, for GitHub code scanning) and `github` (workflow annotation commands).
//!
//! Reporters turn positions into text; they never change what was found. [`write`] is the one way out for
//! every format (and [`render`] its in-memory form): it removes every secret value the run found from the
//! finished text.

pub mod concise;
pub mod github;
pub mod json;
pub mod sarif;
pub mod text;

use serde::Serialize;

use crate::engine::Report;
use crate::finding::{Finding, Severity};
use crate::loader::Skipped;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Each finding with its source line and help, grouped by file.
    Text,
    /// One line per finding: `path:line:col: severity[rule] message`.
    Concise,
    /// Every finding with its locations (documented in README).
    Json,
    Sarif,
    Github,
}

/// The report in `format`, with every secret value of the run redacted (see `crate::redact`). The only
/// exit of `kpath check`'s output.
pub fn render(report: &Report, format: Format, colour: bool, show_suppressed: bool) -> String {
    let text = match format {
        Format::Text => text::render(report, colour, show_suppressed),
        Format::Concise => concise::render(report),
        Format::Json => json::render(report),
        Format::Sarif => sarif::render(report),
        Format::Github => github::render(report),
    };
    match report.secrets.redact(&text) {
        std::borrow::Cow::Owned(clean) => clean,
        std::borrow::Cow::Borrowed(_) => text,
    }
}

/// Writes the report in `format` to `out`, as [`render`] gives it. JSON is streamed, redacted line by line (a
/// JSON string never spans lines, so each of its secret forms is whole on one line): a report of hundreds of
/// thousands of findings is not held as text too.
pub fn write(
    report: &Report,
    format: Format,
    colour: bool,
    show_suppressed: bool,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    if format != Format::Json {
        return out.write_all(render(report, format, colour, show_suppressed).as_bytes());
    }
    let mut lines = report.secrets.line_writer(out);
    json::write(report, &mut lines)?;
    std::io::Write::flush(&mut lines)
}

/// Counts shown at the end of every report.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub files: usize,
    pub documents: usize,
    pub objects: usize,
    pub errors: usize,
    pub warnings: usize,
    pub notices: usize,
    pub suppressed: usize,
    pub skipped: Vec<Skipped>,
}

impl Summary {
    pub fn of(report: &Report) -> Summary {
        let mut s = Summary {
            files: report.stats.files,
            documents: report.stats.documents,
            objects: report.stats.objects,
            skipped: report.skipped.clone(),
            ..Summary::default()
        };
        for f in &report.findings {
            if !f.counts() {
                s.suppressed += 1;
                continue;
            }
            match f.severity {
                Severity::Error => s.errors += 1,
                Severity::Warning => s.warnings += 1,
                Severity::Notice => s.notices += 1,
            }
        }
        s
    }
}

/// Does the report fail at this threshold? Suppressed findings never fail it.
pub fn fails(findings: &[Finding], fail_on: Severity) -> bool {
    findings.iter().any(|f| f.counts() && f.severity >= fail_on)
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") }
}
