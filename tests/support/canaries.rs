//! The canary corpus of the "no secret in any output" tests: a repository's base and head with a unique
//! canary string in every place a secret can hide (env, ConfigMaps, Secrets, Helm values and the
//! `fail` message that quotes one, Dockerfile `ENV`/`ARG`, an IAM policy, annotations, JSON manifests,
//! anchors, block scalars, flow mappings, a broken document, a renamed Secret, copies under harmless
//! keys). Generated here, never committed. Shared by `tests/secrets.rs` (`check`, `review`) and the App's
//! end-to-end test (`serve`).

#![allow(dead_code)]

use base64::Engine;

/// One canary: where it is planted, and the text that must never be output.
pub struct Canary {
    pub place: &'static str,
    pub text: String,
}

pub struct Corpus {
    pub base: Vec<(String, String)>,
    pub head: Vec<(String, String)>,
    pub canaries: Vec<Canary>,
}

impl Corpus {
    /// The canaries found in `output`, with where they were planted.
    pub fn leaks(&self, output: &str) -> Vec<String> {
        self.canaries.iter().filter(|c| output.contains(&c.text)).map(|c| format!("{} ({})", c.text, c.place)).collect()
    }
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

pub fn corpus() -> Corpus {
    let mut canaries = Vec::new();
    let mut canary = |place: &'static str, text: String| -> String {
        canaries.push(Canary { place, text: text.clone() });
        text
    };
    let env = canary("env value", "kpcEnvLiteral7Qx2".into());
    let cm = canary("ConfigMap key", "kpcConfigMapPw9Lm3".into());
    let props = canary("config file in a ConfigMap", "kpcPropsPw4Hd8".into());
    let secret_plain = canary("Secret stringData", "kpcStringData3Vn6".into());
    let secret_data = canary("Secret data (decoded)", "kpcSecretData8Rt1".into());
    let secret_data_b64 = canary("Secret data (base64)", b64(&secret_data));
    let secret_old = canary("Secret data at base", "kpcSecretOld5Yw2".into());
    let block1 = canary("block scalar line", "kpcBlockLineOne6Gp".into());
    let block2 = canary("block scalar line", "kpcBlockLineTwo2Kz".into());
    let values = canary("Helm values file", "kpcValuesPw1Jc7".into());
    let helm_fail = canary("Helm fail message", "kpcHelmFail3Bq9".into());
    let docker_env = canary("Dockerfile ENV", "kpcDockerEnv5Wd4".into());
    let docker_arg = canary("Dockerfile ARG", "kpcDockerArg8Ns3".into());
    let iam = canary("IAM policy", "kpcIamToken2Fx5".into());
    let annotation = canary("annotation", "kpcAnnotation6Tm8".into());
    let json = canary("JSON manifest", "kpcJsonPw9Dv1".into());
    let anchor = canary("YAML anchor", "kpcAnchorPw4Lr6".into());
    let flow = canary("flow mapping", "kpcFlowPw7Ck2".into());
    let number = canary("unquoted number", "98765432109".into());
    let broken = canary("broken document", "kpcBrokenPw3Hs5".into());
    let renamed = canary("renamed Secret", "kpcRenamed1Zq4".into());
    let jwt = canary(
        "credential-shaped value",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJrcGNDYW5hcnkifQ.kpcJwtSignature0Canary".into(),
    );

    let deployment = |rev: &str| {
        format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
  annotations:
    api-token: {annotation}
    note: "copy of {env} and {jwt}"
    revision: "{rev}"
    db-password: &pw {anchor}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: api}}
  template:
    metadata:
      labels: {{app: api}}
    spec:
      containers:
        - name: api
          image: registry.example.com/api:latest
          env:
            - name: DB_PASSWORD
              value: "{env}"
            - name: PW_REUSE
              value: "{cm}"
            - name: ANCHORED
              value: *pw
            - name: UPSTREAM_AUTH
              value: "Bearer {jwt}"
            - {{name: API_PASSWORD, value: {flow}}}
            - {{name: PIN_PASSWORD, value: {number}}}
            - name: SECRET_COPY
              value: {secret_plain}
