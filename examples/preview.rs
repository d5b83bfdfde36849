//! Writes what the GitHub App posts for the bundled demo pull request as HTML pages styled like GitHub
//! (`scripts/preview`): `cargo run --example preview -- OUT_DIR [GITHUB_MARKDOWN_CSS]`.
//!
//! The demo (`fixtures/demo/base` → `fixtures/demo/head`) is reviewed through the library as `kpath serve` would
//! review it (Helm and kubectl from `KPATH_HELM` / `KPATH_KUBECTL` or PATH), and each post is rendered with
//! `comrak`, which implements GitHub Flavored Markdown: the check run (title, summary, text), the review's inline
//! comments under their `file:line` with the source lines above, and the summary comment. The Markdown is styled
//! with GitHub's own stylesheet (`github-markdown-css`, installed by `scripts/preview`), or with a small built-in
//! one when it is not given.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use comrak::nodes::{NodeHtmlBlock, NodeValue};
use comrak::{Arena, Options, format_html, parse_document};
use kpath::app::worker::{self, Posted};
use kpath::review::plan::{InlineComment, ReviewPlan};
use kpath::review::run::{self, Source};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(out) = args.next().map(PathBuf::from) else {
        eprintln!("usage: preview OUT_DIR [GITHUB_MARKDOWN_CSS]");
        return ExitCode::from(2);
    };
    let css = args.next().map(PathBuf::from);
    match write_preview(&out, css.as_deref()) {
        Ok(index) => {
            println!("{}", index.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("preview: {error}");
            ExitCode::FAILURE
        }
    }
}

fn write_preview(out: &Path, css: Option<&Path>) -> Result<PathBuf, String> {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let head = demo.join("head");
    let source = Source::Dirs { base: demo.join("base"), head: head.clone() };
    let options = run::Options { no_cache: true, ..Default::default() };
    let plan = run::review(&source, &options).map_err(|e| format!("reviewing the demo: {e}"))?;
    let posted = worker::posted(&plan);

    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let stylesheet = match css {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        None => FALLBACK_MARKDOWN_CSS.to_string(),
    };
    write(&out.join("github-markdown.css"), &stylesheet)?;
    write(&out.join("preview.css"), PAGE_CSS)?;
    write(&out.join("check-run.html"), &check_run_page(&posted))?;
    write(&out.join("review.html"), &review_page(&posted, &head, &plan))?;
    write(&out.join("summary-comment.html"), &summary_page(&posted))?;
    let index = out.join("index.html");
    write(&index, &index_page(&posted))?;
    Ok(std::fs::canonicalize(&index).unwrap_or(index))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A page: GitHub's Markdown stylesheet, the page frame, and `body`.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n\
         <link rel=\"stylesheet\" href=\"github-markdown.css\">\n<link rel=\"stylesheet\" href=\"preview.css\">\n\
         </head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        escape(title)
    )
}

fn index_page(posted: &Posted) -> String {
    let mut body = String::from("<h1 class=\"page-title\">kpath on the demo pull request</h1>\n");
    let _ = writeln!(
        body,
        "<p class=\"lead\">What the GitHub App posts for <code>fixtures/demo/base</code> → <code>fixtures/demo/head</code>, \
         rendered as GitHub Flavored Markdown.</p>\n<ul class=\"pages\">\n\
         <li><a href=\"check-run.html\">The check run</a>: {} — {}</li>\n\
         <li><a href=\"review.html\">The review</a>: {} inline comment(s) on changed lines</li>\n\
         <li><a href=\"summary-comment.html\">The summary comment</a></li>\n</ul>",
        conclusion_badge(posted.conclusion),
        escape(&posted.title),
        posted.inline.len()
    );
    page("kpath preview", &body)
}

fn check_run_page(posted: &Posted) -> String {
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<div class=\"check-header\"><span class=\"check-name\">kpath</span> {}\n<h1>{}</h1></div>",
        conclusion_badge(posted.conclusion),
        escape(&posted.title)
    );
    body.push_str(&boxed("Summary", &markdown(&posted.summary, None)));
    if let Some(text) = &posted.text {
        body.push_str(&boxed("Details", &markdown(text, None)));
    }
    page("kpath — check run", &body)
}

fn summary_page(posted: &Posted) -> String {
    let header = "<strong>kpath</strong> <span class=\"bot\">bot</span> commented";
    page("kpath — summary comment", &boxed(header, &markdown(&posted.comment, None)))
}

