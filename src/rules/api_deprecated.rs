//! `api-deprecated`: an object written against an apiVersion that is deprecated, or already removed,
//! in the Kubernetes version the repository targets (or in the operator that serves it).
//!
//! The table follows the Kubernetes deprecated API migration guide
//! (<https://kubernetes.io/docs/reference/using-api/deprecation-guide/>) and the release notes of KEDA
//! and the External Secrets Operator.

use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;
use crate::yaml::Route;

pub static RULE: Rule = Rule {
    id: "api-deprecated",
    section: "Core Guidelines",
    severity: Severity::Warning,
    summary: "Object uses a deprecated or removed apiVersion",
    why: "Kubernetes and the operators built on it retire beta API versions on a schedule: first they are \
deprecated, then a later release stops serving them, and from then on `kubectl apply`, Argo CD or Helm \
fail with \"no matches for kind\" for every manifest still using them. A deprecated version is a cluster \
upgrade that will break this app; a removed one means the manifest no longer deploys at all on the \
configured version. Moving to the replacement early is usually a one-line change, often with small field \
renames, that is far cheaper before the upgrade than during it. The guideline's own examples use \
`keda.k8s.io/v1beta1` and `external-secrets.io/v1beta1`, both of which current KEDA and External Secrets \
releases no longer serve.",
    fix: "Change `apiVersion` to the replacement named in the finding and adjust any fields that changed \
between the versions. Set `kubernetesVersion` in `.kpath.yml` to the version your clusters run (kpath \
assumes 1.34) so that removals are reported as errors exactly when they apply.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "api-deprecated/bad",
        files: &[("ingress.yaml", include_str!("../../fixtures/rules/api-deprecated/bad/ingress.yaml"))],
    },
    good: Example {
        dir: "api-deprecated/good",
        files: &[("ingress.yaml", include_str!("../../fixtures/rules/api-deprecated/good/ingress.yaml"))],
    },
    check: Check::Object(check),
};

/// When a version was deprecated or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// A Kubernetes minor release: compared with `kubernetesVersion`.
    Kubernetes(u32, u32),
    /// A release of the operator that serves the API (KEDA, External Secrets): kpath cannot know which
    /// one a cluster runs, so it counts as already passed.
    Operator(&'static str),
}

impl Release {
    fn reached(self, version: (u32, u32)) -> bool {
        match self {
            Release::Kubernetes(major, minor) => version >= (major, minor),
            Release::Operator(_) => true,
        }
    }
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Release::Kubernetes(major, minor) => write!(f, "Kubernetes {major}.{minor}"),
            Release::Operator(name) => f.write_str(name),
        }
    }
}

/// One retired API version.
pub struct Deprecation {
    /// `group/version`, or `group/*` for every version of a group.
    pub api_version: &'static str,
    /// The kinds affected; empty for every kind.
    pub kinds: &'static [&'static str],
    pub deprecated: Release,
    pub removed: Option<Release>,
    /// An apiVersion, or a short Markdown description when the API has no direct successor.
    pub replacement: &'static str,
}

impl Deprecation {
    /// The replacement as it reads in a message: an apiVersion in backticks, a description as is.
    fn replacement_text(&self) -> String {
        if self.replacement.contains(' ') { self.replacement.to_string() } else { format!("`{}`", self.replacement) }
    }
}

const fn k8s(major: u32, minor: u32) -> Release {
    Release::Kubernetes(major, minor)
}

const ALL: &[&str] = &[];
const WORKLOADS: &[&str] = &["Deployment", "DaemonSet", "ReplicaSet", "StatefulSet", "ControllerRevision"];
const ESO_KINDS: &[&str] = &["ExternalSecret", "SecretStore", "ClusterSecretStore", "ClusterExternalSecret"];

