//! `iam-trust-policy-unscoped`: an IRSA trust policy that does not pin the role to one ServiceAccount
//! (`<provider>:sub`) and to the STS audience (`<provider>:aud`).

use super::{Check, Emitter, Example, IamCx, Rule};
use crate::finding::Severity;
use crate::yaml::{Node, Route};

pub static RULE: Rule = Rule {
    id: "iam-trust-policy-unscoped",
    section: "Service Accounts and AWS IAM Roles",
    severity: Severity::Error,
    summary: "IRSA trust policy does not limit the role to one ServiceAccount and the STS audience",
    why: "A cluster's OIDC provider signs a token for every ServiceAccount in every namespace. A trust \
policy that allows `sts:AssumeRoleWithWebIdentity` from that provider without a `:sub` condition naming \
one `system:serviceaccount:<namespace>:<name>` (or with a wildcard in it) lets any pod in the cluster, \
including ones in namespaces you do not control, take the role and its permissions. Without an `:aud` \
condition of `sts.amazonaws.com`, tokens minted for other audiences are accepted too. The point of IRSA is \
that one ServiceAccount in one namespace gets one role; an unscoped trust policy undoes that.",
    fix: "Add a `StringEquals` condition on `<provider>:sub` with the exact \
`system:serviceaccount:<namespace>:<serviceaccount>` value and on `<provider>:aud` with \
`sts.amazonaws.com`. List several exact ServiceAccounts if the role is really shared, never a wildcard.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "iam-trust-policy-unscoped/bad",
        files: &[(
            "trust-policy.json",
            include_str!("../../fixtures/rules/iam-trust-policy-unscoped/bad/trust-policy.json"),
        )],
    },
    good: Example {
        dir: "iam-trust-policy-unscoped/good",
        files: &[(
            "trust-policy.json",
            include_str!("../../fixtures/rules/iam-trust-policy-unscoped/good/trust-policy.json"),
        )],
    },
    check: Check::Iam(check),
};

/// OIDC providers of CI systems and identity platforms: their subjects are repositories, pipelines or
/// users, not ServiceAccounts, so this rule's `system:serviceaccount` scoping does not apply.
const NON_KUBERNETES_PROVIDERS: &[&str] = &[
    "token.actions.githubusercontent.com",
    "gitlab.com",
    "app.terraform.io",
    "accounts.google.com",
    "oidc.circleci.com",
    "api.bitbucket.org",
    "vstoken.dev.azure.com",
    "sts.windows.net",
];

const WEB_IDENTITY: &str = "sts:AssumeRoleWithWebIdentity";

/// A scalar or a list of scalars (IAM accepts both almost everywhere).
fn texts(node: Option<&Node>) -> Vec<&str> {
    match node {
        Some(n) if n.is_seq() => n.items().iter().filter_map(Node::as_text).collect(),
        Some(n) => n.as_text().into_iter().collect(),
        None => Vec::new(),
    }
}

/// IAM's wildcard match (`*` any run, `?` one character), case-insensitive as action names are.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Condition operators that require a key to match: `StringEquals`, `StringLike`, their
/// `IgnoreCase`/`IfExists` variants and `ForAnyValue:`/`ForAllValues:` forms. (A `*` counts as a
/// wildcard under any of them: under `StringEquals` it matches no real ServiceAccount, so it is a
/// mistake either way.)
fn is_positive_operator(op: &str) -> bool {
    let op = op.strip_prefix("ForAnyValue:").or_else(|| op.strip_prefix("ForAllValues:")).unwrap_or(op);
    let op = op.strip_suffix("IfExists").unwrap_or(op);
    matches!(op, "StringEquals" | "StringEqualsIgnoreCase" | "StringLike")
}

/// `system:serviceaccount:<namespace>:<name>` with both parts given and no wildcard.
fn names_one_serviceaccount(value: &str) -> bool {
    let Some(rest) = value.strip_prefix("system:serviceaccount:") else { return false };
    let Some((namespace, name)) = rest.split_once(':') else { return false };
    let exact = |s: &str| !s.is_empty() && !s.contains(['*', '?', ':']);
    exact(namespace) && exact(name)
}

#[derive(Debug, PartialEq, Eq)]
enum Scope {
    Missing,
    Wildcard,
    Scoped,
}