"#
        )
    };
    let configmap = |rev: &str| {
        format!(
            r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  DB_PASSWORD: {cm}
  PW_COPY: {secret_data}
  LOG_LEVEL: {rev}
  application.properties: |
    server.port=8080
    spring.datasource.password={props}
"#
        )
    };
    let secret = |data: &str| {
        format!(
            r#"apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{{"data":{{"password":"{data}"}}}}'
type: Opaque
data:
  password: {data}
  username: YXBw
stringData:
  url: "{secret_plain}"
  key: |
    {block1}
    {block2}
"#
        )
    };
    let renamed_secret = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: shop\nstringData:\n  token: {renamed}\n"
        )
    };
    let json_manifest = format!(
        r#"{{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {{"name": "worker", "namespace": "shop"}}, "spec": {{"selector": {{"matchLabels": {{"app": "worker"}}}}, "template": {{"metadata": {{"labels": {{"app": "worker"}}}}, "spec": {{"containers": [{{"name": "worker", "image": "worker:latest", "env": [{{"name": "DB_PASSWORD", "value": "{json}"}}]}}]}}}}}}}}
"#
    );
    let broken_doc = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\n  namespace: shop\ndata:\n  password: {broken}\n  other: [unclosed\n"
    );
    let iam_policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": {{"Federated": "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE"}}, "Action": "sts:AssumeRoleWithWebIdentity", "Condition": {{"StringLike": {{"oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE:sub": "system:serviceaccount:*:*", "aws:PrincipalTag/api-token": "{iam}"}}}}}}]}}
"#
    );
    let dockerfile = format!(
        "FROM node:22\nARG NPM_TOKEN={docker_arg}\nENV API_TOKEN={docker_env} LOG_LEVEL=info\nCOPY . .\n\
         RUN npm ci\nCMD echo {docker_env} && node server.js\n"
    );
    let chart = "apiVersion: v2\nname: shop\nversion: 0.1.0\n".to_string();
    let chart_values = |replicas: u32| format!("db:\n  password: {values}\nreplicas: {replicas}\n");
    let chart_template = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: shop
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: shop}
  template:
    metadata:
      labels: {app: shop}
    spec:
      containers:
        - name: shop
          image: shop:latest
          env:
            - name: DATABASE_PASSWORD
              value: {{ .Values.db.password | quote }}
            - name: COPY
              value: "prefix-{{ .Values.db.password }}"
"#
    .to_string();
    let failing_chart = "apiVersion: v2\nname: failing\nversion: 0.1.0\n".to_string();
    let failing_values = format!("auth:\n  password: {helm_fail}\n");
    let failing_template = "{{- fail (printf \"refusing the password %s\" .Values.auth.password) }}\n".to_string();

    let common = |rev: &str, secret_data: &str, renamed_name: &str, replicas: u32| -> Vec<(String, String)> {
        vec![
            ("apps/api/deployment.yaml".into(), deployment(rev)),
            ("apps/api/configmap.yaml".into(), configmap(rev)),
            ("apps/api/secret.yaml".into(), secret(secret_data)),
            ("apps/api/renamed.yaml".into(), renamed_secret(renamed_name)),
            ("apps/api/worker.json".into(), json_manifest.clone()),
            ("apps/api/broken.yaml".into(), broken_doc.clone()),
            ("apps/api/Dockerfile".into(), dockerfile.clone()),
            ("iam/trust-policy.json".into(), iam_policy.clone()),
            ("charts/shop/Chart.yaml".into(), chart.clone()),
            ("charts/shop/values.yaml".into(), chart_values(replicas)),
            ("charts/shop/templates/deployment.yaml".into(), chart_template.clone()),
            ("charts/failing/Chart.yaml".into(), failing_chart.clone()),
            ("charts/failing/values.yaml".into(), failing_values.clone()),
            ("charts/failing/templates/fail.yaml".into(), failing_template.clone()),
        ]
    };
    let base = common("base", &b64(&secret_old), "db-old", 2);
    // Head changes the Secret's password and renames the other Secret; every other file changes a little
    // so that the review looks at all of them.
    let mut head = common("head", &secret_data_b64, "db-new", 3);
    for (path, text) in &mut head {
        let yaml = path.ends_with(".yaml") && !path.ends_with("Chart.yaml") && !path.contains("/templates/");
        if yaml || path.ends_with("Dockerfile") {
            text.push_str("# changed\n");
        } else if path.ends_with(".json") {
            text.push('\n');
        }
    }
    Corpus { base, head, canaries }
}