/// Every retired version kpath knows about. The first matching row wins, so kind-specific rows come
/// before a group's catch-all.
pub static DEPRECATIONS: &[Deprecation] = &[
    Deprecation {
        api_version: "extensions/v1beta1",
        kinds: WORKLOADS,
        deprecated: k8s(1, 9),
        removed: Some(k8s(1, 16)),
        replacement: "apps/v1",
    },
    Deprecation {
        api_version: "extensions/v1beta1",
        kinds: &["NetworkPolicy"],
        deprecated: k8s(1, 9),
        removed: Some(k8s(1, 16)),
        replacement: "networking.k8s.io/v1",
    },
    Deprecation {
        api_version: "extensions/v1beta1",
        kinds: &["PodSecurityPolicy"],
        deprecated: k8s(1, 10),
        removed: Some(k8s(1, 16)),
        replacement: "Pod Security Admission (`pod-security.kubernetes.io/*` namespace labels)",
    },
    Deprecation {
        api_version: "extensions/v1beta1",
        kinds: &["Ingress"],
        deprecated: k8s(1, 14),
        removed: Some(k8s(1, 22)),
        replacement: "networking.k8s.io/v1",
    },
    Deprecation {
        api_version: "extensions/v1beta1",
        kinds: ALL,
        deprecated: k8s(1, 14),
        removed: Some(k8s(1, 22)),
        replacement: "the kind's GA version (`apps/v1`, `networking.k8s.io/v1`)",
    },
    Deprecation {
        api_version: "apps/v1beta1",
        kinds: ALL,
        deprecated: k8s(1, 9),
        removed: Some(k8s(1, 16)),
        replacement: "apps/v1",
    },
    Deprecation {
        api_version: "apps/v1beta2",
        kinds: ALL,
        deprecated: k8s(1, 9),
        removed: Some(k8s(1, 16)),
        replacement: "apps/v1",
    },
    Deprecation {
        api_version: "networking.k8s.io/v1beta1",
        kinds: &["Ingress", "IngressClass"],
        deprecated: k8s(1, 19),
        removed: Some(k8s(1, 22)),
        replacement: "networking.k8s.io/v1",
    },
    Deprecation {
        api_version: "rbac.authorization.k8s.io/v1beta1",
        kinds: ALL,
        deprecated: k8s(1, 17),
        removed: Some(k8s(1, 22)),
        replacement: "rbac.authorization.k8s.io/v1",
    },
    Deprecation {
        api_version: "storage.k8s.io/v1beta1",
        kinds: &["CSIDriver", "CSINode", "StorageClass", "VolumeAttachment"],
        deprecated: k8s(1, 19),
        removed: Some(k8s(1, 22)),
        replacement: "storage.k8s.io/v1",
    },
    Deprecation {
        api_version: "storage.k8s.io/v1beta1",
        kinds: &["CSIStorageCapacity"],
        deprecated: k8s(1, 24),
        removed: Some(k8s(1, 27)),
        replacement: "storage.k8s.io/v1",
    },
    Deprecation {
        api_version: "admissionregistration.k8s.io/v1beta1",
        kinds: &["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"],
        deprecated: k8s(1, 16),
        removed: Some(k8s(1, 22)),
        replacement: "admissionregistration.k8s.io/v1",
    },
    Deprecation {
        api_version: "apiextensions.k8s.io/v1beta1",
        kinds: ALL,
        deprecated: k8s(1, 16),
        removed: Some(k8s(1, 22)),
        replacement: "apiextensions.k8s.io/v1",
    },
    Deprecation {
        api_version: "apiregistration.k8s.io/v1beta1",
        kinds: ALL,
        deprecated: k8s(1, 19),
        removed: Some(k8s(1, 22)),
        replacement: "apiregistration.k8s.io/v1",
    },
    Deprecation {
        api_version: "scheduling.k8s.io/v1beta1",
        kinds: &["PriorityClass"],
        deprecated: k8s(1, 14),
        removed: Some(k8s(1, 22)),
        replacement: "scheduling.k8s.io/v1",
    },
    Deprecation {
        api_version: "coordination.k8s.io/v1beta1",
        kinds: &["Lease"],
        deprecated: k8s(1, 19),
        removed: Some(k8s(1, 22)),
        replacement: "coordination.k8s.io/v1",
    },
    Deprecation {
        api_version: "certificates.k8s.io/v1beta1",
        kinds: &["CertificateSigningRequest"],
        deprecated: k8s(1, 19),
        removed: Some(k8s(1, 22)),
        replacement: "certificates.k8s.io/v1",
    },
    Deprecation {
        api_version: "batch/v1beta1",
        kinds: &["CronJob"],
        deprecated: k8s(1, 21),
        removed: Some(k8s(1, 25)),
        replacement: "batch/v1",
    },
    Deprecation {
        api_version: "policy/v1beta1",
        kinds: &["PodDisruptionBudget"],
        deprecated: k8s(1, 21),
        removed: Some(k8s(1, 25)),
        replacement: "policy/v1",
    },
    Deprecation {
        api_version: "policy/v1beta1",
        kinds: &["PodSecurityPolicy"],
        deprecated: k8s(1, 21),
        removed: Some(k8s(1, 25)),
        replacement: "Pod Security Admission (`pod-security.kubernetes.io/*` namespace labels)",
    },
    Deprecation {
        api_version: "autoscaling/v2beta1",
        kinds: ALL,
        deprecated: k8s(1, 22),
        removed: Some(k8s(1, 25)),
        replacement: "autoscaling/v2",
    },
    Deprecation {
        api_version: "autoscaling/v2beta2",
        kinds: ALL,
        deprecated: k8s(1, 23),
        removed: Some(k8s(1, 26)),
        replacement: "autoscaling/v2",
    },
    Deprecation {
        api_version: "discovery.k8s.io/v1beta1",
        kinds: &["EndpointSlice"],
        deprecated: k8s(1, 21),
        removed: Some(k8s(1, 25)),
        replacement: "discovery.k8s.io/v1",
    },
    Deprecation {
        api_version: "events.k8s.io/v1beta1",
        kinds: &["Event"],
        deprecated: k8s(1, 19),
        removed: Some(k8s(1, 25)),
        replacement: "events.k8s.io/v1",
    },
    Deprecation {
        api_version: "node.k8s.io/v1beta1",
        kinds: &["RuntimeClass"],
        deprecated: k8s(1, 20),
        removed: Some(k8s(1, 25)),
        replacement: "node.k8s.io/v1",
    },
    Deprecation {
        api_version: "flowcontrol.apiserver.k8s.io/v1beta1",
        kinds: ALL,
        deprecated: k8s(1, 23),
        removed: Some(k8s(1, 26)),
        replacement: "flowcontrol.apiserver.k8s.io/v1",
    },
    Deprecation {
        api_version: "flowcontrol.apiserver.k8s.io/v1beta2",
        kinds: ALL,
        deprecated: k8s(1, 26),
        removed: Some(k8s(1, 29)),
        replacement: "flowcontrol.apiserver.k8s.io/v1",
    },
    Deprecation {
        api_version: "flowcontrol.apiserver.k8s.io/v1beta3",
        kinds: ALL,
        deprecated: k8s(1, 29),
        removed: Some(k8s(1, 32)),
        replacement: "flowcontrol.apiserver.k8s.io/v1",
    },
    Deprecation {
        api_version: "keda.k8s.io/*",
        kinds: ALL,
        deprecated: Release::Operator("KEDA 2.0"),
        removed: Some(Release::Operator("KEDA 2.0")),
        replacement: "keda.sh/v1alpha1",
    },
    Deprecation {
        api_version: "external-secrets.io/v1alpha1",
        kinds: ESO_KINDS,
        deprecated: Release::Operator("External Secrets Operator 0.7"),
        removed: Some(Release::Operator("External Secrets Operator 0.16")),
        replacement: "external-secrets.io/v1",
    },
    Deprecation {
        api_version: "external-secrets.io/v1beta1",
        kinds: ESO_KINDS,
        deprecated: Release::Operator("External Secrets Operator 0.17"),
        removed: Some(Release::Operator("External Secrets Operator 0.17")),
        replacement: "external-secrets.io/v1",
    },
];

