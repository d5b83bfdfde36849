//! `kpath review`: check base and head, diff the rendered objects, keep only what the pull request
//! introduces, and plan what a GitHub App would post.

pub mod context;
pub mod cost;
pub mod discovery;
#[cfg(test)]
mod gfm_tests;
pub mod git;
pub mod known;
pub mod model;
pub mod objdiff;
pub mod plan;
pub mod run;
