//! `iam-trust-policy-duplicate-key`: an IAM policy document with the same key twice in one object.

use super::{Check, Emitter, Example, IamCx, Rule};
use crate::finding::Severity;
use crate::yaml::{Node, NodeKind, Route};

pub static RULE: Rule = Rule {
    id: "iam-trust-policy-duplicate-key",
    section: "Service Accounts and AWS IAM Roles",
    severity: Severity::Error,
    summary: "IAM policy repeats a key in one JSON object, so all but the last are ignored",
    why: "JSON does not forbid repeating a key, and IAM accepts such a document without complaint, but it \
keeps only the last value and drops the others. In a trust policy that usually means a condition silently \
disappears: writing the `:sub` key twice to allow two ServiceAccounts leaves only the second one able to \
assume the role, and two keys under `StringEquals` that should have been `:sub` and `:aud` leave one of \
the checks out entirely. The policy looks right on review and in the repository while AWS enforces \
something else.",
    fix: "Give each key once per object: put several allowed values in a JSON list under one key \
(`\"…:sub\": [\"system:serviceaccount:ns:a\", \"system:serviceaccount:ns:b\"]`), and check that the \
`:sub` and `:aud` condition keys are spelled differently. Validate the document with IAM Access Analyzer \
before applying it.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "iam-trust-policy-duplicate-key/bad",
        files: &[(
            "trust-policy.json",
            include_str!("../../fixtures/rules/iam-trust-policy-duplicate-key/bad/trust-policy.json"),
        )],
    },
    good: Example {
        dir: "iam-trust-policy-duplicate-key/good",
        files: &[(
            "trust-policy.json",
            include_str!("../../fixtures/rules/iam-trust-policy-duplicate-key/good/trust-policy.json"),
        )],
    },
    check: Check::Iam(check),
};

fn check(cx: &IamCx<'_>, out: &mut Emitter<'_>) {
    // Iterative walk: policy documents are shallow, but input depth is not ours to trust.
    let mut stack: Vec<(&Node, Route)> = vec![(cx.root, Route::root())];
    while let Some((node, route)) = stack.pop() {
        match &node.kind {
            NodeKind::Scalar(_) => {}
            NodeKind::Seq(items) => {
                for (i, item) in items.iter().enumerate().rev() {
                    stack.push((item, route.index(i)));
                }
            }
            NodeKind::Map(entries) => {
                // Linear in the keys however many there are (a scan per key would be quadratic).
                for (key, first, again) in crate::yaml::repeated_keys(entries) {
                    let place = if route.0.is_empty() { "the top level".to_string() } else { format!("`{route}`") };
                    out.at_pos(
                        again,
                        format!(
                            "key `{key}` appears again in {place} (first on line {}): IAM keeps only the last one \
                             and silently ignores the earlier value",
                            first.line
                        ),
                    );
                }
                for entry in entries.iter().rev() {
                    let key = entry.key.as_key().unwrap_or("");
                    stack.push((&entry.value, route.key(key)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::iam_findings;

    #[test]
    fn the_guidelines_own_example_is_caught_at_the_second_key() {
        let text = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": {"Federated": "arn:aws:iam::ACCOUNT_ID:oidc-provider/YOUR_OIDC_PROVIDER_URL"},
      "Action": "sts:AssumeRoleWithWebIdentity",
      "Condition": {
        "StringEquals": {
          "YOUR_OIDC_PROVIDER_URL/id/my-service-account": "system:serviceaccount:my-namespace:my-service-account",
          "YOUR_OIDC_PROVIDER_URL/id/my-service-account": "sts.amazonaws.com"
        }
      }
    }
  ]
}"#;
        let found = iam_findings(&RULE, text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].line, found[0].column), (11, 11));
        assert!(
            found[0].message.contains("`Statement[0].Condition.StringEquals` (first on line 10)"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn every_repeat_at_any_depth_is_reported() {
        let found = iam_findings(
            &RULE,
            r#"{"Version": "1", "Statement": [], "Version": "2", "Version": "3", "a": {"b": {"c": 1, "c": 2}}}"#,
        );
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].message.contains("the top level"));
        assert!(found[2].message.contains("`a.b`"));
    }

    #[test]
    fn distinct_keys_and_repeated_values_are_fine() {
        let found = iam_findings(
            &RULE,
            r#"{"Statement": [{"Condition": {"StringEquals": {"x:sub": ["a", "a"], "x:aud": "sts.amazonaws.com"}}}, {"Condition": {"StringEquals": {"x:sub": "b"}}}]}"#,
        );
        assert!(found.is_empty(), "{found:?}");
    }
}
