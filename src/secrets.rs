//! Detection of secret material shared by the secret rules: names that say "this is sensitive"
//! (`DB_PASSWORD`, `apiKey`, `client-secret`) and values shaped like a credential (AWS key ids,
//! GitHub/Slack/Stripe tokens, PEM private keys, JWTs, URLs with a password).
//!
//! Nothing here formats a value: callers learn *that* something is sensitive and *what kind* it is (a
//! fixed description), so no report can leak the secret it found. The only functions that return values
//! ([`credential_values`], [`embedded_secret_values`]) feed `crate::redact`, which removes them from output.

use std::ops::Range;

/// Environment variables through which the AWS SDKs read static credentials. `aws-static-credentials`
/// owns these names; the other secret rules leave them alone so one mistake gives one finding.
pub const AWS_CREDENTIAL_NAMES: &[&str] =
    &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY", "AWS_SECRET_KEY"];

pub fn is_aws_credential_name(name: &str) -> bool {
    AWS_CREDENTIAL_NAMES.contains(&name)
}

/// Words that mark a name as sensitive on their own.
const MARKERS: &[&str] = &[
    "PASSWORD",
    "PASSWORDS",
    "PASSWD",
    "PASSPHRASE",
    "SECRET",
    "SECRETS",
    "TOKEN",
    "TOKENS",
    "APIKEY",
    "APIKEYS",
    "PRIVATEKEY",
    "SECRETKEY",
    "ACCESSKEY",
    "CREDENTIAL",
    "CREDENTIALS",
    "CREDS",
    "AUTHTOKEN",
    "ACCESSTOKEN",
    "REFRESHTOKEN",
    "CLIENTSECRET",
];

/// `<word>_KEY` pairs that name key material (`API_KEY`, `PRIVATE_KEY`, …).
const KEY_PREFIXES: &[&str] =
    &["API", "PRIVATE", "ACCESS", "SECRET", "ENCRYPTION", "SIGNING", "MASTER", "AUTH", "SESSION"];

/// Words that, after the sensitive word, make the name describe a secret rather than hold one:
/// `TOKEN_TTL`, `PASSWORD_MIN_LENGTH`, `JWT_SECRET_NAME`, `API_KEY_HEADER`, `TOKEN_URL`.
const DESCRIPTORS: &[&str] = &[
    "NAME",
    "NAMES",
    "REF",
    "REFS",
    "ARN",
    "NAMESPACE",
    "TTL",
    "EXPIRY",
    "EXPIRES",
    "EXPIRE",
    "EXPIRATION",
    "EXPIRED",
    "LIFETIME",
    "DURATION",
    "VALIDITY",
    "AGE",
    "MAXAGE",
    "TIMEOUT",
    "INTERVAL",
    "LENGTH",
    "LEN",
    "SIZE",
    "BITS",
    "MIN",
    "MAX",
    "COUNT",
    "LIMIT",
    "RETRIES",
    "ATTEMPTS",
    "ENABLED",
    "ENABLE",
    "DISABLED",
    "DISABLE",
    "REQUIRED",
    "ENFORCED",
    "POLICY",
    "ROTATION",
    "HEADER",
    "TYPE",
    "KIND",
    "MODE",
    "URL",
    "URI",
    "ENDPOINT",
    "HOST",
    "PORT",
    "ISSUER",
    "AUDIENCE",
    "SCOPE",
    "SCOPES",
    "ALGORITHM",
    "ALG",
    "FIELD",
    "PARAM",
    "PARAMETER",
    "PREFIX",
    "SUFFIX",
    "FORMAT",
    "STORE",
    "PROVIDER",
    "BACKEND",
    "VERSION",
    "MINUTES",
    "SECONDS",
    "HOURS",
    "DAYS",
    "MS",
    "SEC",
    "SECS",
    "MINS",
    "PATTERN",
    "REGEX",
    "COMPLEXITY",
    "STRENGTH",
    "CMD",
    "COMMAND",
    "METHOD",
    "IP",
    "IPS",
    "CIDR",
    "CIDRS",
    "ALLOWLIST",
    "WHITELIST",
    "USER",
    "USERNAME",
];

/// Words that, right before the sensitive word, make the name a setting about secrets:
/// `ALLOW_EMPTY_PASSWORD`, `CASSANDRA_NUM_TOKENS`, `MAX_TOKENS`, and Helm's `checksum/secret` annotation
/// (a hash that makes pods restart when the Secret changes, not the secret).
const QUALIFIERS: &[&str] = &["NUM", "NUMBER", "MAX", "MIN", "ALLOW", "NO", "EMPTY", "SKIP", "CHECKSUM"];

/// Words that, right before `SECRET`, make the name hold the *name* of a Kubernetes Secret:
/// `existingSecret`, `imagePullSecrets`, `tlsSecret`, `servingCertificateSecret`.
const SECRET_OBJECT_QUALIFIERS: &[&str] = &["EXISTING", "PULL", "TLS", "CERT", "CERTIFICATE"];

/// Well-known variables whose name says "token" but whose value is configuration.
const KNOWN_NOT_SECRET: &[&str] = &[
    // An identifier that keeps etcd clusters apart, documented as not secret.
    "ETCD_INITIAL_CLUSTER_TOKEN",
    // The token *type* (`simple`, or `jwt,…` with a key path).
    "ETCD_AUTH_TOKEN",
];

