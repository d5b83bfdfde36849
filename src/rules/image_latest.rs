//! `image-latest`: a container image with no tag or the `latest` tag, and no digest.

use super::resources_requests_missing::container_label;
use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;
use crate::yaml::Node;

pub static RULE: Rule = Rule {
    id: "image-latest",
    section: "Principle of Least Bloat (PoLB)",
    severity: Severity::Warning,
    summary: "Container image is unpinned: no tag, or `:latest`, and no digest",
    why: "A floating tag names whatever was pushed last, not a particular build: two nodes pulling at \
different times can run different code under the same manifest, and a restart can silently upgrade (or \
downgrade) the app. You can no longer tell from the repository which components are actually running, so \
the image that was scanned and reviewed is not necessarily the one in production. Rolling back is \
guesswork too, because the previous version has no name to return to. An image with no tag at all is \
pulled as `latest`, with the same problems.",
    fix: "Pin every image to an immutable version tag or, better, a digest (`app:1.4.2` or \
`app@sha256:…`). Have CI publish a unique tag per build (a version or the commit SHA) and let your deploy \
tooling (Kustomize `images:`, Helm values, Argo CD Image Updater) write it into the manifest. A registry \
port is not a tag: `registry:5000/app` still has no tag.",
    secret: false,
    options: &[],
    bad: Example {
        dir: "image-latest/bad",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/image-latest/bad/deployment.yaml"))],
    },
    good: Example {
        dir: "image-latest/good",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/image-latest/good/deployment.yaml"))],
    },
    check: Check::Object(check),
};

#[derive(Debug, PartialEq, Eq)]
enum Unpinned {
    NoTag,
    Latest,
}

/// Reads an image reference as a container runtime does: a digest (`@sha256:…`) pins it; otherwise the
/// tag is what follows the last `:` of the last path component (a `:` before a `/` is a registry port).
fn unpinned(image: &str) -> Option<Unpinned> {
    let image = image.trim();
    // Empty or still templated (`{{ .Values.image }}`, `${IMAGE}`): nothing to judge yet.
    if image.is_empty() || image.contains("{{") || image.contains('$') || image.contains('@') {
        return None;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        None => Some(Unpinned::NoTag),
        Some((_, "latest")) => Some(Unpinned::Latest),
        Some(_) => None,
    }
}

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let Some(pod) = cx.pod_spec() else { return };
    for c in pod.containers() {
        let Some(image) = c.get("image").and_then(Node::as_text) else { continue };
        let message = match unpinned(image) {
            None => continue,
            Some(Unpinned::NoTag) => format!(
                "{} uses image `{image}` with no tag and no digest, so it runs whatever `latest` points to when pulled",
                container_label(c)
            ),
            Some(Unpinned::Latest) => format!(
                "{} uses image `{image}`: the `latest` tag moves with every push, so the running version is unknown",
                container_label(c)
            ),
        };
        out.at(c.route.key("image"), message);
    }
}

/// Test helpers shared by the rules' unit tests: run one object rule over YAML text.
#[cfg(test)]
pub(crate) mod test_support {
    use std::sync::Arc;

    use crate::config::Config;
    use crate::finding::Finding;
    use crate::model::Object;
    use crate::rules::{Check, Emitter, ObjectCx, Rule};

    /// Runs `rule` over every document of `text` with the default configuration.
    pub(crate) fn run(rule: &'static Rule, text: &str) -> Vec<Finding> {
        run_with(rule, text, &Config::default())
    }

    pub(crate) fn run_with(rule: &'static Rule, text: &str, config: &Config) -> Vec<Finding> {
        let Check::Object(check) = rule.check else { panic!("{} is not an object rule", rule.id) };
        let (docs, broken) = crate::yaml::parse_stream(text);
        assert!(broken.is_empty(), "test YAML does not parse: {broken:?}");
        let mut findings = Vec::new();
        for doc in &docs {
            let Some(root) = &doc.root else { continue };
            let object = Object::from_root(root).expect("test object has apiVersion, kind and name");
            let cx = ObjectCx::new("t.yaml", doc.index, object, config, config.options(rule.id));
            let mut out = Emitter {
                rule,
                severity: rule.severity,
                file: Arc::from("t.yaml"),
                root: Some(root),
                document: Some(doc.index),
                object: Some(object.id()),
                out: &mut findings,
            };
            check(&cx, &mut out);
        }
        findings
    }

