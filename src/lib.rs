//! kpath: golden-path review for GitOps repositories (Kubernetes manifests, Helm charts, Dockerfiles).
//!
//! The core (`yaml`, `model`, `rules`, `engine`) is pure and synchronous: it takes files and a config
//! and returns findings as data. Reporting (`report`) and the command line (`cli`) sit on top.

pub mod app;
pub mod cleanup;
pub mod cli;
pub mod cmdline;
pub mod config;
pub mod dockerfile;
pub mod engine;
pub mod finding;
pub mod gitops;
pub mod helm;
pub mod kustomize;
pub mod loader;
pub mod logtext;
pub mod model;
pub mod quantity;
pub mod redact;
pub mod render;
pub mod renderers;
pub mod report;
pub mod review;
pub mod rules;
pub mod secrets;
pub mod shell;
pub mod suppress;
#[cfg(test)]
pub(crate) mod testing;
pub mod yaml;