/// Words that, after the sensitive word, say the variable holds where the secret lives
/// (`DB_PASSWORD_FILE: /run/secrets/db`). They only excuse a value that is a path.
const LOCATORS: &[&str] =
    &["FILE", "FILES", "PATH", "DIR", "DIRECTORY", "FILENAME", "LOCATION", "MOUNT", "MOUNTPATH", "FOLDER"];

/// Splits a name into upper-case words: `dbPassword` → `DB PASSWORD`, `api-key` → `API KEY`,
/// `APIKey` → `API KEY`, `spring.datasource.password` → `SPRING DATASOURCE PASSWORD`.
fn words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if c.is_uppercase() && !current.is_empty() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                out.push(std::mem::take(&mut current));
            }
        }
        current.extend(c.to_uppercase());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Words that, after `KEY`, say the name holds the key itself: `OCI_CLI_KEY_CONTENT`, `SSH_KEY_DATA`.
const KEY_MATERIAL: &[&str] = &["CONTENT", "CONTENTS", "DATA", "MATERIAL", "PEM", "B64", "BASE64", "BYTES"];

/// Words that, before a final `KEY`, make it a key of something that is not a credential: a database's
/// `PRIMARY_KEY`, a queue's `ROUTING_KEY`, a cache's `CACHE_KEY`, a site key that is public by design.
const NOT_SECRET_KEYS: &[&str] = &[
    "PUBLIC",
    "PUB",
    "PARTITION",
    "SORT",
    "PRIMARY",
    "FOREIGN",
    "ROUTING",
    "CACHE",
    "HASH",
    "LOOKUP",
    "GROUP",
    "LABEL",
    "ANNOTATION",
    "TOPOLOGY",
    "IDEMPOTENCY",
    "OBJECT",
    "SITE",
    "MAP",
    "CONFIG",
    "CONFIGMAP",
    "SELECTOR",
    "SHARD",
    "BUCKET",
    "INDEX",
    "ROW",
    "COLUMN",
    "UNIQUE",
    "DEDUP",
    "DEDUPLICATION",
    "CORRELATION",
    "TRACE",
    "STATE",
    "LOCK",
    "LEADER",
    "ELECTION",
    "METRIC",
    "METRICS",
    "FEATURE",
    "FLAG",
    "TRANSLATION",
    "I18N",
    "MESSAGE",
    "QUEUE",
    "TOPIC",
    "STREAM",
    "EVENT",
    "REDIS",
    "S3",
    "FILE",
    "PATH",
    "HOTKEY",
    "SHORTCUT",
    "SORTING",
    "NAMESPACE",
];

/// Words after a key's name that make it the key's identifier, not the key: `SIGNING_KEY_ID`, `key-id`.
const KEY_IDENTIFIERS: &[&str] = &["ID", "IDS", "IDENTIFIER", "FINGERPRINT", "ALIAS", "ARN", "VERSION"];

/// Index of the last word that makes the name sensitive, if any, and whether it does so only weakly:
/// a final `KEY` after a word that says nothing (`AZURE_BATCH_KEY`, `STRIPE_KEY`) holds a credential when
/// its value has the shape of one (see [`looks_like_key_material`]).
fn last_marker(words: &[String]) -> Option<(usize, bool)> {
    let mut found = None;
    for (i, w) in words.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| words[p].as_str());
        let strong = MARKERS.contains(&w.as_str())
            || w.contains("PASSWORD")
            || w.contains("PASSWD")
            // `PWD` alone is the shell's working directory; `MYSQL_PWD`, `DB_PWD` are passwords.
            || (w == "PWD" && i > 0)
            || (w == "KEY" && prev.is_some_and(|p| KEY_PREFIXES.contains(&p)))
            || (w == "KEY" && i > 0 && words.get(i + 1).is_some_and(|n| KEY_MATERIAL.contains(&n.as_str())));
        let weak = w == "KEY" && i + 1 == words.len() && prev.is_some_and(|p| !NOT_SECRET_KEYS.contains(&p));
        if strong {
            found = Some((i, false));
        } else if weak && found.is_none() {
            found = Some((i, true));
        }
    }
    found
}

/// A value with the shape of key material rather than of a name, an id or a sentence: one word of at
/// least 20 characters, mixing letters and digits (or base64's `+`, `/`, `=`), not a path or a URL.
fn looks_like_key_material(value: &str) -> bool {
    let v = value.trim();
    v.len() >= 20
        && !v.contains(char::is_whitespace)
        && !v.contains("://")
        && !v.starts_with('/')
        && v.chars().any(|c| c.is_ascii_digit())
        && v.chars().any(|c| c.is_ascii_alphabetic())
        && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_' | '.'))
        // `my-service-partition-1`: lower-case words joined by dashes name something.
        && !(v.contains('-') && v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
}

/// A GPG key id (8 or 16 hex digits, or a 40-digit fingerprint), optionally `0x`-prefixed.
fn is_key_id(value: &str) -> bool {
    let v = value.trim();
    let v = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")).unwrap_or(v);
    matches!(v.len(), 8 | 16 | 40) && v.chars().all(|c| c.is_ascii_hexdigit())
}

/// How a name relates to secret material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameClass {
    /// Not about secrets.
    Plain,
    /// Holds a secret (`DB_PASSWORD`).
    Holds,
    /// Holds a secret when the value has the shape of key material (`AZURE_BATCH_KEY`).
    HoldsIfShaped,
    /// Holds where a secret is kept (`DB_PASSWORD_FILE`): fine when the value is a path.
    Locates,
}

