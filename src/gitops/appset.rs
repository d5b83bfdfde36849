//! Placeholder until the ApplicationSet expansion lands: expands nothing.
use std::collections::BTreeSet;
pub struct Generated {
    pub name: String,
    pub text: String,
    pub inputs: BTreeSet<String>,
}
#[derive(Default)]
pub struct Expansion {
    pub generated: Vec<Generated>,
    pub inputs: BTreeSet<String>,
    pub problems: Vec<crate::render::Problem>,
    pub skipped: Vec<(crate::gitops::At, String)>,
}
pub fn expand(
    _t: &dyn crate::render::Tree,
    _f: &str,
    _x: &str,
    _d: usize,
    _s: &crate::gitops::Settings,
    _h: Option<&crate::helm::Helm>,
) -> Expansion {
    Expansion::default()
}