/// How well the statement's conditions on `<provider>:<claim>` pin the claim: scoped when some
/// positive condition block requires every allowed value to pass `exact`.
fn claim_scope(condition: Option<&Node>, provider: &str, claim: &str, exact: impl Fn(&str) -> bool) -> Scope {
    let wanted = format!("{provider}:{claim}");
    let mut scope = Scope::Missing;
    for block in condition.map(Node::entries).unwrap_or_default() {
        if !block.key.as_key().is_some_and(is_positive_operator) {
            continue;
        }
        // Condition keys are case-insensitive; the last duplicate is the one IAM keeps.
        let Some(entry) = block
            .value
            .entries()
            .iter()
            .rev()
            .find(|e| e.key.as_key().is_some_and(|k| k.eq_ignore_ascii_case(&wanted)))
        else {
            continue;
        };
        let values = texts(Some(&entry.value));
        if !values.is_empty() && values.iter().all(|v| exact(v)) {
            return Scope::Scoped;
        }
        scope = Scope::Wildcard;
    }
    scope
}

fn check(cx: &IamCx<'_>, out: &mut Emitter<'_>) {
    let Some(statements) = cx.root.get("Statement") else { return };
    let list: Vec<(&Node, Route)> = if statements.is_seq() {
        statements.items().iter().enumerate().map(|(i, s)| (s, Route::root().key("Statement").index(i))).collect()
    } else {
        vec![(statements, Route::root().key("Statement"))]
    };
    for (statement, route) in list {
        check_statement(statement, route, out);
    }
}

