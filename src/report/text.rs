//! Human output, grouped by object, in the style of rustc and ruff: `error[rule-id]: message`, `--> file:line:col`, the
//! source line with a caret, `= help:`. Colour only when writing to a terminal.
//!
//! A source line is shown with its values masked when a secret rule points at it (whatever the rule of
//! the finding shown: a flow mapping holds many fields on one line), and every secret value the run
//! found is redacted from it before it is cut to a window: a report must never print a secret, even one
//! that is already in the repository.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::path::Path;

use super::{Summary, plural};
use crate::engine::Report;
use crate::finding::{Finding, Severity};
use crate::redact::SecretSet;
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
        self.paint(severity_code(s), s.as_str())
    }
}

fn severity_code(s: Severity) -> &'static str {
    match s {
        Severity::Error => "1;31",
        Severity::Warning => "1;33",
        Severity::Notice => "1;36",
    }
}

/// Width the help text is wrapped at, at word boundaries.
const WRAP: usize = 100;

/// `text` cut into lines of at most `width` characters at spaces (a longer word stays whole on its line).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
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
    // Every line a secret rule points at: any finding quoting it is masked (short values that cannot be
    // searched for everywhere are hidden here, at their own place).
    let secret_lines: HashSet<(&str, u32)> = report
        .findings
        .iter()
        .filter(|f| rules::find(f.rule).is_some_and(|r| r.secret))
        .flat_map(|f| {
            std::iter::once((f.file.as_str(), f.line)).chain(f.locations.iter().map(|l| (l.file.as_str(), l.line)))
        })
        .collect();
    let cx = Context { secret_lines: &secret_lines, secrets: &report.secrets, palette: p };
    // Grouped by object (by file for findings about no object), groups in the order of their first finding:
    // a reader fixes one object at a time.
    let mut groups: Vec<(String, Vec<&Finding>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for f in report.findings.iter().filter(|f| f.counts() || show_suppressed) {
        let heading = match &f.object {
            Some(object) => {
                let envs =
                    if f.environments.is_empty() { String::new() } else { format!(" [{}]", f.environments.join(", ")) };
                format!("{object}{envs}")
            }
            None => f.file.clone(),
        };
        let i = *index.entry(heading.clone()).or_insert_with(|| {
            groups.push((heading, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(f);
    }
    for (heading, findings) in &groups {
        let _ = writeln!(out, "{} {}\n", p.paint("1;34", "==>"), p.paint("1", &cx.secrets.redact(heading)));
        for f in findings {
            let lines = sources.entry(f.file.as_str()).or_insert_with(|| {
                // A file too large to check is named, not quoted: it is never read whole.
                let bytes = crate::loader::read_bounded(Path::new(&f.file), crate::engine::MAX_FILE_BYTES).ok()?;
                Some(String::from_utf8_lossy(&bytes).lines().map(str::to_string).collect())
            });
            write_finding(&mut out, f, lines.as_deref(), &cx);
        }
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

/// What every finding of one report is written with.
struct Context<'a> {
    secret_lines: &'a HashSet<(&'a str, u32)>,
    secrets: &'a SecretSet,
    palette: Palette,
}

fn write_finding(out: &mut String, f: &Finding, lines: Option<&[String]>, cx: &Context<'_>) {
    let p = cx.palette;
    let _ = writeln!(
        out,
        "{}{}: {}",
        p.severity(f.severity),
        p.paint("1", &format!("[{}]", f.rule)),
        p.paint("1", &f.message)
    );
    let gutter = f.line.to_string().len();
    let pad = " ".repeat(gutter);
    let _ = writeln!(out, "{pad}{} {}:{}:{}", p.paint("1;34", "-->"), f.file, f.line, f.column);
    if let Some(line) = lines.and_then(|l| l.get(f.line.saturating_sub(1) as usize)) {
        // Any line of a Secret object may hold a value, whatever rule points at it.
        let secret = rules::find(f.rule).is_some_and(|r| r.secret)
            || f.object.as_ref().is_some_and(|o| o.kind == "Secret")
            || cx.secret_lines.contains(&(f.file.as_str(), f.line));
        // A finding on an env var's `name:` line quotes only the name, which is never the secret.
        let on_name = f.route.as_ref().and_then(|r| r.0.last()) == Some(&crate::yaml::Segment::Key("name".into()))
            && line.trim_start().trim_start_matches("- ").starts_with("name:");
        let secret = secret && !on_name;
        let shown = if secret { mask_line(line) } else { line.clone() };
        // Redacted before the window cuts it, so a cut never leaves part of a secret.
        let shown = cx.secrets.redact(&shown);
        let (shown, column) = window(&shown, f.column.saturating_sub(1) as usize);
        let caret_at = shown.chars().take(column).map(|c| if c == '\t' { '\t' } else { ' ' }).collect::<String>();
        // Carets under the whole span: from the column to the end of what the line says there.
        let span = shown.chars().skip(column).collect::<String>().trim_end().chars().count().max(1);
        let bar = p.paint("1;34", "|");
        let _ = writeln!(out, "{pad} {bar}");
        let _ = writeln!(out, "{} {bar} {shown}", p.paint("1;34", &f.line.to_string()));
        let _ = writeln!(out, "{pad} {bar} {caret_at}{}", p.paint(severity_code(f.severity), &"^".repeat(span)));
    }
    if let Some(route) = &f.route
        && !route.0.is_empty()
    {
        let _ = writeln!(out, "{pad} {} at: {route}", p.paint("1;34", "="));
    }
    let help = wrap(&f.help, WRAP);
    let _ = writeln!(out, "{pad} {} help: {}", p.paint("1;34", "="), help[0]);
    for more in &help[1..] {
        let _ = writeln!(out, "{pad}         {more}");
    }
    if let Some(s) = &f.suppressed {
        let _ = writeln!(out, "{pad} {} suppressed ({}): {}", p.paint("1;34", "="), s.kind, s.reason);
    }
    out.push('\n');
}

/// Longest source line shown whole; longer lines are cut to a window around the column.
const MAX_SHOWN: usize = 120;

/// Cuts a long line to a window around `column` (0-based, in characters), returning the new column.
fn window(line: &str, column: usize) -> (String, usize) {
    let count = line.chars().count();
    if count <= MAX_SHOWN {
        return (line.to_string(), column);
    }
    let start = column.saturating_sub(MAX_SHOWN / 2).min(count.saturating_sub(MAX_SHOWN));
    let mut shown: String = line.chars().skip(start).take(MAX_SHOWN).collect();
    let mut column = column - start;
    if start > 0 {
        shown.insert(0, '…');
        column += 1;
    }
    if start + MAX_SHOWN < count {
        shown.push('…');
    }
    (shown, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_windowed() {
        let line = "x".repeat(1000);
        let (shown, col) = window(&line, 500);
        assert_eq!(shown.chars().count(), MAX_SHOWN + 2);
        assert_eq!(col, MAX_SHOWN / 2 + 1);
        assert_eq!(window("short", 2), ("short".to_string(), 2));
        let (shown, col) = window(&line, 3);
        assert!(shown.ends_with('…') && !shown.starts_with('…'));
        assert_eq!(col, 3);
    }

    #[test]
    fn masking() {
        assert_eq!(mask_line("    value: hunter2"), "    value: ****");
        assert_eq!(mask_line("  data:"), "  data:");
        assert_eq!(mask_line("ENV TOKEN=abc"), "ENV TOKEN= ****");
        assert_eq!(mask_line("   AKIAXXXX"), "   ****");
    }
}
