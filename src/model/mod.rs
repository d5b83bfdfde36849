//! The Kubernetes object model kpath reasons about: identities, where each kind keeps its pod spec,
//! and the containers of a pod with their role (main, init, native sidecar).

pub mod facts;
pub mod kinds;

use crate::finding::ObjectId;
use crate::yaml::{Node, Route};

/// One Kubernetes object: a YAML document with apiVersion, kind and metadata.name.
#[derive(Debug, Clone, Copy)]
pub struct Object<'a> {
    pub root: &'a Node,
    pub api_version: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    /// `metadata.namespace` as written; `None` when absent.
    pub namespace: Option<&'a str>,
}

impl<'a> Object<'a> {
    /// Reads an object's identity. `None` when apiVersion, kind or metadata.name is missing
    /// (the caller reports that as `manifest-invalid`).
    pub fn from_root(root: &'a Node) -> Option<Object<'a>> {
        let api_version = root.get("apiVersion")?.as_text()?;
        let kind = root.get("kind")?.as_text()?;
        let metadata = root.get("metadata")?;
        let name = metadata.get("name").and_then(Node::as_text).or_else(|| {
            // generateName is a legitimate identity for objects created by `kubectl create`.
            metadata.get("generateName").and_then(Node::as_text)
        })?;
        let namespace = metadata.get("namespace").and_then(Node::as_text).filter(|s| !s.is_empty());
        Some(Object { root, api_version, kind, name, namespace })
    }

    pub fn id(&self) -> ObjectId {
        ObjectId {
            api_version: self.api_version.to_string(),
            kind: self.kind.to_string(),
            namespace: self.namespace.map(str::to_string),
            name: self.name.to_string(),
        }
    }

    pub fn group(&self) -> &'a str {
        self.api_version.split_once('/').map_or("", |(g, _)| g)
    }

    pub fn metadata(&self) -> Option<&'a Node> {
        self.root.get("metadata")
    }

    pub fn label(&self, key: &str) -> Option<&'a str> {
        self.root.get_path(&["metadata", "labels", key]).and_then(Node::as_text)
    }

    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.root.get_path(&["metadata", "annotations", key]).and_then(Node::as_text)
    }

    /// The app's display name: `app.kubernetes.io/name`, the `app` label, `app.kubernetes.io/part-of`,
    /// the Helm release (`app.kubernetes.io/instance`), then (for workloads) the object's name.
    pub fn app_name(&self) -> Option<&'a str> {
        self.app_keys().into_iter().next()
    }

    /// Every name that ties this object to an app, most specific first. Two objects with any name in
    /// common belong to the same app: an app is often several components that share only
    /// `part-of` or the Helm release (Argo CD's server and repo-server), while some of its objects
    /// carry only `app.kubernetes.io/name`.
    pub fn app_keys(&self) -> Vec<&'a str> {
        let mut keys: Vec<&'a str> =
            ["app.kubernetes.io/name", "app", "app.kubernetes.io/part-of", "app.kubernetes.io/instance"]
                .iter()
                .filter_map(|label| self.label(label))
                .filter(|v| !v.is_empty())
                .collect();
        if keys.is_empty() && self.pod_spec_route().is_some() {
            keys.push(self.name);
        }
        keys.dedup();
        keys
    }

    /// Where this kind keeps its pod template, if it has one (see [`POD_TEMPLATE_KINDS`]).
    pub fn pod_spec_route(&self) -> Option<Route> {
        let r = Route::root();
        match (self.group(), self.kind) {
            ("", "Pod") => Some(r.key("spec")),
            ("apps" | "extensions", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
            | ("", "ReplicationController")
            | ("batch", "Job")
            | ("argoproj.io", "Rollout")
            | ("apps.openshift.io", "DeploymentConfig")
            | ("apps.kruise.io", "CloneSet" | "StatefulSet" | "DaemonSet" | "BroadcastJob") => {
                Some(r.key("spec").key("template").key("spec"))
            }
            ("batch", "CronJob") => Some(r.key("spec").key("jobTemplate").key("spec").key("template").key("spec")),
            ("keda.sh", "ScaledJob") => Some(r.key("spec").key("jobTargetRef").key("template").key("spec")),
            _ => None,
        }
    }

    pub fn pod_spec(&self) -> Option<PodSpec<'a>> {
        let route = self.pod_spec_route()?;
        let node = route.resolve(self.root)?;
        if !node.is_map() {
            return None;
        }
        let containers = list_containers(node, &route);
        Some(PodSpec { node, route, run_to_completion: self.runs_to_completion(), containers })
    }

    /// Jobs and CronJobs (and KEDA's ScaledJobs, OpenKruise's BroadcastJobs) run to completion; their
    /// containers have no readiness to report.
    pub fn runs_to_completion(&self) -> bool {
        matches!(
            (self.group(), self.kind),
            ("batch", "Job" | "CronJob") | ("keda.sh", "ScaledJob") | ("apps.kruise.io", "BroadcastJob")
        ) || (self.kind == "Pod"
            && self.root.get_path(&["spec", "restartPolicy"]).and_then(Node::as_text).is_some_and(|p| p != "Always"))
    }

    /// Kinds whose replica count an autoscaler may own.
    pub fn is_scalable_workload(&self) -> bool {
        matches!(
            (self.group(), self.kind),
            ("apps" | "extensions", "Deployment" | "StatefulSet" | "ReplicaSet")
                | ("argoproj.io", "Rollout")
                | ("apps.openshift.io", "DeploymentConfig")
                | ("apps.kruise.io", "CloneSet" | "StatefulSet")
        )
    }
}

