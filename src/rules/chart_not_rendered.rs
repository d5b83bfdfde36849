//! `chart-not-rendered`: a Helm chart directory whose templates kpath could not check, because it does not
//! render Helm charts yet. Raised by the engine (one finding per chart, at its `Chart.yaml`).

use super::{Check, Example, Rule};
use crate::finding::Severity;

pub static RULE: Rule = Rule {
    id: "chart-not-rendered",
    section: "Core Guidelines",
    severity: Severity::Notice,
    summary: "Helm chart was not rendered, so its templates were not checked",
    why: "Helm templates are not Kubernetes manifests until Helm has filled them in with the chart's \
values: before that, names, images and whole blocks such as `resources` are placeholders, and reading them \
as YAML would give both false alarms and false reassurance. kpath cannot render charts yet, so it leaves \
the chart's files alone. Rather than skipping them silently, which would make a repository of charts look \
perfectly clean, it reports each chart it did not check, so a green result never hides a part of the \
repository nobody looked at.",
    fix: "Render the chart and check the output: `helm template <release> <chart-dir> -f <values> > \
rendered.yaml` and then `kpath check rendered.yaml` (in CI, render into a temporary directory first). If \
the chart is checked some other way, silence this notice with a waiver for its path in `.kpath.yml`.",
    secret: false,
    options: &[],
    bad: Example {
        dir: "chart-not-rendered/bad",
        files: &[
            ("Chart.yaml", include_str!("../../fixtures/rules/chart-not-rendered/bad/Chart.yaml")),
            (
                "templates/deployment.yaml",
                include_str!("../../fixtures/rules/chart-not-rendered/bad/templates/deployment.yaml"),
            ),
            ("values.yaml", include_str!("../../fixtures/rules/chart-not-rendered/bad/values.yaml")),
        ],
    },
    good: Example {
        dir: "chart-not-rendered/good",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/chart-not-rendered/good/deployment.yaml"))],
    },
    check: Check::Loader,
};
