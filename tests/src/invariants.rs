//! What must hold after any failure once the operator has converged, and after deletions: checked by
//! the failure suite against the emulator's directory (its admin API, which neither faults nor lags)
//! and the cluster. Each check returns `Err(what does not hold)`, so callers can poll it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fhir_app_operator::api::{FhirClientApp, FhirResourceApp};
use fhir_app_operator::graph::assertion::CertificateCredential;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret};
use kube::api::ListParams;
use serde_json::Value;

use crate::operator::{Harness, condition};

/// Display-name prefix of the credentials the operator owns.
const OWNED_PREFIX: &str = "fhir-app-operator:";
const ANN_KEY_ID: &str = "fhirapps.io/key-id";
const ANN_PREV_KEY: &str = "fhirapps.io/previous-key-id";
const BUNDLE_KEY: &str = "client-certificate.pem";

/// The emulator's directory of the harness's tenant (every object, credential metadata included).
pub async fn directory(h: &Harness) -> Result<Value, String> {
    let url = format!("{}/_emulator/state", h.emu.base_url());
    let state: Value = h
        .http
        .get(url)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    Ok(state["tenants"][h.emu.tenant_id()].clone())
}

fn list(dir: &Value, key: &str) -> Vec<Value> {
    dir[key].as_array().cloned().unwrap_or_default()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// Object IDs present before the scenario (bootstrap app, first-party service principals): the
/// invariants concern everything else.
#[derive(Clone, Debug, Default)]
pub struct Baseline {
    apps: HashSet<String>,
    sps: HashSet<String>,
}

impl Baseline {
    pub async fn take(h: &Harness) -> Baseline {
        let dir = directory(h).await.expect("emulator state");
        let ids = |key| {
            list(&dir, key)
                .iter()
                .map(|o| str_of(o, "id").to_string())
                .collect()
        };
        Baseline {
            apps: ids("applications"),
            sps: ids("service_principals"),
        }
    }

    fn new_objects(&self, dir: &Value) -> (Vec<Value>, Vec<Value>) {
        let apps = list(dir, "applications")
            .into_iter()
            .filter(|a| !self.apps.contains(str_of(a, "id")))
            .collect();
        let sps = list(dir, "service_principals")
            .into_iter()
            .filter(|s| !self.sps.contains(str_of(s, "id")))
            .collect();
        (apps, sps)
    }
}

/// Counts for the scenario's summary line.
#[derive(Debug, Default)]
pub struct Converged {
    pub resources: usize,
    pub apps: usize,
    pub credentials: usize,
    pub tokens: usize,
}

/// Key IDs of the operator-owned credentials in `collection` of `app`.
fn owned_keys(app: &Value, collection: &str) -> BTreeSet<String> {
    list(app, collection)
        .iter()
        .filter(|c| {
            c["displayName"]
                .as_str()
                .is_some_and(|d| d.starts_with(OWNED_PREFIX))
        })
        .map(|c| str_of(c, "keyId").to_string())
        .collect()
}

/// Every resource in the namespace Ready for its generation; exactly one application (and one service
/// principal) per resource and nothing else; per client at most the credentials the rotation logic
/// allows — the one its Secret holds plus, during the overlap, the previous one the Secret records — and
/// no duplicate role assignment or grant; every Secret with a credential obtains a token for its FHIR
/// audience.
pub async fn converged(h: &Harness, base: &Baseline) -> Result<Converged, String> {
    let resources = h
        .list_everywhere::<FhirResourceApp>()
        .await
        .map_err(|e| e.to_string())?;
    let clients = h
        .list_everywhere::<FhirClientApp>()
        .await
        .map_err(|e| e.to_string())?;
    let objects: Vec<Value> = resources
        .iter()
        .map(|o| serde_json::to_value(o).unwrap())
        .chain(clients.iter().map(|o| serde_json::to_value(o).unwrap()))
        .collect();
    for o in &objects {
        let ready = condition(o, "Ready");
        if ready["status"] != "True" || ready["observedGeneration"] != o["metadata"]["generation"] {
            return Err(format!(
                "{} {} not Ready: {}",
                o["kind"], o["metadata"]["name"], o["status"]
            ));
        }
    }

    // Secrets before the directory: a rotation in between then adds a key the check flags (and the
    // caller retries), instead of removing one the Secret still names.
    // Keyed by namespace/name: a client's Secret is in the client's namespace.
    let secrets: HashMap<String, Secret> = h
        .list_everywhere::<Secret>()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|s| {
            let m = &s.metadata;
            let key = format!(
                "{}/{}",
                m.namespace.as_deref().unwrap_or_default(),
                m.name.as_deref().unwrap_or_default()
            );
            (key, s)
        })
        .collect();
    let dir = directory(h).await?;
    let (apps, sps) = base.new_objects(&dir);
    let mut by_unique: HashMap<&str, &Value> = HashMap::new();
    for a in &apps {
        if by_unique.insert(str_of(a, "uniqueName"), a).is_some() {
            return Err(format!(
                "two applications share uniqueName {}",
                a["uniqueName"]
            ));
        }
    }
    if apps.len() != objects.len() {
        let names: Vec<&str> = apps.iter().map(|a| str_of(a, "uniqueName")).collect();
        return Err(format!(
            "{} applications for {} resources: {names:?}",
            apps.len(),
            objects.len()
        ));
    }
    let mut sp_count: HashMap<&str, usize> = HashMap::new();
    for sp in &sps {
        *sp_count.entry(str_of(sp, "appId")).or_default() += 1;
    }
    let mut summary = Converged {
        resources: objects.len(),
        apps: apps.len(),
        ..Default::default()
    };
    for o in &objects {
        let name = &o["metadata"]["name"];
        let st = &o["status"];
        let app = by_unique
            .get(st["uniqueName"].as_str().unwrap_or_default())
            .ok_or_else(|| {
                format!(
                    "{name}: no application with uniqueName {}",
                    st["uniqueName"]
                )
            })?;
        if app["id"] != st["applicationObjectId"] || app["appId"] != st["clientId"] {
            return Err(format!(
                "{name}: status names application {} / {}, the directory has {} / {}",
                st["applicationObjectId"], st["clientId"], app["id"], app["appId"]
            ));
        }
        let n = sp_count.get(str_of(app, "appId")).copied().unwrap_or(0);
        if n != 1 {
            return Err(format!(
                "{name}: {n} service principals for its application"
            ));
        }
        if o["kind"] == "FhirClientApp" {
            let (creds, tokens) = client_credentials(h, o, app, &secrets).await?;
            summary.credentials += creds;
            summary.tokens += tokens;
        } else if !owned_keys(app, "passwordCredentials").is_empty() {
            return Err(format!("resource app {name} holds client secrets"));
        }
    }
    if sps.len() != apps.len() {
        return Err(format!(
            "{} service principals for {} applications",
            sps.len(),
            apps.len()
        ));
    }
    no_duplicate_links(&dir)?;
    Ok(summary)
}

