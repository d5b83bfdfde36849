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
    suggest: None,
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

/// The part of an unpinned image reference to change ([`crate::finding::Finding::part`]): the `latest` tag,
/// or, with no tag, the image's name (where a tag is added). A chart that builds the reference from several
/// values (`{{ .Values.image.repository }}:{{ .Values.image.tag }}`) then has the finding on the value that
/// produced it.
fn culprit(image: &str, unpinned: &Unpinned) -> String {
    let last = image.trim().rsplit('/').next().unwrap_or(image);
    match unpinned {
        Unpinned::Latest => last.rsplit_once(':').map_or(last, |(_, tag)| tag).to_string(),
        Unpinned::NoTag => last.to_string(),
    }
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
        let Some(unpinned) = unpinned(image) else { continue };
        let message = match unpinned {
            Unpinned::NoTag => format!(
                "{} uses image `{image}` with no tag and no digest, so it runs whatever `latest` points to when pulled",
                container_label(c)
            ),
            Unpinned::Latest => format!(
                "{} uses image `{image}`: the `latest` tag moves with every push, so the running version is unknown",
                container_label(c)
            ),
        };
        out.at_part(c.route.key("image"), &culprit(image, &unpinned), message);
    }
}

#[cfg(test)]
mod tests {
    use super::{RULE, Unpinned, culprit, unpinned};
    use crate::rules::testing::{messages, object_findings, routes, workload};

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
    fn the_part_at_fault_is_the_tag_or_the_name_without_one() {
        assert_eq!(culprit("nginx:latest", &Unpinned::Latest), "latest");
        assert_eq!(culprit("registry:5000/team/app:latest", &Unpinned::Latest), "latest");
        assert_eq!(culprit("registry:5000/team/app", &Unpinned::NoTag), "app");
        assert_eq!(culprit("nginx", &Unpinned::NoTag), "nginx");
        let yaml = workload("Pod", "containers:\n  - name: web\n    image: shop:latest\n");
        let found = object_findings(&RULE, &yaml);
        assert_eq!(found[0].part.as_deref(), Some("latest"));
    }

    #[test]
    fn every_container_is_checked() {
        let yaml = workload(
            "Job",
            "containers:\n  - name: web\n    image: nginx\n  - name: ok\n    image: nginx:1.27\n\
             initContainers:\n  - name: setup\n    image: busybox:latest\n",
        );
        let found = object_findings(&RULE, &yaml);
        let msgs = messages(&found);
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].starts_with("container `web` uses image `nginx` with no tag"), "{msgs:?}");
        assert!(msgs[1].starts_with("init container `setup` uses image `busybox:latest`"), "{msgs:?}");
        assert_eq!(routes(&found)[0], "spec.template.spec.containers[0].image");
    }

    #[test]
    fn missing_or_odd_images_do_not_panic() {
        let yaml = workload("Pod", "containers:\n  - name: a\n  - name: b\n    image: [x]\n  - image: 12\n");
        assert_eq!(messages(&object_findings(&RULE, &yaml)), vec!["unnamed container at `spec.containers[2]` uses image `12` with no tag and no digest, so it runs whatever `latest` points to when pulled".to_string()]);
    }
}