fn review_page(posted: &Posted, head: &Path, plan: &ReviewPlan) -> String {
    let mut body = format!(
        "<h1 class=\"page-title\">Review: {} inline comment(s)</h1>\n<p class=\"lead\">kpath: {} new finding(s) on \
         changed lines. The kpath check run has the full summary.</p>\n",
        posted.inline.len(),
        posted.inline.len()
    );
    for comment in &posted.inline {
        body.push_str(&inline_comment(comment, head, plan));
    }
    page("kpath — review", &body)
}

/// Lines of the head file shown above a comment, as GitHub's diff view shows them.
const CONTEXT_LINES: u32 = 3;

/// One inline comment as GitHub shows it in "Files changed": the file, the lines up to the commented one, the
/// comment below them. Like every output of kpath, the source lines lose the review's secret values.
fn inline_comment(comment: &InlineComment, head: &Path, plan: &ReviewPlan) -> String {
    let lines: Vec<String> = std::fs::read_to_string(head.join(&comment.path))
        .map(|text| text.lines().map(|line| plan.redact(line).into_owned()).collect())
        .unwrap_or_default();
    // A multi-line comment spans `start_line..=line`: the lines its suggestion replaces.
    let first = comment.start_line.unwrap_or(comment.line);
    let spanned: Vec<&str> =
        (first..=comment.line).filter_map(|n| lines.get(n as usize - 1).map(String::as_str)).collect();
    let commented = (!spanned.is_empty()).then(|| spanned.join("\n"));
    let place = if first < comment.line { format!("{first}-{}", comment.line) } else { comment.line.to_string() };
    let mut out = format!(
        "<div class=\"box file\">\n<div class=\"box-header file-name\">{}:{place}</div>\n<table class=\"source\">\n",
        escape(&comment.path),
    );
    for n in first.min(comment.line.saturating_sub(CONTEXT_LINES - 1)).max(1)..=comment.line {
        let text = lines.get(n as usize - 1).map_or("", String::as_str);
        let class = if n >= first { " class=\"commented\"" } else { "" };
        let _ = writeln!(out, "<tr{class}><td class=\"num\">{n}</td><td class=\"code\">{}</td></tr>", escape(text));
    }
    out.push_str("</table>\n<div class=\"thread\">\n");
    let header = "<strong>kpath</strong> <span class=\"bot\">bot</span> commented";
    out.push_str(&boxed(header, &markdown(&comment.body, commented.as_deref())));
    out.push_str("</div>\n</div>\n");
    out
}

fn boxed(header: &str, html: &str) -> String {
    format!(
        "<div class=\"box\">\n<div class=\"box-header\">{header}</div>\n<div class=\"box-body markdown-body\">\n{html}\
         </div>\n</div>\n"
    )
}

fn conclusion_badge(conclusion: &str) -> String {
    let (class, text) = match conclusion {
        "failure" => ("failure", "✕ Failure"),
        "success" => ("success", "✓ Success"),
        _ => ("neutral", "Neutral"),
    };
    format!("<span class=\"badge {class}\">{text}</span>")
}

/// Markdown as GitHub renders it: GFM's extensions, the raw HTML kpath writes (`<details>`, comments), and
/// `suggestion` blocks shown as GitHub shows them — the commented line (`original`) replaced by the suggestion.
fn markdown(text: &str, original: Option<&str>) -> String {
    let mut options = Options::default();
    options.extension.table = true;
    options.extension.strikethrough = true;
    options.extension.autolink = true;
    options.extension.tasklist = true;
    options.render.r#unsafe = true;
    options.render.github_pre_lang = true;
    let arena = Arena::new();
    let root = parse_document(&arena, text, &options);
    for node in root.descendants() {
        let mut data = node.data.borrow_mut();
        let NodeValue::CodeBlock(code) = &data.value else { continue };
        if code.info.trim() != "suggestion" {
            continue;
        }
        let mut html = String::from(
            "<div class=\"suggestion\"><div class=\"suggestion-header\">Suggested change</div>\
             <table class=\"source\">\n",
        );
        if let Some(line) = original {
            let _ = writeln!(
                html,
                "<tr class=\"del\"><td class=\"sign\">-</td><td class=\"code\">{}</td></tr>",
                escape(line)
            );
        }
        for line in code.literal.lines() {
            let _ = writeln!(
                html,
                "<tr class=\"add\"><td class=\"sign\">+</td><td class=\"code\">{}</td></tr>",
                escape(line)
            );
        }
        html.push_str("</table></div>\n");
        data.value = NodeValue::HtmlBlock(NodeHtmlBlock { block_type: 6, literal: html });
    }
    let mut html = String::new();
    if format_html(root, &options, &mut html).is_err() {
        return format!("<pre>{}</pre>", escape(text));
    }
    html
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// The frame around the Markdown: GitHub's boxes, headers and diff lines (colours from GitHub's light theme).
const PAGE_CSS: &str = r#"body { margin: 0; background: #ffffff; color: #1f2328;
  font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; font-size: 14px; }