fn check_statement(statement: &Node, route: Route, out: &mut Emitter<'_>) {
    let allows = statement.get("Effect").and_then(Node::as_text).is_some_and(|e| e.eq_ignore_ascii_case("Allow"));
    let web_identity = texts(statement.get("Action")).iter().any(|a| wildcard_match(a, WEB_IDENTITY));
    if !allows || !web_identity {
        return;
    }
    let federated = texts(statement.get("Principal").and_then(|p| p.get("Federated")));
    let condition = statement.get("Condition");
    for principal in federated {
        let Some((_, provider)) = principal.split_once("oidc-provider/") else { continue };
        let host = provider.split('/').next().unwrap_or(provider);
        if provider.is_empty() || NON_KUBERNETES_PROVIDERS.iter().any(|p| host.eq_ignore_ascii_case(p)) {
            continue;
        }
        let sub = claim_scope(condition, provider, "sub", names_one_serviceaccount);
        let aud = claim_scope(condition, provider, "aud", |v| v == "sts.amazonaws.com");
        let mut problems = Vec::new();
        match sub {
            Scope::Scoped => {}
            Scope::Missing => problems.push(
                "it has no `:sub` condition naming one `system:serviceaccount:<namespace>:<name>`, so any \
                 ServiceAccount in the cluster can assume the role",
            ),
            Scope::Wildcard => problems.push(
                "its `:sub` condition allows a wildcard or a subject other than one \
                 `system:serviceaccount:<namespace>:<name>`, so ServiceAccounts it was not meant for can assume \
                 the role",
            ),
        }
        if aud != Scope::Scoped {
            problems.push("it has no `:aud` condition equal to `sts.amazonaws.com`");
        }
        if !problems.is_empty() {
            let at = if condition.is_some() { route.key("Condition") } else { route.clone() };
            out.at(
                at,
                format!("statement `{route}` trusts OIDC provider `{provider}` too broadly: {}", problems.join("; ")),
            );
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::iam_findings;

    const P: &str = "oidc.eks.eu-west-1.amazonaws.com/id/ABC";

    fn policy(action: &str, condition: &str) -> String {
        format!(
            r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": {{"Federated": "arn:aws:iam::1:oidc-provider/{P}"}}, "Action": {action}, "Condition": {condition}}}]}}"#
        )
    }

    const ACTION: &str = r#""sts:AssumeRoleWithWebIdentity""#;

    #[test]
    fn exact_sub_and_aud_pass() {
        let c = format!(
            r#"{{"StringEquals": {{"{P}:sub": "system:serviceaccount:shop:checkout", "{P}:aud": "sts.amazonaws.com"}}}}"#
        );
        assert!(iam_findings(&RULE, &policy(ACTION, &c)).is_empty());
        // A list of exact ServiceAccounts is still scoped; condition keys are case-insensitive.
        let c = format!(
            r#"{{"StringEquals": {{"{P}:SUB": ["system:serviceaccount:shop:a", "system:serviceaccount:shop:b"]}}, "StringLike": {{"{P}:aud": "sts.amazonaws.com"}}}}"#
        );
        assert!(iam_findings(&RULE, &policy(ACTION, &c)).is_empty());
    }

    #[test]
    fn missing_sub_is_reported_at_the_condition() {
        let c = format!(r#"{{"StringEquals": {{"{P}:aud": "sts.amazonaws.com"}}}}"#);
        let found = iam_findings(&RULE, &policy(ACTION, &c));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].route.as_ref().map(ToString::to_string).as_deref(), Some("Statement[0].Condition"));
        let m = &found[0].message;
        assert!(
            m.starts_with(&format!(
                "statement `Statement[0]` trusts OIDC provider `{P}` too broadly: it has no `:sub`"
            )),
            "{m}"
        );
        assert!(!m.contains(":aud`"), "{m}");
    }

    #[test]
    fn wildcard_subjects_count_as_unscoped() {
        for sub in
            ["system:serviceaccount:*:checkout", "system:serviceaccount:shop:*", "system:serviceaccount:shop:check?ut"]
        {
            for op in ["StringLike", "StringEquals"] {
                let c = format!(r#"{{"{op}": {{"{P}:sub": "{sub}", "{P}:aud": "sts.amazonaws.com"}}}}"#);
                let found = iam_findings(&RULE, &policy(ACTION, &c));
                assert_eq!(found.len(), 1, "{op} {sub}");
                assert!(found[0].message.contains("allows a wildcard"), "{}", found[0].message);
            }
        }
        // An exact StringEquals next to a wildcard StringLike still pins it: conditions are ANDed.
        let c = format!(
            r#"{{"StringLike": {{"{P}:sub": "system:serviceaccount:shop:*"}}, "StringEquals": {{"{P}:sub": "system:serviceaccount:shop:a", "{P}:aud": "sts.amazonaws.com"}}}}"#
        );
        assert!(iam_findings(&RULE, &policy(ACTION, &c)).is_empty());
    }

    #[test]
    fn missing_condition_and_list_actions() {
        let found = iam_findings(
            &RULE,
            &format!(
                r#"{{"Statement": {{"Effect": "Allow", "Principal": {{"Federated": "arn:aws:iam::1:oidc-provider/{P}"}}, "Action": ["sts:TagSession", "sts:AssumeRoleWithWebIdentity"]}}}}"#
            ),
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].route.as_ref().map(ToString::to_string).as_deref(), Some("Statement"));
        assert!(found[0].message.contains("; it has no `:aud`"), "{}", found[0].message);
        assert_eq!(
            iam_findings(&RULE, &policy(r#""sts:*""#, "{}")).len(),
            1,
            "a wildcard action includes web identity"
        );
    }

    #[test]
    fn the_last_duplicate_is_what_counts() {
        // The guideline's example: the second key replaces the first, leaving no `:sub` and no `:aud`.
        let c = format!(
            r#"{{"StringEquals": {{"{P}:sub": "system:serviceaccount:shop:a", "{P}:sub": "sts.amazonaws.com"}}}}"#
        );
        let found = iam_findings(&RULE, &policy(ACTION, &c));
        assert_eq!(found.len(), 1);
        assert!(found[0].message.contains("allows a wildcard"), "{}", found[0].message);
    }

    #[test]
    fn other_statements_are_out_of_scope() {
        let deny = format!(
            r#"{{"Statement": [{{"Effect": "Deny", "Principal": {{"Federated": "arn:aws:iam::1:oidc-provider/{P}"}}, "Action": {ACTION}}}]}}"#
        );
        let service = r#"{"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#;
        let github = r#"{"Statement": [{"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"}, "Action": "sts:AssumeRoleWithWebIdentity"}]}"#;
        let other_action = format!(
            r#"{{"Statement": [{{"Effect": "Allow", "Principal": {{"Federated": "arn:aws:iam::1:oidc-provider/{P}"}}, "Action": "sts:TagSession"}}]}}"#
        );
        for text in [deny.as_str(), service, github, other_action.as_str()] {
            assert!(iam_findings(&RULE, text).is_empty(), "{text}");
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("sts:*", WEB_IDENTITY));
        assert!(wildcard_match("*", WEB_IDENTITY));
        assert!(wildcard_match("STS:assumerolewith*", WEB_IDENTITY));
        assert!(!wildcard_match("sts:AssumeRole", WEB_IDENTITY));
        assert!(!wildcard_match("iam:*", WEB_IDENTITY));
    }
}