/// A client's credentials against its Secret, and its token; returns (credentials, tokens obtained).
async fn client_credentials(
    h: &Harness,
    o: &Value,
    app: &Value,
    secrets: &HashMap<String, Secret>,
) -> Result<(usize, usize), String> {
    let name = &o["metadata"]["name"];
    let st = &o["status"];
    let secret_name = st["outputName"].as_str().unwrap_or_default();
    let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
    let secret = secrets
        .get(&format!("{ns}/{secret_name}"))
        .ok_or_else(|| format!("{name}: no Secret {secret_name}"))?;
    let ann = secret.metadata.annotations.clone().unwrap_or_default();
    let data: BTreeMap<String, String> = secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    if data.get("AZURE_CLIENT_ID") != st["clientId"].as_str().map(String::from).as_ref() {
        return Err(format!("{name}: Secret names another client ID"));
    }
    let passwords = owned_keys(app, "passwordCredentials");
    let certificates = owned_keys(app, "keyCredentials");
    let (held, other) = match st["credential"]["type"].as_str() {
        Some("ClientSecret") => (passwords, certificates),
        Some("Certificate") => (certificates, passwords),
        _ => {
            return match passwords.len() + certificates.len() {
                0 => Ok((0, 0)),
                n => Err(format!("{name}: {n} credentials without a credential type")),
            };
        }
    };
    if !other.is_empty() {
        return Err(format!(
            "{name}: credentials of another type left: {other:?}"
        ));
    }
    let current = ann.get(ANN_KEY_ID).cloned().unwrap_or_default();
    let allowed: BTreeSet<String> = [Some(current.clone()), ann.get(ANN_PREV_KEY).cloned()]
        .into_iter()
        .flatten()
        .collect();
    if !held.contains(&current) || !held.is_subset(&allowed) {
        return Err(format!(
            "{name}: application holds {held:?}; allowed are the Secret's {current} and its previous key {:?}",
            ann.get(ANN_PREV_KEY)
        ));
    }
    let claims = token_for(h, &data).await?;
    if claims["aud"] != st["audience"] {
        return Err(format!(
            "{name}: token for audience {}, expected {}",
            claims["aud"], st["audience"]
        ));
    }
    Ok((held.len(), 1))
}

