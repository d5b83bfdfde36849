//! The renderers kpath ships, in the order they look at a tree. The engine takes this list; it names none of
//! them itself.

use crate::config::Config;
use crate::render::Renderer;

/// Every built-in renderer, set up with the tools `config` names (`--helm`, …).
pub fn builtin(config: &Config) -> Vec<Box<dyn Renderer>> {
    let mut renderers: Vec<Box<dyn Renderer>> = vec![
        Box::new(crate::helm::check::HelmRenderer::new(config.helm.binary.clone())),
        Box::new(crate::kustomize::Kustomize::new(config.helm.kubectl.clone())),
    ];
    // Argo CD and Flux objects: their deployments replace the plain units of the roots they deploy.
    renderers.extend(crate::gitops::deploy::renderers(config));
    renderers
}
