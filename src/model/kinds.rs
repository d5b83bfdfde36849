//! What kpath knows about kinds without seeing their definitions: which are cluster-scoped (built-in
//! and well-known custom resources), and which documents are configuration for a tool rather than
//! objects for the API server (kubeconfigs, Kustomizations, kind and k3d cluster files, …).
//!
//! Scopes come from the Kubernetes API reference (`kubectl api-resources --namespaced=false` on 1.34)
//! and from the CustomResourceDefinitions each project publishes; a custom resource that is in neither
//! list is judged by the CustomResourceDefinitions found among the checked files, and is otherwise
//! assumed namespaced, as most are.

/// Where objects of a kind live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Cluster,
    Namespaced,
}

/// The API groups Kubernetes itself serves (`""` is the core group).
/// <https://kubernetes.io/docs/reference/generated/kubernetes-api/>
const BUILT_IN_GROUPS: &[&str] = &[
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "extensions",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
];

/// Built-in kinds that are not namespaced; every other kind of a built-in group is.
const BUILT_IN_CLUSTER: &[(&str, &str)] = &[
    ("", "ComponentStatus"),
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("admissionregistration.k8s.io", "InitializerConfiguration"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("authentication.k8s.io", "SelfSubjectReview"),
    ("authentication.k8s.io", "TokenReview"),
    ("authorization.k8s.io", "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "SelfSubjectRulesReview"),
    ("authorization.k8s.io", "SubjectAccessReview"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("certificates.k8s.io", "ClusterTrustBundle"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("internal.apiserver.k8s.io", "StorageVersion"),
    ("networking.k8s.io", "IPAddress"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "ServiceCIDR"),
    ("node.k8s.io", "RuntimeClass"),
    ("policy", "PodSecurityPolicy"),
    ("extensions", "PodSecurityPolicy"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("resource.k8s.io", "DeviceClass"),
    ("resource.k8s.io", "DeviceTaintRule"),
    ("resource.k8s.io", "ResourceSlice"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("storage.k8s.io", "VolumeAttributesClass"),
    ("storagemigration.k8s.io", "StorageVersionMigration"),
];

/// Cluster-scoped kinds of well-known projects, from their published CustomResourceDefinitions. Their
/// namespaced kinds (Gateway API's `Gateway`, cert-manager's `Issuer`, Argo CD's `Application`, Flux's
/// objects, Prometheus Operator's monitors) are not listed: unknown kinds are namespaced by default.
const WELL_KNOWN_CLUSTER: &[(&str, &str)] = &[
    // Gateway API
    ("gateway.networking.k8s.io", "GatewayClass"),
    // Network policy API
    ("policy.networking.k8s.io", "AdminNetworkPolicy"),
    ("policy.networking.k8s.io", "BaselineAdminNetworkPolicy"),
    ("policy.networking.k8s.io", "ClusterNetworkPolicy"),
    // Volume snapshots
    ("snapshot.storage.k8s.io", "VolumeSnapshotClass"),
    ("snapshot.storage.k8s.io", "VolumeSnapshotContent"),
    ("groupsnapshot.storage.k8s.io", "VolumeGroupSnapshotClass"),
    ("groupsnapshot.storage.k8s.io", "VolumeGroupSnapshotContent"),
    // cert-manager and trust-manager
    ("cert-manager.io", "ClusterIssuer"),
    ("trust.cert-manager.io", "Bundle"),
    ("trust.cert-manager.io", "ClusterBundle"),
    // Kyverno
    ("kyverno.io", "ClusterPolicy"),
    ("kyverno.io", "ClusterCleanupPolicy"),
    ("kyverno.io", "ClusterBackgroundScanReport"),
    ("kyverno.io", "ClusterAdmissionReport"),
    ("reports.kyverno.io", "ClusterEphemeralReport"),
    ("policies.kyverno.io", "ValidatingPolicy"),
    ("policies.kyverno.io", "ImageValidatingPolicy"),
    ("policies.kyverno.io", "MutatingPolicy"),
    ("policies.kyverno.io", "GeneratingPolicy"),
    ("policies.kyverno.io", "DeletingPolicy"),
    ("wgpolicyk8s.io", "ClusterPolicyReport"),
    // OPA Gatekeeper (every constraint kind lives in `constraints.gatekeeper.sh`: see `is_cluster_group`)
    ("templates.gatekeeper.sh", "ConstraintTemplate"),
    ("mutations.gatekeeper.sh", "Assign"),
    ("mutations.gatekeeper.sh", "AssignMetadata"),
    ("mutations.gatekeeper.sh", "AssignImage"),
    ("mutations.gatekeeper.sh", "ModifySet"),
    ("expansion.gatekeeper.sh", "ExpansionTemplate"),
    ("externaldata.gatekeeper.sh", "Provider"),
    // External Secrets
    ("external-secrets.io", "ClusterSecretStore"),
    ("external-secrets.io", "ClusterExternalSecret"),
    ("external-secrets.io", "ClusterPushSecret"),
    ("generators.external-secrets.io", "ClusterGenerator"),
    // KEDA
    ("keda.sh", "ClusterTriggerAuthentication"),
    // Argo Workflows and Argo Rollouts
    ("argoproj.io", "ClusterWorkflowTemplate"),
    ("argoproj.io", "ClusterAnalysisTemplate"),
    // Crossplane
    ("apiextensions.crossplane.io", "CompositeResourceDefinition"),
    ("apiextensions.crossplane.io", "Composition"),
    ("apiextensions.crossplane.io", "CompositionRevision"),
    ("apiextensions.crossplane.io", "EnvironmentConfig"),
    ("apiextensions.crossplane.io", "ManagedResourceDefinition"),
    ("apiextensions.crossplane.io", "ManagedResourceActivationPolicy"),
    ("pkg.crossplane.io", "Provider"),
    ("pkg.crossplane.io", "ProviderRevision"),
    ("pkg.crossplane.io", "Configuration"),
    ("pkg.crossplane.io", "ConfigurationRevision"),
    ("pkg.crossplane.io", "Function"),
    ("pkg.crossplane.io", "FunctionRevision"),
    ("pkg.crossplane.io", "ControllerConfig"),
    ("pkg.crossplane.io", "DeploymentRuntimeConfig"),
    ("pkg.crossplane.io", "ImageConfig"),
    ("pkg.crossplane.io", "Lock"),
    // Karpenter
    ("karpenter.sh", "NodePool"),
    ("karpenter.sh", "NodeClaim"),
    ("karpenter.sh", "Provisioner"),
    ("karpenter.k8s.aws", "EC2NodeClass"),
    ("karpenter.k8s.aws", "AWSNodeTemplate"),
    ("karpenter.azure.com", "AKSNodeClass"),
    // Calico and the Tigera operator
    ("crd.projectcalico.org", "GlobalNetworkPolicy"),
    ("crd.projectcalico.org", "GlobalNetworkSet"),
    ("crd.projectcalico.org", "HostEndpoint"),
    ("crd.projectcalico.org", "IPPool"),
    ("crd.projectcalico.org", "IPReservation"),
    ("crd.projectcalico.org", "BGPConfiguration"),
    ("crd.projectcalico.org", "BGPPeer"),
    ("crd.projectcalico.org", "BGPFilter"),
    ("crd.projectcalico.org", "FelixConfiguration"),
    ("crd.projectcalico.org", "ClusterInformation"),
    ("crd.projectcalico.org", "KubeControllersConfiguration"),
    ("crd.projectcalico.org", "Tier"),
    ("crd.projectcalico.org", "CalicoNodeStatus"),
    ("projectcalico.org", "GlobalNetworkPolicy"),
    ("projectcalico.org", "GlobalNetworkSet"),
    ("projectcalico.org", "HostEndpoint"),
    ("projectcalico.org", "IPPool"),
    ("projectcalico.org", "BGPConfiguration"),
    ("projectcalico.org", "BGPPeer"),
    ("projectcalico.org", "FelixConfiguration"),
    ("projectcalico.org", "Tier"),
    ("operator.tigera.io", "Installation"),
    ("operator.tigera.io", "APIServer"),
    ("operator.tigera.io", "TigeraStatus"),
    ("operator.tigera.io", "Goldmane"),
    ("operator.tigera.io", "Whisker"),
    // Cilium
    ("cilium.io", "CiliumClusterwideNetworkPolicy"),
    ("cilium.io", "CiliumClusterwideEnvoyConfig"),
    ("cilium.io", "CiliumNode"),
    ("cilium.io", "CiliumIdentity"),
    ("cilium.io", "CiliumExternalWorkload"),
    ("cilium.io", "CiliumLoadBalancerIPPool"),
    ("cilium.io", "CiliumBGPPeeringPolicy"),
    ("cilium.io", "CiliumBGPClusterConfig"),
    ("cilium.io", "CiliumBGPPeerConfig"),
    ("cilium.io", "CiliumBGPAdvertisement"),
    ("cilium.io", "CiliumBGPNodeConfig"),
    ("cilium.io", "CiliumBGPNodeConfigOverride"),
    ("cilium.io", "CiliumL2AnnouncementPolicy"),
    ("cilium.io", "CiliumPodIPPool"),
    ("cilium.io", "CiliumCIDRGroup"),
    ("cilium.io", "CiliumEgressGatewayPolicy"),
    // Antrea
    ("crd.antrea.io", "ClusterNetworkPolicy"),
    ("crd.antrea.io", "ClusterGroup"),
    ("crd.antrea.io", "Tier"),
    ("crd.antrea.io", "ExternalIPPool"),
    ("crd.antrea.io", "IPPool"),
    ("crd.antrea.io", "Egress"),
    // Istio's Sail operator
    ("sailoperator.io", "Istio"),
    ("sailoperator.io", "IstioRevision"),
    ("sailoperator.io", "IstioRevisionTag"),
    ("sailoperator.io", "IstioCNI"),
    ("sailoperator.io", "ZTunnel"),
    // Tekton
    ("tekton.dev", "ClusterTask"),
    ("triggers.tekton.dev", "ClusterTriggerBinding"),
    ("triggers.tekton.dev", "ClusterInterceptor"),
    // Knative
    ("networking.internal.knative.dev", "ClusterDomainClaim"),
    // KubeVirt
    ("instancetype.kubevirt.io", "VirtualMachineClusterInstancetype"),
    ("instancetype.kubevirt.io", "VirtualMachineClusterPreference"),
    // Kueue and Volcano
    ("kueue.x-k8s.io", "ClusterQueue"),
    ("kueue.x-k8s.io", "ResourceFlavor"),
    ("kueue.x-k8s.io", "AdmissionCheck"),
    ("kueue.x-k8s.io", "Cohort"),
    ("kueue.x-k8s.io", "Topology"),
    ("kueue.x-k8s.io", "WorkloadPriorityClass"),
    ("scheduling.volcano.sh", "Queue"),
    // Capsule, HNC, node feature discovery
    ("capsule.clastix.io", "Tenant"),
    ("hnc.x-k8s.io", "HNCConfiguration"),
    ("nfd.k8s-sigs.io", "NodeFeatureRule"),
    // Trivy operator
    ("aquasecurity.github.io", "ClusterComplianceReport"),
    ("aquasecurity.github.io", "ClusterConfigAuditReport"),
    ("aquasecurity.github.io", "ClusterRbacAssessmentReport"),
    ("aquasecurity.github.io", "ClusterInfraAssessmentReport"),
    ("aquasecurity.github.io", "ClusterVulnerabilityReport"),
    ("aquasecurity.github.io", "ClusterSbomReport"),
    // CloudNativePG, Kong
    ("postgresql.cnpg.io", "ClusterImageCatalog"),
    ("configuration.konghq.com", "KongClusterPlugin"),
    // Operator Lifecycle Manager
    ("operators.coreos.com", "Operator"),
    ("operators.coreos.com", "OLMConfig"),
    // OpenShift
    ("project.openshift.io", "Project"),
    ("project.openshift.io", "ProjectRequest"),
    ("security.openshift.io", "SecurityContextConstraints"),
    ("user.openshift.io", "User"),
    ("user.openshift.io", "Group"),
    ("user.openshift.io", "Identity"),
    ("user.openshift.io", "UserIdentityMapping"),
    ("quota.openshift.io", "ClusterResourceQuota"),
    ("authorization.openshift.io", "ClusterRole"),
    ("authorization.openshift.io", "ClusterRoleBinding"),
    ("oauth.openshift.io", "OAuthClient"),
    ("image.openshift.io", "Image"),
    ("machineconfiguration.openshift.io", "MachineConfig"),
    ("machineconfiguration.openshift.io", "MachineConfigPool"),
    ("machineconfiguration.openshift.io", "KubeletConfig"),
    ("machineconfiguration.openshift.io", "ContainerRuntimeConfig"),
    ("console.openshift.io", "ConsoleLink"),
    ("console.openshift.io", "ConsoleNotification"),
    ("console.openshift.io", "ConsolePlugin"),
    ("console.openshift.io", "ConsoleCLIDownload"),
    ("console.openshift.io", "ConsoleQuickStart"),
];

/// Groups whose every kind is cluster-scoped: OpenShift's cluster configuration and Gatekeeper's
/// constraints (one kind per ConstraintTemplate, named by the template).
fn is_cluster_group(group: &str) -> bool {
    matches!(group, "config.openshift.io" | "operator.openshift.io" | "constraints.gatekeeper.sh")
}

/// The API group of an `apiVersion` (`""` for the core group's `v1`).
pub fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(g, _)| g)
}

/// The scope of a kind when kpath knows it: every built-in kind, and the well-known custom resources
/// listed above. `None` for other custom resources (read `spec.scope` from their definition).
pub fn known_scope(api_version: &str, kind: &str) -> Option<Scope> {
    let group = group_of(api_version);
    let listed = |table: &[(&str, &str)]| table.iter().any(|&(g, k)| g == group && k == kind);
    if BUILT_IN_GROUPS.contains(&group) {
        return Some(if listed(BUILT_IN_CLUSTER) { Scope::Cluster } else { Scope::Namespaced });
    }
    if listed(WELL_KNOWN_CLUSTER) || is_cluster_group(group) || is_crossplane_provider_config(group, kind) {
        return Some(Scope::Cluster);
    }
    None
}

/// Crossplane providers' `ProviderConfig` and `ProviderConfigUsage` are cluster-scoped, except in
/// Crossplane 2's namespaced `*.m.*` groups (`aws.m.upbound.io`).
fn is_crossplane_provider_config(group: &str, kind: &str) -> bool {
    matches!(kind, "ProviderConfig" | "ProviderConfigUsage" | "ClusterProviderConfig")
        && (group.ends_with(".upbound.io") || group.ends_with(".crossplane.io"))
        && (kind == "ClusterProviderConfig" || !group.contains(".m."))
}

/// What a document is when it is configuration for a tool, not an object for the API server: a
/// kubeconfig, a Kustomization, a component's configuration file, a local-cluster or dev-loop tool's
/// file. Such documents are not checked as objects. `None` for everything else.
pub fn tool_configuration(api_version: &str, kind: &str) -> Option<&'static str> {
    // Kustomize's plugin configuration is `apiVersion: builtin`, a group without a version.
    let group = if api_version == "builtin" { "builtin" } else { group_of(api_version) };
    let described = match (group, kind) {
        // kubectl's kubeconfig: `apiVersion: v1`, `kind: Config`.
        ("", "Config") => "a kubeconfig",
        // The API server reads audit policies from a file (`--audit-policy-file`).
        ("audit.k8s.io", "Policy") => "an audit policy file",
        // Kustomize's own files, and its plugin configuration (`apiVersion: builtin`).
        ("kustomize.config.k8s.io", _) => "a Kustomize file",
        ("builtin", _) => "a Kustomize plugin configuration",
        // Flux's CLI plugins read their settings from files such as `.fluxschema.yml`.
        (g, _) if g.ends_with(".plugin.fluxcd.io") => "a Flux CLI plugin configuration",
        // KRM function configuration and resource lists.
        ("config.kubernetes.io" | "fn.kpt.dev" | "kpt.dev", _) => "a KRM function or kpt file",
        // Client-side credential plugins' input and output.
        ("client.authentication.k8s.io", _) => "a client credential plugin document",
        // Local clusters and developer tools.
        ("kind.x-k8s.io", _) => "a kind cluster configuration",
        ("k3d.io", _) => "a k3d configuration",
        ("ctlptl.dev", _) => "a ctlptl configuration",
        ("skaffold", _) => "a Skaffold configuration",
        ("kuttl.dev", _) => "a KUTTL test file",
        ("chainsaw.kyverno.io" | "cli.kyverno.io", _) => "a Kyverno CLI or Chainsaw test file",
        ("meta.pkg.crossplane.io", _) => "a Crossplane package's metadata",
        ("kapp.k14s.io" | "kbld.k14s.io" | "vendir.k14s.io" | "imgpkg.carvel.dev" | "data.packaging.carvel.dev", _)
            if kind != "Package" && kind != "PackageMetadata" =>
        {
            "a Carvel tool configuration"
        }
        ("kubeadm.k8s.io", _) => "a kubeadm configuration",
        // `*.config.k8s.io` are the configuration files of Kubernetes' own components (kubelet,
        // kube-proxy, the scheduler, the API server's encryption and admission configuration, kubectl's
        // kuberc); no API server serves these groups.
        (g, _) if g.ends_with(".config.k8s.io") || g == "apiserver.k8s.io" => "a Kubernetes component's configuration",
        (g, _) if g.ends_with(".admission.k8s.io") || g == "admission.k8s.io" => "an admission configuration",
        _ => return None,
    };
    Some(described)
}

/// A Helm chart's metadata (`Chart.yaml`, `Chart.lock`) or repository index read as a manifest: no
/// `kind`, `apiVersion: v1`/`v2`, and the fields only those files have.
pub fn is_helm_file(root: &crate::yaml::Node) -> bool {
    let api_version = root.get("apiVersion").and_then(crate::yaml::Node::as_text);
    root.get("kind").is_none()
        && matches!(api_version, Some("v1" | "v2"))
        && ((root.get("name").is_some() && root.get("version").is_some())
            || root.get("entries").is_some()
            || (root.get("dependencies").is_some() && root.get("digest").is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert_eq!(known_scope("v1", "Namespace"), Some(Scope::Cluster));
        assert_eq!(known_scope("v1", "Service"), Some(Scope::Namespaced));
        assert_eq!(known_scope("apps/v1", "Deployment"), Some(Scope::Namespaced));
        assert_eq!(known_scope("gateway.networking.k8s.io/v1", "GatewayClass"), Some(Scope::Cluster));
        assert_eq!(known_scope("gateway.networking.k8s.io/v1", "Gateway"), None);
        assert_eq!(known_scope("cert-manager.io/v1", "ClusterIssuer"), Some(Scope::Cluster));
        assert_eq!(known_scope("constraints.gatekeeper.sh/v1beta1", "K8sRequiredLabels"), Some(Scope::Cluster));
        assert_eq!(known_scope("aws.upbound.io/v1beta1", "ProviderConfig"), Some(Scope::Cluster));
        assert_eq!(known_scope("aws.m.upbound.io/v1beta1", "ProviderConfig"), None);
        // Cluster API's `ClusterClass` is namespaced although its name starts with `Cluster`.
        assert_eq!(known_scope("cluster.x-k8s.io/v1beta1", "ClusterClass"), None);
        assert_eq!(known_scope("example.com/v1", "ClusterWidget"), None);
    }

    #[test]
    fn tool_files() {
        assert!(tool_configuration("v1", "Config").is_some());
        assert!(tool_configuration("kustomize.config.k8s.io/v1beta1", "Kustomization").is_some());
        assert!(tool_configuration("kustomize.config.k8s.io/v1alpha1", "Component").is_some());
        assert!(tool_configuration("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration").is_some());
        assert!(tool_configuration("audit.k8s.io/v1", "Policy").is_some());
        assert!(tool_configuration("kind.x-k8s.io/v1alpha4", "Cluster").is_some());
        assert!(tool_configuration("skaffold/v4beta11", "Config").is_some());
        assert!(tool_configuration("schema.plugin.fluxcd.io/v1beta1", "Config").is_some());
        assert!(tool_configuration("builtin", "LabelTransformer").is_some());
        // Flux's Kustomization is a real object.
        assert!(tool_configuration("kustomize.toolkit.fluxcd.io/v1", "Kustomization").is_none());
        assert!(tool_configuration("v1", "ConfigMap").is_none());
        assert!(tool_configuration("apps/v1", "Deployment").is_none());
    }
}
