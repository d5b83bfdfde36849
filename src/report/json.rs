//! The JSON report: `{"findings": [...], "summary": {...}}`, documented in README.md.

use serde::Serialize;

use super::Summary;
use crate::engine::Report;
use crate::finding::Finding;

#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    findings: &'a [Finding],
    summary: Summary,
}

/// Writes the report as pretty JSON, one string per line, with a final newline.
pub fn write(report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let doc = JsonReport { version: 1, findings: &report.findings, summary: Summary::of(report) };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    serde_json::to_writer_pretty(&mut out, &doc)?;
    std::io::Write::write_all(&mut out, b"\n")?;
    std::io::Write::flush(&mut out)
}

pub fn render(report: &Report) -> String {
    let out = JsonReport { version: 1, findings: &report.findings, summary: Summary::of(report) };
    serde_json::to_string_pretty(&out).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")) + "\n"
}