/// A token with nothing but the Secret's data: its client secret or its certificate.
pub async fn token_for(h: &Harness, data: &BTreeMap<String, String>) -> Result<Value, String> {
    if data.contains_key("AZURE_CLIENT_SECRET") {
        return h.token_from_secret(data).await;
    }
    let bundle = data.get(BUNDLE_KEY).ok_or("Secret holds no credential")?;
    let cert = CertificateCredential::from_pem(bundle.as_bytes())?;
    let now = jiff::Timestamp::now().as_second();
    let assertion = cert.assertion(&data["AZURE_CLIENT_ID"], &data["TOKEN_ENDPOINT"], now)?;
    h.token_with(
        data,
        &[
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ],
    )
    .await
}

/// Crash-and-retry must not double an app role assignment or a delegated grant.
fn no_duplicate_links(dir: &Value) -> Result<(), String> {
    let mut seen = HashSet::new();
    for a in list(dir, "app_role_assignments") {
        let key = (
            str_of(&a, "principalId").to_string(),
            str_of(&a, "resourceId").to_string(),
            str_of(&a, "appRoleId").to_string(),
        );
        if !seen.insert(key.clone()) {
            return Err(format!("duplicate app role assignment {key:?}"));
        }
    }
    let mut seen = HashSet::new();
    for g in list(dir, "oauth2_permission_grants") {
        let key = (
            str_of(&g, "clientId").to_string(),
            str_of(&g, "resourceId").to_string(),
            str_of(&g, "consentType").to_string(),
        );
        if !seen.insert(key.clone()) {
            return Err(format!("duplicate permission grant {key:?}"));
        }
    }
    Ok(())
}

/// After deleting every resource (deletionPolicy Delete): no resource left in the namespace, no
/// application or service principal beyond the baseline, no assignment or grant of a removed service
/// principal, and none of the Secrets' credentials (`held`) obtains a token any more. Returns the
/// number of soft-deleted applications (Entra keeps them restorable for 30 days).
pub async fn gone(
    h: &Harness,
    base: &Baseline,
    held: &[BTreeMap<String, String>],
) -> Result<usize, String> {
    let left_r = h
        .list_everywhere::<FhirResourceApp>()
        .await
        .map_err(|e| e.to_string())?;
    let left_c = h
        .list_everywhere::<FhirClientApp>()
        .await
        .map_err(|e| e.to_string())?;
    if !left_r.is_empty() || !left_c.is_empty() {
        return Err(format!(
            "{} FhirResourceApps and {} FhirClientApps still in the namespaces",
            left_r.len(),
            left_c.len()
        ));
    }
    let dir = directory(h).await?;
    let (apps, sps) = base.new_objects(&dir);
    if !apps.is_empty() || !sps.is_empty() {
        let names: Vec<&str> = apps.iter().map(|a| str_of(a, "uniqueName")).collect();
        return Err(format!(
            "left behind: {} applications {names:?}, {} service principals",
            apps.len(),
            sps.len()
        ));
    }
    let live: HashSet<String> = list(&dir, "service_principals")
        .iter()
        .map(|s| str_of(s, "id").to_string())
        .collect();
    let links = list(&dir, "app_role_assignments")
        .into_iter()
        .chain(list(&dir, "oauth2_permission_grants"))
        .filter(|l| {
            let principal = l["principalId"].as_str().or(l["clientId"].as_str());
            principal.is_some_and(|p| !live.contains(p))
        })
        .count();
    if links > 0 {
        return Err(format!(
            "{links} assignments or grants of deleted service principals"
        ));
    }
    for data in held {
        if let Ok(claims) = token_for(h, data).await {
            return Err(format!(
                "the credential of deleted client {} still obtains tokens ({})",
                data["AZURE_CLIENT_ID"], claims["aud"]
            ));
        }
    }
    Ok(list(&dir, "deleted_applications").len())
}

