//! Human output in the style of rustc and ruff: `error[rule-id]: message`, `--> file:line:col`, the
//! source line with a caret, `= help:`. Colour only when writing to a terminal.
//!
//! Lines of findings from secret rules are shown with their values masked: a report must never print
//! a secret, even one that is already in the repository.

use std::collections::HashMap;
use std::fmt::Write;

use super::{Summary, plural};
use crate::engine::Report;
use crate::finding::{Finding, Severity};
use crate::rules;

#[derive(Clone, Copy)]
struct Palette {
    on: bool,
}

impl Palette {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.on { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
    fn severity(&self, s: Severity) -> String {
        let code = match s {
            Severity::Error => "1;31",
            Severity::Warning => "1;33",
            Severity::Notice => "1;36",
        };
        self.paint(code, s.as_str())
    }
}

/// Masks everything after the first `:` or `=` of a line (`password: hunter2` → `password: ****`).
pub fn mask_line(line: &str) -> String {
    match line.find([':', '=']) {
        Some(i) if line[i + 1..].trim().is_empty() => line.to_string(),
        Some(i) => format!("{} ****", &line[..=i]),
        None => {
            let indent = line.len() - line.trim_start().len();
            format!("{}****", &line[..indent])
        }
    }
}

pub fn render(report: &Report, colour: bool, show_suppressed: bool) -> String {
    let p = Palette { on: colour };
    let mut sources: HashMap<&str, Option<Vec<String>>> = HashMap::new();
    let mut out = String::new();
    for f in &report.findings {
        if !f.counts() && !show_suppressed {
            continue;
        }
        let lines = sources
            .entry(f.file.as_str())
            .or_insert_with(|| std::fs::read_to_string(&f.file).ok().map(|t| t.lines().map(str::to_string).collect()));
        write_finding(&mut out, f, lines.as_deref(), p);
    }
    let s = Summary::of(report);
    let mut counts = Vec::new();
    for (n, word) in [(s.errors, "error"), (s.warnings, "warning"), (s.notices, "notice")] {
        if n > 0 {
            counts.push(plural(n, word));
        }
    }
    let verdict = if counts.is_empty() { "no findings".to_string() } else { counts.join(", ") };
    let _ = write!(out, "{}: {verdict} in {}", p.paint("1", "kpath"), plural(s.files, "file"));
    if s.suppressed > 0 {
        let _ = write!(out, " ({} suppressed)", s.suppressed);
    }
    out.push('\n');
    for skip in &s.skipped {
        let _ = writeln!(out, "{}: skipped {}: {}", p.paint("1;33", "note"), skip.path, skip.reason);
    }
    out
}

fn write_finding(out: &mut String, f: &Finding, lines: Option<&[String]>, p: Palette) {
    let _ = writeln!(out, "{}{}: {}", p.severity(f.severity), p.paint("1", &format!("[{}]", f.rule)), p.paint("1", &f.message));
    let gutter = f.line.to_string().len();
    let pad = " ".repeat(gutter);
    let _ = writeln!(out, "{pad}{} {}:{}:{}", p.paint("1;34", "-->"), f.file, f.line, f.column);
    if let Some(line) = lines.and_then(|l| l.get(f.line.saturating_sub(1) as usize)) {
        let secret = rules::find(f.rule).is_some_and(|r| r.secret);
        let shown = if secret { mask_line(line) } else { line.clone() };
        let caret_at = shown.chars().take(f.column.saturating_sub(1) as usize).map(|c| if c == '\t' { '\t' } else { ' ' }).collect::<String>();
        let bar = p.paint("1;34", "|");
        let _ = writeln!(out, "{pad} {bar}");
        let _ = writeln!(out, "{} {bar} {shown}", p.paint("1;34", &f.line.to_string()));
        let _ = writeln!(out, "{pad} {bar} {caret_at}{}", p.paint("1;31", "^"));
    }
    if let Some(route) = &f.route
        && !route.0.is_empty()
    {
        let _ = writeln!(out, "{pad} {} at: {route}", p.paint("1;34", "="));
    }
    let _ = writeln!(out, "{pad} {} help: {}", p.paint("1;34", "="), f.help);
    if let Some(s) = &f.suppressed {
        let _ = writeln!(out, "{pad} {} suppressed ({}): {}", p.paint("1;34", "="), s.kind, s.reason);
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking() {
        assert_eq!(mask_line("    value: hunter2"), "    value: ****");
        assert_eq!(mask_line("  data:"), "  data:");
        assert_eq!(mask_line("ENV TOKEN=abc"), "ENV TOKEN= ****");
        assert_eq!(mask_line("   AKIAXXXX"), "   ****");
    }
}
