//! SARIF 2.1.0 for GitHub code scanning: every rule with its descriptions, every finding as a result,
//! suppressed ones carrying a SARIF suppression.
//! See <https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html>.

use serde_json::{Value, json};

use crate::engine::Report;
use crate::finding::Severity;
use crate::rules::RULES;

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Notice => "note",
    }
}

pub fn render(report: &Report) -> String {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": { "text": r.summary },
                "fullDescription": { "text": r.why.trim() },
                "help": { "text": r.fix.trim(), "markdown": r.explanation_markdown() },
                "defaultConfiguration": { "level": level(r.severity) },
                "properties": { "tags": [r.section] },
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut result = json!({
                "ruleId": f.rule,
                "ruleIndex": RULES.iter().position(|r| r.id == f.rule).unwrap_or(0),
                "level": level(f.severity),
                "message": { "text": format!("{}\n{}", f.message, f.help) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": f.file },
                        "region": { "startLine": f.line.max(1), "startColumn": f.column.max(1) },
                    },
                    "logicalLocations": f.route.as_ref().map(|r| vec![json!({ "fullyQualifiedName": r.to_string() })]).unwrap_or_default(),
                }],
            });
            if let Some(s) = &f.suppressed {
                result["suppressions"] = json!([{
                    "kind": if s.kind == "waiver" { "external" } else { "inSource" },
                    "justification": s.reason,
                }]);
            }
            result
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "kpath",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/kpath-dev/kpath",
                "rules": rules,
            }},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}
