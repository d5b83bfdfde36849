//! Test support for the App, compiled only for tests and the App benchmark (`fake-github` feature): the fake
//! GitHub, its OpenAPI check, git's smart HTTP server, the test bed, and the end-to-end and replica scenarios.

#[cfg(test)]
mod e2e;
pub mod fake_github;
pub mod git_http;
pub mod openapi;
#[cfg(test)]
mod replicas;
pub mod testbed;
