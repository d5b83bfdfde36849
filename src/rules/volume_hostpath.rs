//! `volume-hostpath`: a pod mounts a directory of its node through a `hostPath` volume.

use super::resources_requests_missing::container_label;
use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;
use crate::yaml::Node;

pub static RULE: Rule = Rule {
    id: "volume-hostpath",
    section: "Volume Mounts",
    severity: Severity::Error,
    summary: "Pod mounts a hostPath volume",
    why: "A `hostPath` volume hands the container a piece of the node's own filesystem, outside anything \
Kubernetes isolates or cleans up. A compromised or buggy container can read other workloads' data, \
credentials and logs on that node, and if the mount is writable it can plant files the kubelet, the \
container runtime or other pods will later trust, which is a well-trodden path to taking over the node. \
The data is also tied to whichever node the pod happened to land on: it disappears from the pod's view \
when it is rescheduled, and replicas on different nodes see different contents.",
    fix: "Replace the `hostPath` volume with what the data actually needs: a PersistentVolumeClaim for \
data that must survive the pod, an `emptyDir` for scratch space, or a ConfigMap, Secret or projected \
volume for configuration. If a node agent truly needs host files, mount only the narrowest path, with \
`readOnly: true` on every volumeMount, and run it in a namespace reserved for such agents.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "volume-hostpath/bad",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/volume-hostpath/bad/deployment.yaml"))],
    },
    good: Example {
        dir: "volume-hostpath/good",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/volume-hostpath/good/deployment.yaml"))],
    },
    check: Check::Object(check),
};

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let Some(pod) = cx.pod_spec() else { return };
    let containers = pod.containers();
    for (i, volume) in pod.get("volumes").map(Node::items).unwrap_or_default().iter().enumerate() {
        let Some(host_path) = volume.get("hostPath").filter(|n| n.is_map()) else { continue };
        let name = volume.get("name").and_then(Node::as_text).unwrap_or_default();
        let path = host_path.get("path").and_then(Node::as_text).unwrap_or("?");
        let mut writable = Vec::new();
        let mut mounted = false;
        for c in containers {
            for mount in c.get("volumeMounts").map(Node::items).unwrap_or_default() {
                if mount.get("name").and_then(Node::as_text) != Some(name) {
                    continue;
                }
                mounted = true;
                if mount.get("readOnly").and_then(Node::as_bool) != Some(true) {
                    let at = mount.get("mountPath").and_then(Node::as_text).unwrap_or("?");
                    writable.push(format!("{} at `{at}`", container_label(c)));
                }
            }
        }
        let how = if !writable.is_empty() {
            format!("writable: mounted without `readOnly: true` by {}", writable.join(", "))
        } else if mounted {
            "mounted read-only".to_string()
        } else {
            "not mounted by any container, but still attached to the pod".to_string()
        };
        out.at(
            pod.route.key("volumes").index(i).key("hostPath"),
            format!(
                "{} `{}` uses hostPath volume `{name}` (node path `{path}`), {how}",
                cx.object.kind, cx.object.name
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::rules::testing::{messages, object_findings, routes, workload};

    #[test]
    fn writable_mounts_are_named() {
        let yaml = workload(
            "DaemonSet",
            "containers:\n  - name: agent\n    image: a:1\n    volumeMounts:\n      - {name: host, mountPath: /host}\n\
             initContainers:\n  - name: setup\n    image: a:1\n    volumeMounts:\n      \
             - {name: host, mountPath: /h, readOnly: true}\n\
             volumes:\n  - name: scratch\n    emptyDir: {}\n  - name: host\n    hostPath: {path: /var/lib/x}\n",
        );
        let found = object_findings(&RULE, &yaml);
        assert_eq!(
            messages(&found),
            vec![
                "DaemonSet `t` uses hostPath volume `host` (node path `/var/lib/x`), writable: mounted without \
                 `readOnly: true` by container `agent` at `/host`"
            ]
        );
        assert_eq!(routes(&found), vec!["spec.template.spec.volumes[1].hostPath"]);
    }

    #[test]
    fn read_only_and_unmounted() {
        let yaml = workload(
            "CronJob",
            "containers:\n  - name: a\n    image: a:1\n    volumeMounts:\n      \
             - {name: logs, mountPath: /logs, readOnly: true}\n\
             volumes:\n  - name: logs\n    hostPath: {path: /var/log}\n  - name: other\n    hostPath: {path: /tmp}\n",
        );
        let msgs = messages(&object_findings(&RULE, &yaml));
        assert_eq!(msgs.len(), 2);
        assert!(msgs[0].ends_with("(node path `/var/log`), mounted read-only"), "{msgs:?}");
        assert!(msgs[1].ends_with("not mounted by any container, but still attached to the pod"), "{msgs:?}");
    }

    #[test]
    fn other_volumes_are_fine() {
        let yaml = workload(
            "Pod",
            "containers:\n  - name: a\n    image: a:1\nvolumes:\n  - name: x\n    emptyDir: {}\n  - bogus\n  \
             - name: y\n    hostPath: null\n",
        );
        assert!(messages(&object_findings(&RULE, &yaml)).is_empty());
    }
}
