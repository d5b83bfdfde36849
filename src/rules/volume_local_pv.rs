//! `volume-local-pv`: a PersistentVolume backed by one node's disk (`local` or `hostPath`).

use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;
use crate::yaml::{Node, Route};

pub static RULE: Rule = Rule {
    id: "volume-local-pv",
    section: "Volume Mounts",
    severity: Severity::Warning,
    summary: "PersistentVolume uses a `local` or `hostPath` source on a single node",
    why: "A `local` or `hostPath` PersistentVolume is a directory or disk on one particular node. Every pod \
that claims it is pinned to that node, so when the node is drained, upgraded or lost the pod cannot start \
anywhere else, and if the node's disk goes the data goes with it, with no replication or snapshots from \
the storage layer. A `hostPath` PV additionally has no scheduling constraint at all, so a pod can be \
started on a different node and silently see an empty directory. It is safer than a raw hostPath in a pod, \
but it still gives up most of what makes persistent storage persistent.",
    fix: "Use dynamically provisioned network storage: a PersistentVolumeClaim with a StorageClass backed \
by a CSI driver (EBS, EFS, Persistent Disk, Ceph…), so the volume follows the pod between nodes. Keep \
`local` volumes for workloads that replicate their own data across nodes (some databases and caches), \
with a `nodeAffinity` and a plan for losing the node.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "volume-local-pv/bad",
        files: &[(
            "persistentvolume.yaml",
            include_str!("../../fixtures/rules/volume-local-pv/bad/persistentvolume.yaml"),
        )],
    },
    good: Example {
        dir: "volume-local-pv/good",
        files: &[(
            "persistentvolume.yaml",
            include_str!("../../fixtures/rules/volume-local-pv/good/persistentvolume.yaml"),
        )],
    },
    check: Check::Object(check),
};

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    if (cx.object.group(), cx.object.kind) != ("", "PersistentVolume") {
        return;
    }
    for source in ["local", "hostPath"] {
        let Some(node) = cx.object.root.get_path(&["spec", source]).filter(|n| n.is_map()) else { continue };
        let path = node.get("path").and_then(Node::as_text).unwrap_or("?");
        out.at(
            Route::root().key("spec").key(source),
            format!(
                "PersistentVolume `{}` uses a `{source}` volume (node path `{path}`): its data lives on a single \
                 node and is lost to pods scheduled anywhere else",
                cx.object.name
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::rules::testing::{messages, object_findings, routes};

    const PV: &str =
        "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: pv\nspec:\n  capacity: {storage: 10Gi}\n";

    #[test]
    fn local_and_host_path() {
        let yaml = format!("{PV}  local: {{path: /mnt/disks/ssd1}}\n");
        let found = object_findings(&RULE, &yaml);
        assert_eq!(
            messages(&found),
            vec![
                "PersistentVolume `pv` uses a `local` volume (node path `/mnt/disks/ssd1`): its data lives on a \
                  single node and is lost to pods scheduled anywhere else"
            ]
        );
        assert_eq!(routes(&found), vec!["spec.local"]);
        let yaml = format!("{PV}  hostPath: {{path: /data}}\n");
        assert_eq!(routes(&object_findings(&RULE, &yaml)), vec!["spec.hostPath"]);
    }

    #[test]
    fn network_volumes_and_other_kinds_are_fine() {
        let yaml = format!("{PV}  csi: {{driver: ebs.csi.aws.com, volumeHandle: vol-1}}\n");
        assert!(messages(&object_findings(&RULE, &yaml)).is_empty());
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\nspec:\n  local: {path: /x}\n";
        assert!(messages(&object_findings(&RULE, yaml)).is_empty());
    }
}
