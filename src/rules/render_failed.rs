//! `render-failed`: a Helm chart that does not render, placed on the template line Helm names.

use super::{Check, Example, Rule};
use crate::finding::Severity;

pub static RULE: Rule = Rule {
    id: "render-failed",
    section: "Supply Helm Charts with an Existing Secret",
    severity: Severity::Error,
    summary: "Helm chart does not render",
    why: "A chart that fails `helm template` fails the same way when Argo CD, Flux or `helm upgrade` \
renders it, so the change never reaches the cluster, and nothing in it can be checked. Common causes \
are a value the chart marks `required` that no values file sets, a typo in a template action, and a \
dependency that was never vendored into `charts/`. kpath renders offline in a sandbox (no downloads, \
no plugins, a time limit and an output limit), so a chart that only renders with network access or \
that never finishes is reported here too, rather than skipped.",
    fix: "Fix the template or values line the message names, then run `helm template` locally to confirm. \
Set required values in `values.yaml` or the environment's values file; vendor dependencies with \
`helm dependency build` and commit `charts/`; keep templates free of unbounded loops and symlinks that \
point outside the chart.",
    secret: false,
    options: &[],
    bad: Example {
        dir: "render-failed/bad",
        files: &[
            (".kpath.yml", include_str!("../../fixtures/rules/render-failed/bad/.kpath.yml")),
            ("Chart.yaml", include_str!("../../fixtures/rules/render-failed/bad/Chart.yaml")),
            (
                "templates/deployment.yaml",
                include_str!("../../fixtures/rules/render-failed/bad/templates/deployment.yaml"),
            ),
            ("values.yaml", include_str!("../../fixtures/rules/render-failed/bad/values.yaml")),
        ],
    },
    good: Example {
        dir: "render-failed/good",
        files: &[
            (".kpath.yml", include_str!("../../fixtures/rules/render-failed/good/.kpath.yml")),
            ("Chart.yaml", include_str!("../../fixtures/rules/render-failed/good/Chart.yaml")),
            (
                "templates/deployment.yaml",
                include_str!("../../fixtures/rules/render-failed/good/templates/deployment.yaml"),
            ),
            ("values.yaml", include_str!("../../fixtures/rules/render-failed/good/values.yaml")),
        ],
    },
    // Raised by the Helm renderer (`helm::check`), not by a check over objects.
    check: Check::Loader,
};