fn classify(name: &str) -> NameClass {
    if KNOWN_NOT_SECRET.contains(&name) {
        return NameClass::Plain;
    }
    let words = words(name);
    let Some((marker, weak)) = last_marker(&words) else { return NameClass::Plain };
    let after = &words[marker + 1..];
    let before = marker.checked_sub(1).and_then(|i| words.get(i)).map_or("", String::as_str);
    let names_a_secret_object =
        matches!(words[marker].as_str(), "SECRET" | "SECRETS") && SECRET_OBJECT_QUALIFIERS.contains(&before);
    let identifies_a_key =
        words[marker].ends_with("KEY") && after.first().is_some_and(|w| KEY_IDENTIFIERS.contains(&w.as_str()));
    if QUALIFIERS.contains(&before)
        || names_a_secret_object
        || identifies_a_key
        || after.iter().any(|w| DESCRIPTORS.contains(&w.as_str()))
    {
        NameClass::Plain
    } else if after.iter().any(|w| LOCATORS.contains(&w.as_str())) {
        NameClass::Locates
    } else if weak {
        NameClass::HoldsIfShaped
    } else {
        NameClass::Holds
    }
}

/// True when the name alone says it holds a secret, giving `*_FILE`/`*_PATH` names the benefit of
/// the doubt (for references whose value is not in the manifest, e.g. `configMapKeyRef`).
pub fn is_sensitive_name(name: &str) -> bool {
    classify(name) == NameClass::Holds
}

/// Does the name say the key is a signing key (GPG/PGP), whose settings often hold only the key's id?
fn names_a_signing_key(name: &str) -> bool {
    words(name).iter().any(|w| matches!(w.as_str(), "SIGNING" | "GPG" | "PGP" | "GNUPG"))
}

/// True when `name` is sensitive and `value` is a literal that could be the secret itself: not empty,
/// not a reference to something else (`$(VAR)`, `${VAR}`, `{{ … }}`), and not a path when the name
/// says it holds a location (`DB_PASSWORD_FILE: /run/secrets/db`).
pub fn is_sensitive_assignment(name: &str, value: &str) -> bool {
    let value = value.trim();
    if value.is_empty() || is_reference(value) || is_boolean(value) {
        return false;
    }
    match classify(name) {
        NameClass::Plain => false,
        // `GOOGLE_APPLICATION_CREDENTIALS: /var/secrets/google/key.json` names a mounted file, and
        // `commit-signing-key: 3AA5C34371567BD2` names a GPG key by its id.
        NameClass::Holds => !(is_absolute_path(value) || (names_a_signing_key(name) && is_key_id(value))),
        NameClass::HoldsIfShaped => looks_like_key_material(value) && !is_key_id(value),
        NameClass::Locates => !looks_like_path(value),
    }
}

/// A value that only refers to something else: Kubernetes `$(VAR)` expansion, `${VAR}` or `$VAR`
/// substitution (envsubst, Flux, Spring, shell), an unrendered template, or SOPS ciphertext.
pub fn is_reference(value: &str) -> bool {
    let v = value.trim();
    let shell_variable =
        v.strip_prefix('$').and_then(|r| r.chars().next()).is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    shell_variable
        || v.starts_with("$(")
        || v.starts_with("${")
        || v.starts_with("{{")
        || v.starts_with("ENC[")
        || v.starts_with("%(")
}

/// `yes`, `false`, `on`…: a switch (`ALLOW_EMPTY_PASSWORD: "yes"`), not a secret.
fn is_boolean(value: &str) -> bool {
    ["true", "false", "yes", "no", "on", "off", "y", "n"].iter().any(|b| value.eq_ignore_ascii_case(b))
}

/// `/var/run/secrets/token`: an absolute path of plain segments (not base64, which may contain `/` but
/// also `+` or `=`, and rarely two slashes in the shape of a path).
fn is_absolute_path(value: &str) -> bool {
    value.starts_with('/')
        && value.matches('/').count() >= 2
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
}

fn looks_like_path(value: &str) -> bool {
    let v = value.trim();
    if v.contains(char::is_whitespace) {
        return false;
    }
    v.starts_with('/')
        || v.starts_with("./")
        || v.starts_with("../")
        || v.starts_with("~/")
        || v.contains('/')
        || v.contains('\\')
        // `token.txt`, `creds.json`: a file name with an extension.
        || v.rsplit_once('.').is_some_and(|(stem, ext)| {
            !stem.is_empty() && (1..=5).contains(&ext.len()) && ext.chars().all(|c| c.is_ascii_alphanumeric())
                && ext.chars().any(|c| c.is_ascii_alphabetic())
        })
}