/// The kinds whose pod template kpath reads (group, kind, where the pod spec is), for documentation.
pub const POD_TEMPLATE_KINDS: &[(&str, &str, &str)] = &[
    ("v1", "Pod", "spec"),
    ("v1", "ReplicationController", "spec.template.spec"),
    ("apps/v1", "Deployment, StatefulSet, DaemonSet, ReplicaSet", "spec.template.spec"),
    ("batch/v1", "Job", "spec.template.spec"),
    ("batch/v1", "CronJob", "spec.jobTemplate.spec.template.spec"),
    ("argoproj.io", "Rollout (Argo Rollouts)", "spec.template.spec"),
    ("apps.openshift.io", "DeploymentConfig (OpenShift)", "spec.template.spec"),
    ("apps.kruise.io", "CloneSet, StatefulSet, DaemonSet, BroadcastJob (OpenKruise)", "spec.template.spec"),
    ("keda.sh", "ScaledJob (KEDA)", "spec.jobTargetRef.template.spec"),
];

/// A pod spec inside an object, with its route from the document root.
#[derive(Debug, Clone)]
pub struct PodSpec<'a> {
    pub node: &'a Node,
    pub route: Route,
    /// True for Jobs, CronJobs and Pods that do not restart: no readiness or liveness expected.
    pub run_to_completion: bool,
    containers: Vec<Container<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerRole {
    /// `spec.containers[]`.
    Main,
    /// `spec.initContainers[]` that runs to completion before the pod starts.
    Init,
    /// `spec.initContainers[]` with `restartPolicy: Always`: runs alongside the main containers.
    Sidecar,
}

#[derive(Debug, Clone)]
pub struct Container<'a> {
    pub node: &'a Node,
    pub route: Route,
    pub role: ContainerRole,
    pub name: &'a str,
}

impl<'a> Container<'a> {
    /// Long-running: main containers and native sidecars of pods that do not run to completion.
    pub fn is_long_running(&self, pod: &PodSpec<'_>) -> bool {
        !pod.run_to_completion && self.role != ContainerRole::Init
    }

    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.node.get(key)
    }
}

impl<'a> PodSpec<'a> {
    /// All containers: main ones first, then init containers and sidecars, in document order.
    pub fn containers(&self) -> &[Container<'a>] {
        &self.containers
    }

    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.node.get(key)
    }
}

/// Reads a pod spec's containers once; rules share the list through [`PodSpec::containers`].
fn list_containers<'a>(node: &'a Node, route: &Route) -> Vec<Container<'a>> {
    let mut out = Vec::new();
    for (field, default_role) in [("containers", ContainerRole::Main), ("initContainers", ContainerRole::Init)] {
        let Some(list) = node.get(field) else { continue };
        for (i, node) in list.items().iter().enumerate() {
            if !node.is_map() {
                continue;
            }
            let role = if default_role == ContainerRole::Init
                && node.get("restartPolicy").and_then(Node::as_text) == Some("Always")
            {
                ContainerRole::Sidecar
            } else {
                default_role
            };
            let name = node.get("name").and_then(Node::as_text).unwrap_or("");
            out.push(Container { node, route: route.key(field).index(i), role, name });
        }
    }
    out
}

/// Kinds known to be cluster-scoped (built-in and well-known custom resources, see [`kinds`]). A
/// custom resource kpath does not know is not cluster-scoped here; `namespace-missing` then reads the
/// CustomResourceDefinitions among the checked files.
pub fn is_cluster_scoped(api_version: &str, kind: &str) -> bool {
    kinds::known_scope(api_version, kind) == Some(kinds::Scope::Cluster)
}