/// Every credential value seen during a scenario: client secrets the emulator issued (from its state
/// file, polled, so secrets that were removed again are included) and the values in the namespace's
/// Secrets (client secrets, certificate private keys).
pub struct Harvest {
    seen: Arc<Mutex<HashSet<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Harvest {
    pub fn start(h: &Harness, state_file: PathBuf) -> Harvest {
        let seen = Arc::new(Mutex::new(HashSet::from([h.emu.client_secret()])));
        let mut namespaces = vec![h.ns.name.clone()];
        namespaces.extend(h.extra_namespaces.iter().cloned());
        let (client, out) = (h.client.clone(), seen.clone());
        let task = tokio::spawn(async move {
            loop {
                let mut found = issued_secrets(&state_file);
                let mut secrets = vec![];
                for ns in &namespaces {
                    let list = kube::Api::<Secret>::namespaced(client.clone(), ns)
                        .list(&ListParams::default())
                        .await;
                    secrets.extend(list.map(|l| l.items).unwrap_or_default());
                }
                for s in secrets {
                    for (k, v) in s.data.unwrap_or_default() {
                        if matches!(k.as_str(), "AZURE_CLIENT_SECRET" | "tls.key" | BUNDLE_KEY) {
                            found.insert(String::from_utf8_lossy(&v.0).into_owned());
                        }
                    }
                }
                out.lock().unwrap().extend(found);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Harvest { seen, task }
    }

    pub fn values(&self) -> HashSet<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Harvest {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn issued_secrets(state_file: &Path) -> HashSet<String> {
    let Ok(text) = std::fs::read_to_string(state_file) else {
        return HashSet::new();
    };
    let state: Value = serde_json::from_str(&text).unwrap_or_default();
    let mut out = HashSet::new();
    for t in state["tenants"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        for app in list(t, "apps").iter().chain(list(t, "deleted_apps").iter()) {
            for s in list(app, "secrets") {
                out.extend(s["text"].as_str().map(String::from));
            }
        }
    }
    out
}

/// What to search for: a leaked value may be cut or escaped, so secrets are matched by their first and
/// last 16 characters and PEM keys by each base64 line of their body.
fn needles(values: &HashSet<String>) -> HashSet<String> {
    let mut out = HashSet::new();
    for v in values {
        if v.contains("-----BEGIN") {
            let in_key = v
                .split("-----BEGIN")
                .filter(|block| block.contains("PRIVATE KEY-----"))
                .flat_map(|block| block.lines().skip(1))
                .filter(|l| l.len() >= 40 && !l.starts_with("-----"));
            out.extend(in_key.map(String::from));
        } else if v.len() >= 16 {
            out.insert(v[..16].to_string());
            out.insert(v[v.len() - 16..].to_string());
        }
    }
    out
}

/// No credential value in the operator's logs, in any Event or status in the namespace, or in the
/// ConfigMaps it writes. Returns how many values were checked.
pub async fn no_leaks(h: &Harness, values: &HashSet<String>, logs: &[PathBuf]) -> usize {
    let needles = needles(values);
    let mut haystacks: Vec<(String, String)> = logs
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            (format!("operator log {}", p.display()), text)
        })
        .collect();
    let events = h.list_everywhere::<Event>().await.unwrap();
    assert!(!events.is_empty(), "the operator recorded no Events");
    haystacks.push(("Events".into(), serde_json::to_string(&events).unwrap()));
    let resources = h.list_everywhere::<FhirResourceApp>().await.unwrap();
    let clients = h.list_everywhere::<FhirClientApp>().await.unwrap();
    let statuses: Vec<Value> = resources
        .iter()
        .map(|r| serde_json::to_value(&r.status).unwrap())
        .chain(
            clients
                .iter()
                .map(|c| serde_json::to_value(&c.status).unwrap()),
        )
        .collect();
    haystacks.push(("statuses".into(), serde_json::to_string(&statuses).unwrap()));
    let maps = h.list_everywhere::<ConfigMap>().await.unwrap();
    haystacks.push(("ConfigMaps".into(), serde_json::to_string(&maps).unwrap()));
    for (what, text) in &haystacks {
        for n in &needles {
            // The position only: the message must not leak the value itself.
            if let Some(at) = text.find(n.as_str()) {
                panic!("a credential value appears in {what} at byte {at}");
            }
        }
    }
    values.len()
}
