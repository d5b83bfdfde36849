//! Findings: what a rule says, where (file, line, column and symbolic route), and whether it is suppressed.

use std::fmt;

use serde::Serialize;

use crate::yaml::Route;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Notice,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Notice => "notice",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        match text {
            "notice" => Some(Severity::Notice),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identity of a Kubernetes object, as the API server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectId {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectId {
    /// The API group (`apps` for `apps/v1`, empty for the core group `v1`).
    pub fn group(&self) -> &str {
        match self.api_version.split_once('/') {
            Some((group, _)) => group,
            None => "",
        }
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Why a finding does not count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suppression {
    /// `comment`, `annotation` or `waiver`.
    pub kind: &'static str,
    pub reason: String,
}

/// One place a finding can be fixed or seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// `manifest` (a plain file), or what a renderer's source map says: `values` (a values-file key) and
    /// `template` (Helm), `patch`, `kustomization` and `resource` (Kustomize); `rendered` is the rendered
    /// document (`helm://release[/env]/templates/…`, `kustomize://root/…`).
    pub kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
    /// Path as given on the command line (relative paths stay relative), with `/` separators.
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// Route inside the YAML document, when the finding is about a manifest field.
    pub route: Option<Route>,
    pub object: Option<std::sync::Arc<ObjectId>>,
    pub help: std::borrow::Cow<'static, str>,
    pub suppressed: Option<Suppression>,
    /// Every place the finding can be fixed, most direct first; the first is `file:line:column`.
    /// Plain files have one (`manifest`); findings on rendered objects list their source places, then the
    /// rendered one.
    pub locations: Vec<Location>,
    /// Environments whose render produced this finding (Helm environments, Kustomize roots); empty outside them.
    pub environments: Vec<String>,
    /// Index of the YAML document in its file, for manifests.
    #[serde(skip)]
    pub document: Option<usize>,
    /// The rendered document the object was read from when `file` was moved to a source location:
    /// annotation suppression and facts are keyed by it.
    #[serde(skip)]
    pub origin: Option<String>,
    /// The text of the scalar at `route` that the finding is about, when the rule judges one part of a
    /// composite value (the `latest` tag of `app:latest`). A rendered scalar may be built from several
    /// template references (`{{ .Values.image.repository }}:{{ .Values.image.tag }}`): source maps place the
    /// finding on the one whose value produced this part. `None`: the whole value.
    #[serde(skip)]
    pub part: Option<String>,
}

impl Finding {
    pub fn counts(&self) -> bool {
        self.suppressed.is_none()
    }
}
