//! A real FHIR server for the tests (`interop/fhir-server/`: node-fhir-server-core, authenticated
//! from the operator's ConfigMap alone), and what tests do to a directory's users so they may call it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::operator::Harness;
use crate::repo_root;

pub const FIX: &str = "make interop-deps   (or: bash hack/interop/install.sh)";

/// What `hack/interop/install.sh` installed (cached by lockfile; a no-op after the first run), by the
/// names it prints (`INTEROP_PYTHON`, `FHIR_SERVER_NODE_MODULES`, `BROWSER_NODE_MODULES`, …).
pub fn installed() -> BTreeMap<String, PathBuf> {
    let fix = format!("\nthe interop consumers are not installed; install with: {FIX}");
    crate::run_installer("hack/interop/install.sh", &[], &fix)
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
        .collect()
}

/// The FHIR server process, stopped on drop.
pub struct FhirServer {
    pub base: String,
    /// The issuer and audience it took from the authority and the ConfigMap.
    pub issuer: String,
    pub audience: String,
    /// The claim it requires of delegated tokens (the ConfigMap's FHIR_USER_CLAIM), if any.
    pub fhir_user_claim: Option<String>,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl FhirServer {
    /// Starts `interop/fhir-server/server.mjs` on `port` with the ConfigMap `data` mounted as a volume
    /// (its only authentication input), trusting the emulator's CA, with the `seed` resources.
    pub async fn start(
        h: &Harness,
        modules: &std::path::Path,
        data: &BTreeMap<String, String>,
        port: u16,
        seed: Value,
    ) -> FhirServer {
        let dir = tempfile::Builder::new()
            .prefix("fhir-server-")
            .tempdir()
            .unwrap();
        let cm = dir.path().join("configmap");
        std::fs::create_dir(&cm).unwrap();
        for (k, v) in data {
            std::fs::write(cm.join(k), v).unwrap();
        }
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, h.emu.ca_pem()).unwrap();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut child = tokio::process::Command::new("node")
            .arg(repo_root().join("interop/fhir-server/server.mjs"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FHIR_SERVER_NODE_MODULES", modules)
            .env("CONFIGMAP_DIR", &cm)
            .env("NODE_EXTRA_CA_CERTS", &ca)
            .env("PORT", port.to_string())
            .env("SEED_RESOURCES", seed.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start node interop/fhir-server/server.mjs");
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await;
        let line = match first {
            Ok(Ok(Some(l))) => l,
            _ => panic!(
                "the FHIR server did not start: {}",
                std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
            ),
        };
        let v: Value = serde_json::from_str(&line).expect("the server's first line");
        FhirServer {
            base: v["base"].as_str().unwrap().to_string(),
            issuer: v["issuer"].as_str().unwrap().to_string(),
            audience: v["audience"].as_str().unwrap().to_string(),
            fhir_user_claim: v["fhirUserClaim"].as_str().map(String::from),
            _child: child,
            _dir: dir,
        }
    }

    /// `GET {base}/{path}` with `token` (none: no Authorization header): status, body, WWW-Authenticate.
    pub async fn get(&self, h: &Harness, path: &str, token: Option<&str>) -> (u16, Value, String) {
        let mut req = h.http.get(format!("{}/{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("the FHIR server answers");
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, body, challenge)
    }
}

/// The data of FhirResourceApp `name`'s ConfigMap (`{name}-fhir-auth`): all a FHIR server is given.
pub async fn config_map(h: &Harness, name: &str) -> BTreeMap<String, String> {
    h.api::<k8s_openapi::api::core::v1::ConfigMap>()
        .get(&format!("{name}-fhir-auth"))
        .await
        .expect("the resource app's ConfigMap")
        .data
        .unwrap_or_default()
}

/// A client-credentials token for the Secret's client: the raw token, to send to a FHIR server.
pub async fn raw_token(h: &Harness, data: &BTreeMap<String, String>) -> String {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", data["AZURE_CLIENT_ID"].as_str()),
        ("client_secret", data["AZURE_CLIENT_SECRET"].as_str()),
        ("scope", data["FHIR_SCOPE"].as_str()),
    ];
    let resp = h
        .http
        .post(&data["TOKEN_ENDPOINT"])
        .form(&form)
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {body}"))
        .to_string()
}

/// Assigns the user (or group) `principal` the resource app's app role `role`, as an administrator
/// would in Graph. The one place tests give a directory user access to the FHIR API: with
/// `appRoleAssignmentRequired` on the resource app's service principal, this is also what lets the
/// user get a token for it at all.
pub async fn assign_user_role(h: &Harness, resource_app_id: &str, principal: &str, role: &str) {
    let (code, sps) = h
        .graph(
            reqwest::Method::GET,
            &format!("/servicePrincipals?$filter=appId eq '{resource_app_id}'"),
            None,
        )
        .await;
    assert_eq!(code, 200, "{sps}");
    let sp = &sps["value"][0];
    let (_, apps) = h
        .graph(
            reqwest::Method::GET,
            &format!("/applications?$filter=appId eq '{resource_app_id}'"),
            None,
        )
        .await;
    let role_id = apps["value"][0]["appRoles"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["value"] == role))
        .map(|r| r["id"].clone())
        .unwrap_or_else(|| panic!("role {role} in {apps}"));
    let body = json!({"principalId": principal, "resourceId": sp["id"], "appRoleId": role_id});
    let (code, v) = h
        .graph(
            reqwest::Method::POST,
            &format!(
                "/servicePrincipals/{}/appRoleAssignedTo",
                sp["id"].as_str().unwrap()
            ),
            Some(body),
        )
        .await;
    assert_eq!(code, 201, "{v}");
}

/// The ConfigMap of FhirResourceApp `name` once it names the `fhirUser` claim (`FHIR_USER_CLAIM`, with
/// the directory extension in `FHIR_USER_EXTENSION_ATTRIBUTE`): the operator has mapped it.
pub async fn config_map_with_fhir_user(h: &Harness, name: &str) -> BTreeMap<String, String> {
    h.eventually(
        "the ConfigMap names the fhirUser claim",
        Duration::from_secs(90),
        || async {
            let cm = config_map(h, name).await;
            Ok::<_, String>(
                cm.contains_key("FHIR_USER_EXTENSION_ATTRIBUTE")
                    .then_some(cm),
            )
        },
    )
    .await
}

/// Sets `user`'s (object ID or UPN) value of the directory extension `attribute`
/// (`extension_<appId without dashes>_fhirUser`) to `value` (`Practitioner/123`), as provisioning does
/// in a real tenant: `PATCH /users/{id}` with `{"<attribute>": "<value>"}`, by a caller holding
/// User.ReadWrite.All (the emulator's admin token).
pub async fn set_fhir_user(h: &Harness, user: &str, attribute: &str, value: &str) {
    let (code, body) = h
        .graph(
            reqwest::Method::PATCH,
            &format!("/users/{user}"),
            Some(json!({ attribute: value })),
        )
        .await;
    assert_eq!(code, 204, "set {attribute} of {user}: {body}");
}

/// A path `hack/interop/install.sh` printed under `key`.
pub fn modules(tools: &BTreeMap<String, PathBuf>, key: &str) -> PathBuf {
    tools
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("install.sh printed no {key}"))
}

/// Runs `interop/python/fhir_service.py` with only the Secret (as envFrom and as a volume) and the
/// emulator's CA: azure-identity's EnvironmentCredential, then the FHIR calls `calls`. `config_map`
/// is the resource app's ConfigMap as a volume (empty for the managed service, which has none).
pub async fn service_calls(
    h: &Harness,
    tools: &BTreeMap<String, PathBuf>,
    data: &BTreeMap<String, String>,
    config_map: &BTreeMap<String, String>,
    calls: &[&str],
) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let sd = dir.path().join("secret");
    std::fs::create_dir(&sd).unwrap();
    for (k, v) in data {
        std::fs::write(sd.join(k), v).unwrap();
    }
    let cm = dir.path().join("configmap");
    std::fs::create_dir(&cm).unwrap();
    for (k, v) in config_map {
        std::fs::write(cm.join(k), v).unwrap();
    }
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, h.emu.ca_pem()).unwrap();
    let env = data.iter().filter(|(k, _)| {
        k.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    });
    let out = tokio::process::Command::new(modules(tools, "INTEROP_PYTHON"))
        .arg(repo_root().join("interop/python/fhir_service.py"))
        .args(calls)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .envs(env)
        .env("SECRET_DIR", &sd)
        .env("CONFIGMAP_DIR", &cm)
        .env("CA_FILE", &ca)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .await
        .expect("run fhir_service.py");
    let v = last_json_line(&out, "fhir_service.py");
    assert_eq!(v["ok"], true, "{v}");
    v["calls"].as_array().cloned().unwrap_or_default()
}

/// A consumer's result: the last line it printed, as JSON.
pub fn last_json_line(out: &std::process::Output, what: &str) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        panic!(
            "{what} ({}): {e}\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        )
    })
}