/// What kind of credential the value contains, if it contains one: a fixed description such as
/// "a GitHub token", never the value.
pub fn credential_kind(value: &str) -> Option<&'static str> {
    CREDENTIAL_KINDS.iter().find(|(find, _)| !find(value).is_empty()).map(|&(_, kind)| kind)
}

/// The credentials inside a value (the token itself, a URL's password, a whole PEM block), for
/// redaction (`crate::redact`) and for placing a finding on the value that holds them
/// ([`crate::finding::Finding::part`], never shown): never for a message.
pub fn credential_values(value: &str) -> Vec<&str> {
    CREDENTIAL_KINDS.iter().flat_map(|(find, _)| find(value)).filter_map(|r| value.get(r)).collect()
}

/// Where one kind of credential sits in a value (byte ranges).
type Finder = fn(&str) -> Vec<Range<usize>>;

/// Each credential finder with the description it reports, in the order they are tried.
const CREDENTIAL_KINDS: &[(Finder, &str)] = &[
    (pem_private_keys, "a PEM private key"),
    (aws_access_key_ids, "an AWS access key ID"),
    (github_tokens, "a GitHub token"),
    (slack_tokens, "a Slack token"),
    (stripe_live_keys, "a Stripe live secret key"),
    (jwts, "a JSON Web Token"),
    (url_passwords, "a URL with an embedded password"),
    (connection_string_passwords, "a connection string with a password"),
];

/// A line of a configuration file (the value of a ConfigMap key such as `application.properties`)
/// that assigns a secret: `password=…`, `api_key: …`, `"token": "…"`, `export DB_PASSWORD=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedSecret {
    /// The setting's name as written (never the value).
    pub setting: String,
    /// 1-based line within the value.
    pub line: usize,
}

/// Settings in configuration-file text that hold a literal secret (by the same name tests as env vars).
/// With `quoted_only` (program code: Python, JavaScript), only quoted strings count as literals: a bare
/// value there is a variable or an expression.
pub fn embedded_secrets(text: &str, quoted_only: bool) -> Vec<EmbeddedSecret> {
    scan_settings(text, quoted_only)
        .map(|(line, setting, _)| EmbeddedSecret { setting: setting.to_string(), line })
        .collect()
}

/// The literal values of [`embedded_secrets`], for redaction only (`crate::redact`).
pub fn embedded_secret_values(text: &str, quoted_only: bool) -> Vec<&str> {
    scan_settings(text, quoted_only).map(|(_, _, value)| value).collect()
}

/// (1-based line, setting, literal value) of each setting in `text` that holds a literal secret.
fn scan_settings(text: &str, quoted_only: bool) -> impl Iterator<Item = (usize, &str, &str)> {
    text.lines().enumerate().filter_map(move |(i, raw)| {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') || line.starts_with("//") {
            return None;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start_matches("- ");
        let (key, value) = split_assignment(line)?;
        let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
        // Dotted settings (`spring.datasource.password`) are judged by their last part.
        let last = key.rsplit('.').next().unwrap_or(key);
        let (value, quoted) = strip_value(value);
        if quoted_only && !quoted {
            return None;
        }
        // Shell expansion, command substitution, calls, lists and maps compute a value; they are not one.
        let computed =
            value.contains(['$', '`']) || (!quoted && (value.contains('(') || value.starts_with(['[', '{'])));
        let secret = !computed
            && !key.is_empty()
            && !key.contains(char::is_whitespace)
            && !names_a_secret_object(last, value)
            && is_sensitive_assignment(last, value);
        secret.then_some((i + 1, key, value))
    })
}

