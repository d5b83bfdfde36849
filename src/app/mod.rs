//! The GitHub App side of kpath (`kpath serve`): webhooks in (signature-checked, de-duplicated, routed
//! to jobs), a queue keyed by pull request, workers that fetch, review and post to GitHub, and `/kpath`
//! commands.

pub mod commands;
pub mod events;
pub mod fetch;
pub mod github;
pub mod logging;
pub mod metrics;
pub mod queue;
pub mod recent;
pub mod serve;
pub mod server;
pub mod setup;
pub mod store;
#[cfg(any(test, feature = "fake-github"))]
pub mod testing;
pub mod webhook;
pub mod worker;

#[cfg(test)]
mod tests {
    use crate::yaml::{self, Node};

    /// The app manifest asks for exactly the permissions kpath needs, for every event it handles, and points
    /// GitHub at no page of `kpath serve`.
    #[test]
    fn app_manifest_is_least_privilege_and_complete() {
        let root =
            yaml::parse_single(include_str!("../../app-manifest.yml")).ok().flatten().expect("the manifest parses");
        let permissions: Vec<(String, String)> = root
            .get("default_permissions")
            .map(Node::entries)
            .unwrap_or_default()
            .iter()
            .map(|e| (e.key.as_key().unwrap_or("").to_string(), e.value.as_text().unwrap_or("").to_string()))
            .collect();
        let expected = [("checks", "write"), ("pull_requests", "write"), ("contents", "read"), ("metadata", "read")];
        assert_eq!(permissions, expected.map(|(k, v)| (k.to_string(), v.to_string())).to_vec());
        let events: Vec<&str> =
            root.get("default_events").map(Node::items).unwrap_or_default().iter().filter_map(Node::as_text).collect();
        for handled in ["pull_request", "check_suite", "check_run", "issue_comment"] {
            assert!(events.contains(&handled), "{handled} is handled but not subscribed to");
        }
        assert_eq!(root.get_path(&["hook_attributes", "active"]).and_then(Node::as_bool), Some(true));
        // `kpath setup` fills in the redirect to its own loopback page; kpath has no post-installation page.
        for filled_or_absent in ["redirect_url", "setup_url", "setup_on_update", "callback_urls"] {
            assert!(root.get(filled_or_absent).is_none(), "{filled_or_absent} is in the manifest");
        }
    }
}
