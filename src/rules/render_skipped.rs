//! `render-skipped`: a deployment an Argo CD or Flux object declares that kpath cannot render offline (a
//! source in another repository, a plugin, encrypted values, a chart source the operator did not allow),
//! said where it is declared, with the reason, so a review never reads as "nothing changed".

use super::{Check, Example, Rule};
use crate::finding::Severity;

pub static RULE: Rule = Rule {
    id: "render-skipped",
    section: "Supply Helm Charts with an Existing Secret",
    severity: Severity::Notice,
    summary: "A declared deployment (or a unit whose tool is missing) was not rendered, so it was not checked",
    why: "kpath renders every environment an Argo CD Application or ApplicationSet, or a Flux Kustomization or \
HelmRelease declares, offline and without cluster credentials. Some sources cannot be rendered that way: a \
repository other than the one under review, a config-management plugin, SOPS-encrypted values, a value only the \
cluster knows, or a chart repository the kpath operator has not allowed kpath to download from. Rather than \
report such a deployment as unchanged, kpath says here that it did not check it, and why, so a reviewer knows \
to look at it some other way.",
    fix: "Nothing in the change is wrong. To have the deployment checked: keep its manifests in this repository \
(or list the other URLs this repository is known by under `gitops.repoURLs` in `.kpath.yml`); for charts from \
a Helm or OCI repository, ask whoever runs kpath to allow that source (`--allow-chart-source`); for plugins \
and encrypted values, check the rendered output in the plugin's own pipeline.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "render-skipped/bad",
        files: &[
            (".kpath.yml", include_str!("../../fixtures/rules/render-skipped/bad/.kpath.yml")),
            ("apps/payments.yaml", include_str!("../../fixtures/rules/render-skipped/bad/apps/payments.yaml")),
        ],
    },
    good: Example {
        dir: "render-skipped/good",
        files: &[
            (".kpath.yml", include_str!("../../fixtures/rules/render-skipped/good/.kpath.yml")),
            ("apps/settings.yaml", include_str!("../../fixtures/rules/render-skipped/good/apps/settings.yaml")),
            ("config/settings.yaml", include_str!("../../fixtures/rules/render-skipped/good/config/settings.yaml")),
        ],
    },
    // Raised by the engine for what the renderers could not render offline, not by a check over objects.
    check: Check::Loader,
};