/// In configuration files, `signerSecret: app-signer-ca` names a Kubernetes Secret: the setting ends in
/// `Secret` and the value has the shape of an object name (lower-case words joined by `-`).
fn names_a_secret_object(setting: &str, value: &str) -> bool {
    let ends_in_secret = words(setting).last().is_some_and(|w| w == "SECRET" || w == "SECRETS");
    ends_in_secret
        && value.contains('-')
        && value.len() <= 253
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

/// Splits `key = value` or `key: value` at the first separator.
fn split_assignment(line: &str) -> Option<(&str, &str)> {
    let eq = line.find('=');
    // A YAML/JSON colon is followed by a space (or ends the line); `jdbc:postgresql` is not one.
    let colon = line
        .char_indices()
        .find_map(|(i, c)| (c == ':' && line[i + 1..].chars().next().is_none_or(char::is_whitespace)).then_some(i));
    let at = match (eq, colon) {
        (Some(e), Some(c)) => e.min(c),
        (Some(e), None) => e,
        (None, Some(c)) => c,
        (None, None) => return None,
    };
    Some((&line[..at], &line[at + 1..]))
}

/// The literal of an assignment: without trailing commas and comments, quotes removed (and whether
/// there were quotes).
fn strip_value(value: &str) -> (&str, bool) {
    let mut v = value.trim();
    if let Some(i) = v.find(" #") {
        v = &v[..i];
    }
    v = v.trim().trim_end_matches(',').trim();
    let quoted =
        v.len() >= 2 && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')));
    if quoted { (&v[1..v.len() - 1], true) } else { (v, false) }
}

fn pem_private_keys(value: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = value[from..].find("-----BEGIN ").map(|i| i + from) {
        let after = i + "-----BEGIN ".len();
        let label = value[after..].split("-----").next().unwrap_or("");
        if label.contains("PRIVATE KEY") && label.len() < 40 {
            // The block runs to its END line (or to the end of the value when it is cut short).
            let end_line = format!("-----END {label}-----");
            let end = value[after..].find(&end_line).map_or(value.len(), |e| after + e + end_line.len());
            out.push(i..end);
            from = end;
        } else {
            from = after;
        }
    }
    out
}

fn is_word_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Positions where `prefix` starts a token (not preceded by a letter, digit or underscore).
fn token_starts<'a>(value: &'a str, prefix: &'a str) -> impl Iterator<Item = usize> + 'a {
    let bytes = value.as_bytes();
    value.match_indices(prefix).map(|(i, _)| i).filter(move |&i| i == 0 || !is_word_char(bytes[i - 1]))
}

/// Length of the run of bytes from `start` that satisfy `ok`.
fn run_len(value: &str, start: usize, ok: impl Fn(u8) -> bool) -> usize {
    value.as_bytes().get(start..).unwrap_or(&[]).iter().take_while(|&&b| ok(b)).count()
}

fn aws_access_key_ids(value: &str) -> Vec<Range<usize>> {
    ["AKIA", "ASIA"]
        .iter()
        .flat_map(|prefix| {
            token_starts(value, prefix).filter(|&i| {
                let body = run_len(value, i + 4, |b| b.is_ascii_uppercase() || b.is_ascii_digit());
                body == 16 && !value.as_bytes().get(i + 20).copied().is_some_and(is_word_char)
            })
        })
        .map(|i| i..i + 20)
        .collect()
}

fn github_tokens(value: &str) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]
        .iter()
        .flat_map(|p| token_starts(value, p))
        .filter_map(|i| {
            let body = run_len(value, i + 4, |b| b.is_ascii_alphanumeric());
            (body >= 36).then_some(i..i + 4 + body)
        })
        .collect();
    out.extend(token_starts(value, "github_pat_").filter_map(|i| {
        let body = run_len(value, i + 11, |b| b.is_ascii_alphanumeric() || b == b'_');
        (body >= 22).then_some(i..i + 11 + body)
    }));
    out
}

fn slack_tokens(value: &str) -> Vec<Range<usize>> {
    token_starts(value, "xox")
        .filter_map(|i| {
            let bytes = value.as_bytes();
            let body = run_len(value, i + 5, |b| b.is_ascii_alphanumeric() || b == b'-');
            (matches!(bytes.get(i + 3), Some(b'a' | b'b' | b'p' | b'r' | b's'))
                && bytes.get(i + 4) == Some(&b'-')
                && body >= 10)
                .then_some(i..i + 5 + body)
        })
        .collect()
}

fn stripe_live_keys(value: &str) -> Vec<Range<usize>> {
    ["sk_live_", "rk_live_"]
        .iter()
        .flat_map(|p| token_starts(value, p))
        .filter_map(|i| {
            let body = run_len(value, i + 8, |b| b.is_ascii_alphanumeric());
            (body >= 16).then_some(i..i + 8 + body)
        })
        .collect()
}

fn jwts(value: &str) -> Vec<Range<usize>> {
    let b64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    // `-` ends a word but not a base64url run, so `eyJ-eyJ-…` starts a token every 4 bytes inside one
    // run. A start inside the header run of a start that failed ends at the same place, so it fails too:
    // skipping those keeps the scan linear (it was quadratic: 200 KB took 30 s; found while writing the fuzz targets).
    let mut scanned_to = 0;
    token_starts(value, "eyJ")
        .filter_map(|i| {
            if i < scanned_to {
                return None;
            }
            let header = run_len(value, i, b64url);
            scanned_to = i + header;
            let dot = i + header;
            if header < 10 || value.as_bytes().get(dot) != Some(&b'.') || !value[dot + 1..].starts_with("eyJ") {
                return None;
            }
            let payload = run_len(value, dot + 1, b64url);
            let second_dot = dot + 1 + payload;
            if payload < 10 || value.as_bytes().get(second_dot) != Some(&b'.') {
                return None;
            }
            let signature = run_len(value, second_dot + 1, b64url);
            Some(i..second_dot + 1 + signature)
        })
        .collect()
}

fn url_passwords(value: &str) -> Vec<Range<usize>> {
    let bytes = value.as_bytes();
    value
        .match_indices("://")
        .filter_map(|(i, _)| {
            // The scheme: letters, digits, `+`, `-`, `.`, starting with a letter.
            let scheme_len = bytes[..i]
                .iter()
                .rev()
                .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
                .count();
            if scheme_len == 0 || !bytes[i - scheme_len].is_ascii_alphabetic() {
                return None;
            }
            let start = i + 3;
            let rest = &value[start..];
            let authority_end =
                rest.find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace()).unwrap_or(rest.len());
            let authority = &rest[..authority_end];
            let (userinfo, host) = authority.rsplit_once('@')?;
            let (user, password) = userinfo.split_once(':')?;
            let real = !host.is_empty()
                && !password.is_empty()
                && !is_reference(password)
                && !password.contains("$(")
                && !password.contains("${")
                && !password.chars().all(|c| c == '*' || c == 'x' || c == 'X');
            let at = start + user.len() + 1;
            real.then_some(at..at + password.len())
        })
        .collect()
}

