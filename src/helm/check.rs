//! Checking a Helm chart: render each unit, run the rules on the rendered objects, and remember where
//! each rendered document came from so findings can be placed on the values and template lines a
//! person edits.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::sourcemap::{self, LocationKind, SourceLocation, Template, ValuesFile};
use super::{Helm, Limits, RenderUnit};
use crate::config::Config;
use crate::finding::{Finding, Location};
use crate::yaml::Route;

/// Where a rendered template's documents came from: enough to map a route back to source lines.
#[derive(Debug, Clone)]
pub struct RenderedSource {
    /// The template as reports show it (`charts/shop/templates/deployment.yaml`).
    pub template_display: String,
    pub template_text: Arc<str>,
    /// Values files that reach this template, increasing precedence: (display path, text, prefix).
    pub values: Arc<Vec<(String, String, Vec<String>)>>,
    /// Their trees, parsed once when a finding first needs them and shared by every template that
    /// reaches the same values files.
    pub parsed_values: Arc<std::sync::OnceLock<Vec<Option<crate::yaml::Node>>>>,
    pub environment: Option<String>,
}

/// Values files that reach a template, in increasing precedence. For a subchart template
/// (`charts/redis/templates/…`) the subchart's own `values.yaml` comes first, then the parent's files
/// with the subchart's name as prefix.
pub fn values_for(unit: &RenderUnit, template: &str) -> Vec<(String, String, Vec<String>)> {
    // charts/a/charts/b/templates/x.yaml → subchart chain [a, b].
    let mut chain: Vec<&str> = Vec::new();
    let mut rest = template;
    while let Some(after) = rest.strip_prefix("charts/") {
        let Some((name, tail)) = after.split_once('/') else { break };
        chain.push(name);
        rest = tail;
    }
    let mut out = Vec::new();
    let mut add = |rel: String, prefix: Vec<String>| {
        if let Some(text) = super::read_chart_text(&unit.chart_dir.join(&rel)) {
            out.push((format!("{}/{rel}", unit.chart_display), text, prefix));
        }
    };
    // Innermost chart first (lowest precedence): its own values.yaml, no prefix. Each enclosing
    // chart's values.yaml reaches it under the names of the charts below that one.
    for depth in (1..=chain.len()).rev() {
        let dir: String = chain[..depth].iter().map(|c| format!("charts/{c}/")).collect();
        add(format!("{dir}values.yaml"), chain[depth..].iter().map(|c| c.to_string()).collect());
    }
    // The chart's values.yaml, then the release's and environment's files: under the whole chain.
    let full: Vec<String> = chain.iter().map(|c| c.to_string()).collect();
    add("values.yaml".to_string(), full.clone());
    for rel in &unit.values {
        add(rel.clone(), full.clone());
    }
    out
}

/// Places a finding on a rendered object: values line, template line, then the rendered position.
pub fn place(finding: &mut Finding, source: &RenderedSource) {
    let rendered =
        Location { file: finding.file.clone(), line: finding.line, column: finding.column, kind: "rendered" };
    let mut locations: Vec<Location> = Vec::new();
    if let Some(route) = &finding.route {
        let values: Vec<ValuesFile<'_>> = source
            .values
            .iter()
            .map(|(path, text, prefix)| ValuesFile { path, text, prefix: prefix.clone() })
            .collect();
        let template = Template { path: &source.template_display, text: &source.template_text };
        for SourceLocation { file, line, column, kind } in
            sourcemap::map_route_parsed(&template, &values, &source.parsed_values, finding.document.unwrap_or(0), route)
        {
            let kind = match kind {
                LocationKind::Values => "values",
                LocationKind::Template => "template",
            };
            locations.push(Location { file, line, column, kind });
        }
    }
    if !locations.iter().any(|l| l.kind == "template") {
        // No key matched: the template file itself is still where the object comes from.
        locations.push(Location { file: source.template_display.clone(), line: 1, column: 1, kind: "template" });
    }
    locations.push(rendered);
    let first = &locations[0];
    finding.origin = Some(std::mem::replace(&mut finding.file, first.file.clone()));
    finding.line = first.line;
    finding.column = first.column;
    finding.locations = locations;
    if let Some(env) = &source.environment {
        finding.environments = vec![env.clone()];
    }
}

