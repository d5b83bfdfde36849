//! The GitHub client's GraphQL: the pull request's review threads looked up by their first comment's id,
//! and resolved (GitHub's REST API cannot resolve a thread).

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::transport::{Failure, MAX_PAGES};
use super::{GitHub, GitHubError, repo_route};

impl GitHub {
    /// Resolves the review threads that start with the comments `comment_ids` (GraphQL: GitHub's REST API
    /// cannot), reading the pull request's threads once. Returns how many were found; a thread already
    /// resolved is left as it is.
    pub async fn resolve_threads(&self, repo: &str, number: u64, comment_ids: &[u64]) -> Result<usize, GitHubError> {
        let operation = format!("resolving {} review thread(s) on {repo}#{number}", comment_ids.len());
        let mut wanted: std::collections::HashSet<u64> = comment_ids.iter().copied().collect();
        let mut found = 0;
        let (owner, name) = repo_route(repo, &operation).map(|_| repo.split_once('/').unwrap_or_default())?;
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            if wanted.is_empty() {
                break;
            }
            let query = json!({
                "query": THREADS_QUERY,
                "variables": { "owner": owner, "name": name, "number": number, "cursor": cursor },
            });
            let query = &query;
            let page: RawThreadsData = self.retrying(&operation, |_| async move { self.graphql(query).await }).await?;
            let threads = page.repository.and_then(|r| r.pull_request).map(|p| p.review_threads);
            let Some(threads) = threads else { break };
            for thread in &threads.nodes {
                let first = thread.comments.nodes.first().and_then(|c| c.full_database_id);
                if !first.is_some_and(|id| wanted.remove(&id)) {
                    continue;
                }
                found += 1;
                if !thread.is_resolved {
                    let mutation = json!({ "query": RESOLVE_MUTATION, "variables": { "id": thread.id } });
                    let mutation = &mutation;
                    let _: Value = self.retrying(&operation, |_| async move { self.graphql(mutation).await }).await?;
                }
            }
            if !threads.page_info.has_next_page {
                break;
            }
            cursor = threads.page_info.end_cursor;
        }
        Ok(found)
    }

    /// A GraphQL request; errors GitHub reports in the answer's `errors` are failures not worth retrying.
    pub(super) async fn graphql<T: DeserializeOwned>(&self, body: &Value) -> Result<T, Failure> {
        let answer: RawGraphql<T> = self.post(GRAPHQL_ROUTE, body).await?;
        match (answer.data, answer.errors) {
            (Some(data), None) => Ok(data),
            (_, Some(errors)) => {
                let messages: Vec<String> = errors.into_iter().map(|e| e.message).collect();
                Err(Failure::Other(format!("GraphQL: {}", messages.join("; "))))
            }
            (None, None) => Err(Failure::Other("GraphQL: an answer without data".to_string())),
        }
    }
}

/// GitHub's GraphQL endpoint, relative to the REST base (`/api/graphql` on GitHub Enterprise Server, which
/// the request layer rewrites).
const GRAPHQL_ROUTE: &str = "/graphql";

/// A pull request's review threads, each with its first comment's REST id. `fullDatabaseId`, not
/// `databaseId`: the latter is a 32-bit `Int` that GitHub's schema deprecates, and review comment ids
/// passed 2^31 long ago, so GitHub answers it with null and an error.
pub(super) const THREADS_QUERY: &str = "query($owner: String!, $name: String!, $number: Int!, $cursor: String) { \
repository(owner: $owner, name: $name) { pullRequest(number: $number) { \
reviewThreads(first: 100, after: $cursor) { pageInfo { hasNextPage endCursor } \
nodes { id isResolved comments(first: 1) { nodes { fullDatabaseId } } } } } } }";

const RESOLVE_MUTATION: &str =
    "mutation($id: ID!) { resolveReviewThread(input: { threadId: $id }) { thread { id isResolved } } }";
#[derive(Deserialize)]
struct RawGraphql<T> {
    data: Option<T>,
    errors: Option<Vec<RawGraphqlError>>,
}

#[derive(Deserialize)]
struct RawGraphqlError {
    message: String,
}

#[derive(Deserialize)]
struct RawThreadsData {
    repository: Option<RawThreadsRepo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawThreadsRepo {
    pull_request: Option<RawThreadsPull>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawThreadsPull {
    review_threads: RawThreads,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawThreads {
    page_info: RawPageInfo,
    nodes: Vec<RawThread>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawThread {
    id: String,
    is_resolved: bool,
    comments: RawThreadComments,
}

#[derive(Deserialize)]
struct RawThreadComments {
    nodes: Vec<RawThreadComment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawThreadComment {
    /// The comment's REST id. A `BigInt`, which GitHub's GraphQL encodes as a string
    /// (<https://docs.github.com/en/graphql/reference/scalars#bigint>); a number is read too.
    #[serde(default, deserialize_with = "big_int")]
    full_database_id: Option<u64>,
}

/// A GraphQL `BigInt`: a decimal string (as GitHub sends it) or a JSON number; null or anything else is `None`.
fn big_int<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum BigInt {
        Text(String),
        Number(u64),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Option::<BigInt>::deserialize(deserializer)? {
        Some(BigInt::Text(text)) => text.trim().parse().ok(),
        Some(BigInt::Number(n)) => Some(n),
        Some(BigInt::Other(_)) | None => None,
    })
}