/// The row that applies to an object, if any.
pub fn lookup(api_version: &str, kind: &str) -> Option<&'static Deprecation> {
    DEPRECATIONS.iter().find(|d| {
        let version_matches = match d.api_version.strip_suffix("/*") {
            Some(group) => api_version.split_once('/').is_some_and(|(g, _)| g == group),
            None => d.api_version == api_version,
        };
        version_matches && (d.kinds.is_empty() || d.kinds.contains(&kind))
    })
}

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let object = &cx.object;
    let Some(d) = lookup(object.api_version, object.kind) else { return };
    let version = cx.config.kubernetes_version;
    if !d.deprecated.reached(version) {
        return;
    }
    let route = Route::root().key("apiVersion");
    let what = format!("`{}` {}", object.api_version, object.kind);
    match d.removed {
        Some(removed) if removed.reached(version) => {
            let target = match removed {
                Release::Kubernetes(..) => format!(" (target Kubernetes {}.{})", version.0, version.1),
                Release::Operator(_) => String::new(),
            };
            let message =
                format!("{what} is no longer served since {removed}{target}; use {} instead", d.replacement_text());
            // A removed API does not deploy at all: report it as an error, unless the user chose this
            // rule's severity in `.kpath.yml`.
            if cx.config.levels.contains_key(RULE.id) {
                out.at(route, message);
            } else {
                let configured = out.severity;
                out.severity = Severity::Error;
                out.at(route, message);
                out.severity = configured;
            }
        }
        Some(removed) => out.at(
            route,
            format!(
                "{what} is deprecated since {} and removed in {removed}; use `{}` instead",
                d.deprecated, d.replacement
            ),
        ),
        None => {
            out.at(route, format!("{what} is deprecated since {}; use {} instead", d.deprecated, d.replacement_text()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, RuleLevel};
    use crate::finding::Finding;
    use crate::rules::testing::object_findings_with;

    fn at(version: (u32, u32), text: &str) -> Vec<Finding> {
        object_findings_with(&RULE, text, &Config { kubernetes_version: version, ..Config::default() })
    }

    const CRONJOB: &str = "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: c}\nspec: {}\n";

    #[test]
    fn removed_is_an_error_and_names_the_replacement() {
        let found = at((1, 34), CRONJOB);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Error);
        assert_eq!((found[0].line, found[0].column), (1, 1));
        assert_eq!(
            found[0].message,
            "`batch/v1beta1` CronJob is no longer served since Kubernetes 1.25 (target Kubernetes 1.34); use `batch/v1` instead"
        );
    }

    #[test]
    fn deprecated_but_still_served_is_a_warning() {
        let found = at((1, 22), CRONJOB);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Warning);
        assert!(found[0].message.contains("deprecated since Kubernetes 1.21 and removed in Kubernetes 1.25"));
        let found = at((1, 15), "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: d}\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Warning, "at 1.15 extensions/v1beta1 is still served");
        assert!(found[0].message.contains("`apps/v1`"));
    }

    #[test]
    fn replacements_without_a_successor_version_read_as_text() {
        let found = at((1, 34), "apiVersion: policy/v1beta1\nkind: PodSecurityPolicy\nmetadata: {name: p}\n");
        assert!(
            found[0]
                .message
                .ends_with("use Pod Security Admission (`pod-security.kubernetes.io/*` namespace labels) instead"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn not_yet_deprecated_is_fine() {
        assert!(at((1, 20), CRONJOB).is_empty());
    }

    #[test]
    fn a_configured_level_is_respected() {
        let mut cfg = Config::default();
        cfg.levels.insert(RULE.id, RuleLevel::On(Severity::Notice));
        let found = object_findings_with(&RULE, CRONJOB, &cfg);
        assert_eq!(found[0].severity, Severity::Notice);
    }

    #[test]
    fn the_guidelines_operator_examples_are_caught() {
        let keda = at((1, 34), "apiVersion: keda.k8s.io/v1beta1\nkind: ScaledObject\nmetadata: {name: s}\n");
        assert_eq!(keda.len(), 1);
        assert_eq!(keda[0].severity, Severity::Error);
        assert_eq!(
            keda[0].message,
            "`keda.k8s.io/v1beta1` ScaledObject is no longer served since KEDA 2.0; use `keda.sh/v1alpha1` instead"
        );
        let eso = at((1, 10), "apiVersion: external-secrets.io/v1beta1\nkind: ExternalSecret\nmetadata: {name: e}\n");
        assert_eq!(eso.len(), 1);
        assert!(eso[0].message.contains("`external-secrets.io/v1`"));
    }

    #[test]
    fn current_versions_and_unlisted_kinds_pass() {
        for text in [
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n",
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: s}\n",
            "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: e}\n",
            // PushSecret has only ever been v1alpha1.
            "apiVersion: external-secrets.io/v1alpha1\nkind: PushSecret\nmetadata: {name: p}\n",
            "apiVersion: networking.k8s.io/v1beta1\nkind: SomethingElse\nmetadata: {name: x}\n",
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n",
        ] {
            assert!(at((1, 34), text).is_empty(), "{text}");
        }
    }

    #[test]
    fn flowcontrol_follows_each_version() {
        let text = |v: &str| {
            format!("apiVersion: flowcontrol.apiserver.k8s.io/{v}\nkind: FlowSchema\nmetadata: {{name: f}}\n")
        };
        assert_eq!(at((1, 28), &text("v1beta2"))[0].severity, Severity::Warning);
        assert_eq!(at((1, 29), &text("v1beta2"))[0].severity, Severity::Error);
        assert_eq!(at((1, 31), &text("v1beta3"))[0].severity, Severity::Warning);
        assert_eq!(at((1, 32), &text("v1beta3"))[0].severity, Severity::Error);
    }
}