main { max-width: 920px; margin: 24px auto; padding: 0 16px; }
.page-title { font-size: 24px; font-weight: 400; margin: 0 0 8px; }
.lead { color: #59636e; }
.pages li { margin: 6px 0; }
a { color: #0969da; }
.box { border: 1px solid #d1d9e0; border-radius: 6px; margin: 0 0 16px; background: #ffffff; overflow: hidden; }
.box-header { background: #f6f8fa; border-bottom: 1px solid #d1d9e0; padding: 8px 16px; color: #59636e; }
.box-header strong { color: #1f2328; }
.box-body { padding: 16px; }
.bot { border: 1px solid #d1d9e0; border-radius: 2em; padding: 0 6px; font-size: 12px; color: #59636e; }
.file-name { font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, monospace; font-size: 12px; color: #1f2328; }
table.source { border-collapse: collapse; width: 100%; margin: 0;
  font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, monospace; font-size: 12px; }
table.source td { padding: 0 10px; line-height: 20px; }
td.num, td.sign { width: 1%; color: #59636e; text-align: right; white-space: nowrap; }
td.code { white-space: pre; }
tr.commented td { background: #e6ffec; }
.thread { padding: 12px; border-top: 1px solid #d1d9e0; background: #f6f8fa; }
.thread .box { margin: 0; }
.suggestion { border: 1px solid #d1d9e0; border-radius: 6px; margin: 0 0 16px; overflow: hidden; }
.suggestion-header { background: #f6f8fa; border-bottom: 1px solid #d1d9e0; padding: 6px 10px; font-size: 12px; color: #59636e; }
tr.del td { background: #ffebe9; }
tr.add td { background: #e6ffec; }
.check-header { margin: 0 0 16px; }
.check-header h1 { font-size: 24px; font-weight: 400; margin: 8px 0 0; }
.check-name { font-weight: 600; margin-right: 8px; }
.badge { display: inline-block; border-radius: 2em; padding: 2px 10px; font-size: 12px; font-weight: 600; color: #ffffff; }
.badge.failure { background: #cf222e; }
.badge.success { background: #1a7f37; }
.badge.neutral { background: #59636e; }
"#;

/// Used when GitHub's stylesheet is not available (no npm): the Markdown elements kpath posts, in GitHub's
/// light colours.
const FALLBACK_MARKDOWN_CSS: &str = r#".markdown-body { line-height: 1.5; word-wrap: break-word; }
.markdown-body > *:first-child { margin-top: 0 !important; }
.markdown-body p, .markdown-body ul, .markdown-body ol, .markdown-body table, .markdown-body pre,
.markdown-body details, .markdown-body blockquote { margin: 0 0 16px; }
.markdown-body h1, .markdown-body h2, .markdown-body h3, .markdown-body h4 { margin: 24px 0 16px; font-weight: 600; line-height: 1.25; }
.markdown-body h2 { font-size: 1.5em; border-bottom: 1px solid #d1d9e0; padding-bottom: .3em; }
.markdown-body h3 { font-size: 1.25em; }
.markdown-body h4 { font-size: 1em; }
.markdown-body code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 85%;
  background: rgba(129, 139, 152, .12); border-radius: 6px; padding: .2em .4em; }
.markdown-body pre { background: #f6f8fa; border-radius: 6px; padding: 16px; overflow: auto; font-size: 85%; line-height: 1.45; }
.markdown-body pre code { background: transparent; padding: 0; font-size: 100%; }
.markdown-body table { border-collapse: collapse; }
.markdown-body th, .markdown-body td { border: 1px solid #d1d9e0; padding: 6px 13px; }
.markdown-body th { font-weight: 600; background: #f6f8fa; }
.markdown-body summary { cursor: pointer; }
.markdown-body blockquote { color: #59636e; border-left: .25em solid #d1d9e0; padding: 0 1em; }
"#;
