//! `render-failed`: a Helm chart or Kustomize root that does not render, placed on the line the tool's error names.

use super::{Check, Example, Rule};
use crate::finding::Severity;

pub static RULE: Rule = Rule {
    id: "render-failed",
    section: "Supply Helm Charts with an Existing Secret",
    severity: Severity::Error,
    summary: "Helm chart or Kustomization does not render",
    why: "A chart that fails `helm template`, or a Kustomization that fails `kubectl kustomize`, fails the same \
way when Argo CD, Flux, `helm upgrade` or `kubectl apply -k` renders it, so the change never reaches the cluster, \
and nothing in it can be checked. Common causes \
are a value the chart marks `required` that no values file sets, a typo in a template action, and a \
dependency that was never vendored into `charts/`. kpath renders offline in a sandbox (no downloads, \
no plugins, a time limit and an output limit), so a chart that only renders with network access or \
that never finishes is reported here too, rather than skipped; so is a Kustomization with a remote base \
(kpath never fetches) or a path that leaves the repository.",
    fix: "Fix the template or values line the message names, then run `helm template` locally to confirm. \
Set required values in `values.yaml` or the environment's values file; vendor dependencies with \
`helm dependency build` and commit `charts/`; keep templates free of unbounded loops and symlinks that \
point outside the chart. For Kustomize, fix the reference the message names (a missing resource, a patch \
that matches no object), vendor remote bases into the repository, and run `kubectl kustomize` locally.",
    secret: false,
    options: &[],
    suggest: None,
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
    // Raised by the engine for the renderers' problems (Helm, Kustomize), not by a check over objects.
    check: Check::Loader,
};