/// The password of an ADO.NET/ODBC-style connection string (`Server=db;User Id=app;Password=…;`): a
/// `Password=` or `Pwd=` setting at the start or after a `;`, up to the next `;`.
fn connection_string_passwords(value: &str) -> Vec<Range<usize>> {
    let lower = value.to_ascii_lowercase();
    let mut out = Vec::new();
    for key in ["password=", "pwd="] {
        for (i, _) in lower.match_indices(key) {
            // The setting starts the value or follows `;` (spaces allowed): `db_password=` is not one.
            let before = lower[..i].trim_end_matches([' ', '\t']);
            if !(before.is_empty() || before.ends_with(';')) {
                continue;
            }
            // Connection strings have more than one setting: a lone `password=x` is a properties line.
            if !lower.contains(';') {
                continue;
            }
            let start = i + key.len();
            let end = value[start..].find(';').map_or(value.len(), |e| start + e);
            let password = value[start..end].trim();
            let real = !password.is_empty()
                && !is_reference(password)
                && !password.contains("$(")
                && !password.contains("${")
                && !password.chars().all(|c| c == '*' || c == 'x' || c == 'X');
            if real {
                out.push(start..end);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_need_key_shaped_values() {
        let key = "q0Zx9vL3mT8rB2nK7wY4pD6sF1hJ5cA0eG9uR3tV8xM=";
        for name in ["AZURE_BATCH_KEY", "STRIPE_KEY", "SENDGRID_KEY", "azureBatchKey"] {
            assert!(is_sensitive_assignment(name, key), "{name}");
            // A name, a path, a sentence or a short word is not key material.
            for value in
                ["orders-cache-v2-partition", "/etc/keys/batch.pem", "see the vault", "abc", "3AA5C34371567BD2"]
            {
                assert!(!is_sensitive_assignment(name, value), "{name}={value}");
            }
        }
        for name in ["CACHE_KEY", "PARTITION_KEY", "JWT_PUBLIC_KEY", "RECAPTCHA_SITE_KEY", "SIGNING_KEY_ID", "key-id"] {
            assert!(!is_sensitive_assignment(name, key), "{name}");
        }
        // Key content is a secret whatever its shape; strong names keep flagging short values.
        assert!(is_sensitive_assignment("OCI_CLI_KEY_CONTENT", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"));
        assert!(is_sensitive_assignment("SSH_KEY_DATA", "abc"));
        assert!(is_sensitive_assignment("API_KEY", "abc123"));
        assert!(is_sensitive_assignment("SECRET_STRIPE_KEY", "abc123"), "a strong marker is not weakened");
        assert!(is_sensitive_assignment("AZURE_CREDENTIALS", "{clientSecret: x}"));
        // A signing key's id or path is not the key; the key itself is.
        assert!(!is_sensitive_assignment("git.commit-signing-key", "3AA5C34371567BD2"));
        assert!(!is_sensitive_assignment("git.commit-signing-key", "/app/config/gpg/private.key"));
        assert!(is_sensitive_assignment("git.commit-signing-key", "not-an-id-but-a-secret"));
    }

    #[test]
    fn connection_strings_with_passwords() {
        let kind = |v: &str| credential_kind(v);
        assert_eq!(
            kind("Server=db;Database=shop;User Id=app;Password=hunter2;"),
            Some("a connection string with a password")
        );
        assert_eq!(kind("Host=db; Username=app; Pwd=hunter2"), Some("a connection string with a password"));
        assert_eq!(credential_values("Server=db;Password=hunter2;Port=1"), ["hunter2"]);
        for value in [
            "Server=db;Database=shop;Integrated Security=true;",
            "Server=db;Password=;",
            "Server=db;Password=${DB_PASSWORD};",
            "Server=db;Password=****;",
            "password=hunter2",
            "Server=db;db_password=x",
        ] {
            assert_eq!(kind(value), None, "{value}");
        }
    }

    #[test]
    fn words_split_every_naming_style() {
        assert_eq!(words("dbPassword"), ["DB", "PASSWORD"]);
        assert_eq!(words("APIKey"), ["API", "KEY"]);
        assert_eq!(words("api-key"), ["API", "KEY"]);
        assert_eq!(words("spring.datasource.password"), ["SPRING", "DATASOURCE", "PASSWORD"]);
        assert_eq!(words("OAUTH2_CLIENT_SECRET"), ["OAUTH2", "CLIENT", "SECRET"]);
    }

    #[test]
    fn sensitive_names() {
        for name in [
            "PASSWORD",
            "DB_PASSWORD",
            "dbPassword",
            "POSTGRES_PASSWD",
            "MYSQL_PWD",
            "JWT_SECRET",
            "GITHUB_TOKEN",
            "STRIPE_API_KEY",
            "apiKey",
            "SENDGRID_APIKEY",
            "TLS_PRIVATE_KEY",
            "GOOGLE_APPLICATION_CREDENTIALS_JSON",
            "SECRET_KEY_BASE",
            "client-secret",
            "ENCRYPTION_KEY",
            "VAULT_SECRET_ID",
            "rootpassword",
        ] {
            assert!(is_sensitive_name(name), "{name}");
            assert!(is_sensitive_assignment(name, "s3cr3t-value"), "{name}");
        }
    }

    #[test]
    fn names_that_describe_rather_than_hold_a_secret() {
        for name in [
            "PWD",
            "TOKEN_TTL",
            "ACCESS_TOKEN_EXPIRE_MINUTES",
            "PASSWORD_MIN_LENGTH",
            "JWT_SECRET_NAME",
            "DB_SECRET_REF",
            "API_KEY_HEADER",
            "TOKEN_URL",
            "OAUTH_TOKEN_ENDPOINT",
            "SECRET_STORE",
            "TOKEN_EXPIRY",
            "PASSWORD_RESET_ENABLED",
            "TOKENIZERS_PARALLELISM",
            "PUBLIC_KEY",
            "LOG_LEVEL",
            "KEYCLOAK_REALM",
            "SECRETARY_EMAIL",
            "ALLOW_EMPTY_PASSWORD",
            "PHPMYADMIN_ALLOW_NO_PASSWORD",
            "CASSANDRA_NUM_TOKENS",
            "AIRFLOW__API__SECRET_KEY_CMD",
            "PARSE_SERVER_MASTER_KEY_IPS",
            "REGISTRY_CREDENTIAL_USERNAME",
            "FAB_PASSWORD_HASH_METHOD",
            "existingSecret",
            "imagePullSecrets",
            "tlsSecret",
            "servingCertificateSecret",
            "ETCD_INITIAL_CLUSTER_TOKEN",
            "checksum/secret",
        ] {
            assert!(!is_sensitive_assignment(name, "whatever"), "{name}");
        }
    }

    #[test]
    fn locations_are_fine_when_they_hold_a_path() {
        assert!(!is_sensitive_assignment("DB_PASSWORD_FILE", "/run/secrets/db"));
        assert!(!is_sensitive_assignment("GOOGLE_APPLICATION_CREDENTIALS_PATH", "./creds.json"));
        assert!(!is_sensitive_assignment("TOKEN_FILE", "token.txt"));
        assert!(!is_sensitive_assignment("SECRETS_DIR", "/etc/secrets"));
        assert!(is_sensitive_assignment("DB_PASSWORD_FILE", "hunter2"), "not a path: the secret itself");
        assert!(!is_sensitive_name("DB_PASSWORD_FILE"));
        assert!(!is_sensitive_assignment("GOOGLE_APPLICATION_CREDENTIALS", "/var/secrets/google/key.json"));
        assert!(is_sensitive_assignment("DB_PASSWORD", "/9j/4AAQSkZJRg+=="), "base64, not a path");
    }

    #[test]
    fn empty_and_referenced_values_are_fine() {
        assert!(!is_sensitive_assignment("DB_PASSWORD", ""));
        assert!(!is_sensitive_assignment("DB_PASSWORD", "  "));
        assert!(!is_sensitive_assignment("DB_PASSWORD", "$(POSTGRES_PASSWORD)"));
        assert!(!is_sensitive_assignment("DB_PASSWORD", "${DB_PASSWORD}"));
        assert!(!is_sensitive_assignment("DB_PASSWORD", "{{ .Values.password }}"));
        assert!(!is_sensitive_assignment("DB_PASSWORD", "ENC[AES256_GCM,data:abc,type:str]"));
        assert!(!is_sensitive_assignment("DB_PASSWORD", "$POSTGRES_PASSWORD"));
        assert!(!is_sensitive_assignment("RABBITMQ_SECURE_PASSWORD", "yes"));
        assert!(!is_sensitive_assignment("REDIS_PASSWORD", "false"));
        assert!(is_sensitive_assignment("DB_PASSWORD", "$1abc"));
    }

    #[test]
    fn aws_key_ids() {
        assert_eq!(credential_kind("AKIAIOSFODNN7EXAMPLE"), Some("an AWS access key ID"));
        assert_eq!(credential_kind("key=ASIAY34FZKBOKMUTVV7A;"), Some("an AWS access key ID"));
        assert_eq!(credential_kind("AKIAIOSFODNN7EXAMPLE1"), None, "21 characters: not a key id");
        assert_eq!(credential_kind("XAKIAIOSFODNN7EXAMPLE"), None);
        assert_eq!(credential_kind("AKIA-short"), None);
    }

    #[test]
    fn vendor_tokens() {
        assert_eq!(credential_kind("ghp_abcdefghijklmnopqrstuvwxyz0123456789"), Some("a GitHub token"));
        assert_eq!(credential_kind("github_pat_11ABCDEFG0123456789_abcdefghijklmnop"), Some("a GitHub token"));
        assert_eq!(credential_kind("ghp_short"), None);
        assert_eq!(credential_kind("xoxb-123456789012-abcdefghij"), Some("a Slack token"));
        assert_eq!(credential_kind("xoxz-123456789012-abcdefghij"), None);
        assert_eq!(credential_kind("sk_live_abcdefghijklmnop1234"), Some("a Stripe live secret key"));
        assert_eq!(credential_kind("sk_test_abcdefghijklmnop1234"), None);
    }

    #[test]
    fn pem_private_keys() {
        assert_eq!(
            credential_kind("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n"),
            Some("a PEM private key")
        );
        assert_eq!(credential_kind("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn"), Some("a PEM private key"));
        assert_eq!(credential_kind("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"), None);
        assert_eq!(credential_kind("-----BEGIN PUBLIC KEY-----\nMIIB"), None);
    }

    #[test]
    fn jwts() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(credential_kind(jwt), Some("a JSON Web Token"));
        assert_eq!(credential_kind(&format!("Bearer {jwt}")), Some("a JSON Web Token"));
        assert_eq!(credential_kind("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMjM0NTY3ODkwIn0."), Some("a JSON Web Token"));
        assert_eq!(credential_kind("eyJhbGciOiJIUzI1NiJ9"), None, "a header alone is not a token");
        assert_eq!(credential_kind("eyJ.eyJ.x"), None);
    }

    /// Found while writing the fuzz targets: `eyJ-` repeated starts a token every 4 bytes of one base64url run, and each start
    /// scanned to the run's end (quadratic: a 200 KB ConfigMap value took 30 s). 1 MB now takes one pass.
    #[test]
    fn long_runs_of_token_starts_are_scanned_once() {
        let run = "eyJ-".repeat(250_000);
        assert_eq!(credential_kind(&run), None);
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(credential_kind(&format!("{run} {jwt}")), Some("a JSON Web Token"));
        assert_eq!(credential_kind(&format!("{run}{jwt}")), Some("a JSON Web Token"));
    }

    #[test]
    fn urls_with_passwords() {
        assert_eq!(credential_kind("postgres://app:hunter2@db:5432/app"), Some("a URL with an embedded password"));
        assert_eq!(credential_kind("redis://:hunter2@redis:6379/0"), Some("a URL with an embedded password"));
        assert_eq!(credential_kind("amqp+ssl://user:pw@mq"), Some("a URL with an embedded password"));
        assert_eq!(credential_kind("postgres://app@db:5432/app"), None, "no password");
        assert_eq!(credential_kind("postgres://app:$(DB_PASSWORD)@db/app"), None, "a reference");
        assert_eq!(credential_kind("postgres://app:${DB_PASSWORD}@db/app"), None);
        assert_eq!(credential_kind("https://example.com/a:b@c"), None, "`@` in the path");
        assert_eq!(credential_kind("http://[::1]:8080/"), None);
        assert_eq!(credential_kind("https://user:****@host"), None, "masked");
        assert_eq!(credential_kind("://x:y@z"), None);
    }

    #[test]
    fn credential_values_are_the_tokens_themselves() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(credential_values(&format!("Bearer {jwt}")), [jwt]);
        assert_eq!(credential_values("postgres://app:hunter2@db:5432/app"), ["hunter2"]);
        assert_eq!(credential_values("key=AKIAIOSFODNN7EXAMPLE;"), ["AKIAIOSFODNN7EXAMPLE"]);
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----";
        assert_eq!(credential_values(&format!("x\n{pem}\ny")), [pem]);
        assert_eq!(credential_values("-----BEGIN EC PRIVATE KEY-----\nMHc"), ["-----BEGIN EC PRIVATE KEY-----\nMHc"]);
        assert!(credential_values("info").is_empty());
        let text = "password=hunter2\napi_key: \"abc123\"\nport=8080\n";
        assert_eq!(embedded_secret_values(text, false), ["hunter2", "abc123"]);
    }

    #[test]
    fn plain_values_are_not_credentials() {
        for v in ["", "info", "https://api.example.com/v1", "/run/secrets/db", "eyJ", "AKIA", "sk_live_"] {
            assert_eq!(credential_kind(v), None, "{v}");
        }
    }

    #[test]
    fn config_file_settings() {
        let text = "# db\nspring.datasource.url=jdbc:postgresql://db/app\nspring.datasource.password=hunter2\n\
                    token_ttl: 3600\napi_key: \"abc123\"\nexport DB_PASSWORD='x'\npassword: ${DB_PASSWORD}\n\
                    password:\n  \"clientSecret\": \"s\",\n\
                    PGPASSWORD=$PG psql\nx_password=`cat /f`\ndb_password = get_secret(\"x\")\n\
                    export ROOT_PASSWORD=\"$ROOT\"\nimage_pull_secrets = []\nusers = [\"a\"]\n";
        let found: Vec<(String, usize)> =
            embedded_secrets(text, false).into_iter().map(|e| (e.setting, e.line)).collect();
        assert_eq!(
            found,
            [
                ("spring.datasource.password".to_string(), 3),
                ("api_key".to_string(), 5),
                ("DB_PASSWORD".to_string(), 6),
                ("clientSecret".to_string(), 9),
            ]
        );
        let names = "names:\n  impersonationSignerSecret: rel-pinniped-signer-ca\n  clientSecret: Zx8-Qp2\n";
        let found: Vec<String> = embedded_secrets(names, false).into_iter().map(|e| e.setting).collect();
        assert_eq!(found, ["clientSecret"], "a Secret's name is not a secret");
        let code = "db_password = get_secret_value('x')\ntoken = some_variable\napi_key = \"abc\"\n";
        let found: Vec<String> = embedded_secrets(code, true).into_iter().map(|e| e.setting).collect();
        assert_eq!(found, ["api_key"]);
    }
}
