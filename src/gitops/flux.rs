//! Placeholder until the Flux reader lands: finds nothing, substitutes nothing.
pub fn declared(
    _t: &dyn crate::render::Tree,
    _s: &crate::gitops::Settings,
) -> (Vec<crate::gitops::Declared>, Vec<crate::render::Problem>) {
    (Vec::new(), Vec::new())
}
pub fn substitute(text: &str, _v: &std::collections::BTreeMap<String, String>) -> Result<String, String> {
    Ok(text.to_string())
}
