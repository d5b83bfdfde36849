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

pub fn render(report: &Report) -> String {
    let out = JsonReport { version: 1, findings: &report.findings, summary: Summary::of(report) };
    serde_json::to_string_pretty(&out).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")) + "\n"
}