    /// The findings' messages, in order.
    pub(crate) fn messages(rule: &'static Rule, text: &str) -> Vec<String> {
        run(rule, text).into_iter().map(|f| f.message).collect()
    }

    /// The findings' routes, printed.
    pub(crate) fn routes(rule: &'static Rule, text: &str) -> Vec<String> {
        run(rule, text).into_iter().map(|f| f.route.map(|r| r.to_string()).unwrap_or_default()).collect()
    }

    /// A workload of `kind` (Pod, Deployment, StatefulSet, DaemonSet, Job, CronJob) whose pod spec is
    /// `pod_spec`, written at column 0.
    pub(crate) fn workload(kind: &str, pod_spec: &str) -> String {
        let (api, head, depth) = match kind {
            "Pod" => ("v1", "spec:\n", 1),
            "Deployment" | "StatefulSet" | "DaemonSet" => ("apps/v1", "spec:\n  template:\n    spec:\n", 3),
            "Job" => ("batch/v1", "spec:\n  template:\n    spec:\n", 3),
            "CronJob" => (
                "batch/v1",
                "spec:\n  schedule: \"0 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n",
                5,
            ),
            other => panic!("no template for {other}"),
        };
        let indent = "  ".repeat(depth);
        let body: String = pod_spec.lines().map(|l| format!("{indent}{l}\n")).collect();
        format!("apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: t\n  namespace: t\n{head}{body}")
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{messages, routes, workload};
    use super::{RULE, Unpinned, unpinned};

    #[test]
    fn references() {
        assert_eq!(unpinned("nginx"), Some(Unpinned::NoTag));
        assert_eq!(unpinned("nginx:latest"), Some(Unpinned::Latest));
        assert_eq!(unpinned("docker.io/library/nginx:latest"), Some(Unpinned::Latest));
        assert_eq!(unpinned("nginx:1.27"), None);
        assert_eq!(unpinned("nginx@sha256:0123456789abcdef"), None);
        assert_eq!(unpinned("nginx:latest@sha256:0123456789abcdef"), None);
        assert_eq!(unpinned("localhost:5000/app"), Some(Unpinned::NoTag));
        assert_eq!(unpinned("registry:5000/team/app"), Some(Unpinned::NoTag));
        assert_eq!(unpinned("registry:5000/team/app:2.0"), None);
        assert_eq!(unpinned("registry:5000/team/app:latest"), Some(Unpinned::Latest));
        assert_eq!(unpinned("{{ .Values.image }}"), None);
        assert_eq!(unpinned("${IMAGE}"), None);
        assert_eq!(unpinned(""), None);
    }

    #[test]
    fn every_container_is_checked() {
        let yaml = workload(
            "Job",
            "containers:\n  - name: web\n    image: nginx\n  - name: ok\n    image: nginx:1.27\n\
             initContainers:\n  - name: setup\n    image: busybox:latest\n",
        );
        let msgs = messages(&RULE, &yaml);
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].starts_with("container `web` uses image `nginx` with no tag"), "{msgs:?}");
        assert!(msgs[1].starts_with("init container `setup` uses image `busybox:latest`"), "{msgs:?}");
        assert_eq!(routes(&RULE, &yaml)[0], "spec.template.spec.containers[0].image");
    }

    #[test]
    fn missing_or_odd_images_do_not_panic() {
        let yaml = workload("Pod", "containers:\n  - name: a\n  - name: b\n    image: [x]\n  - image: 12\n");
        assert_eq!(messages(&RULE, &yaml), vec!["unnamed container at `spec.containers[2]` uses image `12` with no tag and no digest, so it runs whatever `latest` points to when pulled".to_string()]);
    }
}