/// Merges findings that several environments produced identically into one listing them all.
pub fn merge_environments(findings: Vec<Finding>, order: &[String]) -> Vec<Finding> {
    let mut merged: Vec<Finding> = Vec::with_capacity(findings.len());
    let mut index: HashMap<String, usize> = HashMap::new();
    for finding in findings {
        if finding.environments.is_empty() {
            merged.push(finding);
            continue;
        }
        let key = format!(
            "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{:?}\u{0}{:?}",
            finding.rule,
            finding.file,
            finding.line,
            finding.column,
            finding.message,
            finding.route.as_ref().map(Route::to_string),
            finding.object
        );
        match index.get(&key) {
            Some(&i) => {
                let existing = &mut merged[i];
                for env in &finding.environments {
                    if !existing.environments.contains(env) {
                        existing.environments.push(env.clone());
                    }
                }
                for location in finding.locations.into_iter().filter(|l| l.kind == "rendered") {
                    if !existing.locations.contains(&location) {
                        existing.locations.push(location);
                    }
                }
            }
            None => {
                index.insert(key, merged.len());
                merged.push(finding);
            }
        }
    }
    for f in &mut merged {
        f.environments.sort_by_key(|e| order.iter().position(|o| o == e).unwrap_or(usize::MAX));
    }
    merged
}

/// Environment names in the order `.kpath.yml` declares them.
pub fn environment_order(config: &Config) -> Vec<String> {
    let mut order = Vec::new();
    for r in &config.helm.releases {
        for e in &r.environments {
            if !order.contains(&e.name) {
                order.push(e.name.clone());
            }
        }
    }
    order
}

/// One rendered document, ready to check.
pub struct UnitDoc {
    /// `helm://release[/env]/templates/…`: the name the document is checked under.
    pub pseudo: String,
    /// Index among the documents its template produced.
    pub index: usize,
    pub text: String,
    pub source: RenderedSource,
}

/// What rendering one unit produced.
pub struct UnitRender {
    pub docs: Vec<UnitDoc>,
    /// Problems that did not stop the render.
    pub problems: Vec<super::RenderProblem>,
}

/// Renders one unit into documents that know where they came from.
pub fn render_unit(helm: &Helm, unit: &RenderUnit, limits: &Limits) -> Result<UnitRender, super::RenderProblem> {
    let rendered = super::render(helm, unit, limits)?;
    let mut docs = Vec::with_capacity(rendered.docs.len());
    let mut sources: HashMap<String, RenderedSource> = HashMap::new();
    // Templates of the same (sub)chart are reached by the same values files: read and parse them once
    // per chart, not once per template.
    type SharedValues =
        (Arc<Vec<(String, String, Vec<String>)>>, Arc<std::sync::OnceLock<Vec<Option<crate::yaml::Node>>>>);
    let mut by_chart: HashMap<String, SharedValues> = HashMap::new();
    for doc in rendered.docs {
        let pseudo = format!("{}{}", unit.rendered_prefix(), doc.template);
        let source = sources
            .entry(doc.template.clone())
            .or_insert_with(|| {
                let chart = doc.template.rsplit_once("templates/").map_or("", |(chart, _)| chart).to_string();
                let (values, parsed_values) = by_chart
                    .entry(chart)
                    .or_insert_with(|| (Arc::new(values_for(unit, &doc.template)), Arc::default()))
                    .clone();
                RenderedSource {
                    template_display: format!("{}/{}", unit.chart_display, doc.template),
                    template_text: Arc::from(read_text(&unit.chart_dir.join(&doc.template)).as_str()),
                    values,
                    parsed_values,
                    environment: unit.environment.clone(),
                }
            })
            .clone();
        docs.push(UnitDoc { pseudo, index: doc.index, text: doc.text, source });
    }
    Ok(UnitRender { docs, problems: rendered.problems })
}

fn read_text(path: &Path) -> String {
    super::read_chart_text(path).unwrap_or_default()
}
