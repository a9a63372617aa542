//! Interoperability: every client kind proven by Microsoft's own libraries (azure-identity, MSAL)
//! and a real browser (Debian's chromium), given nothing but what the operator wrote.
//!
//! Each test registers apps through the operator, then hands each consumer program exactly: the
//! client's Secret (as `envFrom` would, and as a volume), the resource app's ConfigMap (as a volume),
//! the emulator's CA, and the settings a private cloud needs (in the consumer's code: the authority
//! host from the Secret, instance discovery off). The consumers live in `interop/` and are pinned by
//! their ecosystem's lockfile; `hack/interop/install.sh` (`make interop-deps`) installs them into a
//! cache outside the repository. The consumers print one JSON line; the tests assert it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fhir_app_operator::api::{FhirClientApp, FhirResourceApp};
use fhir_app_operator_tests::fhir::{FIX, assign_user_role};
use fhir_app_operator_tests::operator::{Harness, client_app, full_permissions, resource_app};
use fhir_app_operator_tests::repo_root;
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};
use testenv::free_port;

const USER: &str = "clinician@contoso.example";
const PASSWORD: &str = "Interop-Passw0rd";

/// Where the consumers' runtimes and libraries are installed (outside the repository).
struct Consumers {
    python: PathBuf,
    node_modules: PathBuf,
    go: PathBuf,
    /// None with FHIR_OP_SKIP_BROWSER=1 (hack/browser/install.sh installs nothing then).
    browser_modules: Option<PathBuf>,
}

impl Consumers {
    /// Whether the browser tests can run; with FHIR_OP_SKIP_BROWSER=1 they skip, loudly.
    fn browser_or_skip(&self, test: &str) -> bool {
        if self.browser_modules.is_none() {
            eprintln!(
                "\n\n######## SKIPPED: {test} needs Chromium (FHIR_OP_SKIP_BROWSER=1; install: {FIX}) ########\n"
            );
        }
        self.browser_modules.is_some()
    }
}

/// Runs `hack/interop/install.sh` (cached by lockfile hash: a no-op after the first run).
fn consumers() -> Consumers {
    let installed = fhir_app_operator_tests::fhir::installed();
    let get = |k: &str| {
        installed
            .get(k)
            .cloned()
            .unwrap_or_else(|| panic!("install.sh printed no {k}; install with: {FIX}"))
    };
    Consumers {
        python: get("INTEROP_PYTHON"),
        node_modules: get("INTEROP_NODE_MODULES"),
        go: get("INTEROP_GO"),
        browser_modules: installed.get("BROWSER_NODE_MODULES").cloned(),
    }
}

/// The operator's outputs as a pod would see them, in a private temporary directory (removed on drop).
struct Outputs {
    dir: tempfile::TempDir,
    secret: BTreeMap<String, String>,
}

impl Outputs {
    fn secret_dir(&self) -> PathBuf {
        self.dir.path().join("secret")
    }
    fn configmap_dir(&self) -> PathBuf {
        self.dir.path().join("configmap")
    }
    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
    /// The Secret's keys that `envFrom` turns into environment variables.
    fn env(&self) -> Vec<(String, String)> {
        self.secret
            .iter()
            .filter(|(k, _)| {
                k.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Waits until `client` is Ready, then writes its Secret, the resource app's ConfigMap and the CA.
async fn outputs(h: &Harness, client: &str, resource: &str) -> Outputs {
    h.wait_condition::<FhirClientApp>(client, "Ready", "True", Duration::from_secs(90))
        .await;
    let secret = fhir_app_operator_tests::operator::secret_data(
        &h.client,
        &h.ns.name,
        &format!("{client}-fhir-client"),
    )
    .await
    .expect("the client's Secret");
    let cm = h
        .api::<ConfigMap>()
        .get(&format!("{resource}-fhir-auth"))
        .await
        .expect("the resource app's ConfigMap");
    let dir = tempfile::Builder::new()
        .prefix("fhir-interop-")
        .tempdir()
        .unwrap();
    let o = Outputs { dir, secret };
    for (sub, data) in [
        (o.secret_dir(), o.secret.clone()),
        (o.configmap_dir(), cm.data.unwrap_or_default()),
    ] {
        std::fs::create_dir(&sub).unwrap();
        for (k, v) in data {
            std::fs::write(sub.join(k), v).unwrap();
        }
    }
    std::fs::write(o.ca_file(), h.emu.ca_pem()).unwrap();
    o
}

/// Runs a consumer with a clean environment: PATH, the Secret's keys, SECRET_DIR, CONFIGMAP_DIR,
/// CA_FILE and the runtime's CA variable, and `extra`. Returns its last stdout line as JSON.
async fn run(program: &Path, args: &[&str], o: &Outputs, extra: &[(&str, String)]) -> Value {
    let ca = o.ca_file();
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(o.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", o.dir.path())
        .envs(o.env())
        .env("SECRET_DIR", o.secret_dir())
        .env("CONFIGMAP_DIR", o.configmap_dir())
        .env("CA_FILE", &ca)
        // requests (azure-core, MSAL Python), Node and Go read these; Go and requests trust nothing else.
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("NODE_EXTRA_CA_CERTS", &ca)
        .env("SSL_CERT_FILE", &ca)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .kill_on_drop(true);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let what = format!("{} {}", program.display(), args.join(" "));
    // stderr goes to a file, so that a consumer that hangs still shows what it said.
    let err_file = o.dir.path().join("stderr.txt");
    cmd.stderr(std::fs::File::create(&err_file).unwrap())
        .stdout(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null());
    let child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output()).await;
    let stderr = std::fs::read_to_string(&err_file).unwrap_or_default();
    let out = out
        .unwrap_or_else(|_| panic!("{what}: no answer in 120 s; stderr: {stderr}"))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "{what} exited {:?} without a JSON result ({e}):\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        )
    });
    assert!(out.status.success(), "{what} failed: {v}\nstderr: {stderr}");
    if v["ok"] == false {
        // Shown only when the test then fails: what the consumer and its libraries said.
        println!("{what}: stderr:\n{stderr}");
    }
    v
}

fn python_consumer(c: &Consumers, script: &str) -> (PathBuf, String) {
    (
        c.python.clone(),
        repo_root()
            .join("interop/python")
            .join(script)
            .display()
            .to_string(),
    )
}

fn node_consumer(script: &str) -> (PathBuf, String) {
    (
        PathBuf::from("node"),
        repo_root()
            .join("interop/node")
            .join(script)
            .display()
            .to_string(),
    )
}

/// A harness with the operator running and a Ready FhirResourceApp `fhir`; `f` adjusts the emulator.
async fn harness(
    prefix: &str,
    resource_spec: Value,
    f: impl FnOnce(&mut entra_emulator::Config),
) -> Harness {
    let mut h = Harness::with_emulator(prefix, |cfg, _| {
        cfg.tenants[0].apps[0].permissions = full_permissions();
        f(cfg)
    })
    .await;
    h.start_operator(h.config()).await;
    h.apply::<FhirResourceApp>(resource_app("fhir", resource_spec))
        .await
        .unwrap();
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "True", Duration::from_secs(60))
        .await;
    h
}

/// What every token for the FHIR server must show: verified with the ConfigMap, for this client.
fn assert_fhir_token(result: &Value, o: &Outputs, what: &str) -> Value {
    assert_eq!(result["ok"], true, "{what}: {result}");
    let c = &result["claims"];
    assert_eq!(c["aud"], o.secret["FHIR_AUDIENCE"], "{what}: aud");
    assert_eq!(c["tid"], o.secret["AZURE_TENANT_ID"], "{what}: tid");
    let client = c
        .get("appid")
        .or_else(|| c.get("azp"))
        .unwrap_or(&Value::Null);
    assert_eq!(
        client,
        &json!(o.secret["AZURE_CLIENT_ID"]),
        "{what}: appid/azp"
    );
    c.clone()
}

/// A refusal as the library reported it: `error` and an `error_description` starting with the AADSTS code.
fn assert_refused(r: &Value, error: &str, aadsts: &str) {
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"]["error"], error, "{r}");
    let desc = r["error"]["error_description"].as_str().unwrap_or_default();
    assert!(desc.starts_with(&format!("{aadsts}:")), "{r}");
}

fn roles(c: &Value) -> Vec<String> {
    let mut r: Vec<String> = c["roles"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    r.sort();
    r
}

/// Service clients (secret and certificate): azure-identity's EnvironmentCredential and
/// CertificateCredential (Python) / ClientCertificateCredential (JS), and MSAL's client credentials
/// (msal, @azure/msal-node), each get a token the FHIR server accepts (signature, audience, issuer from
/// the ConfigMap) carrying the client's app roles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_clients_with_azure_identity_and_msal() {
    let _serial = one_at_a_time().await;
    let c = consumers();
    let h = harness(
        "interop-svc",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
        |_| {},
    )
    .await;
    for (name, cred) in [("daemon", "ClientSecret"), ("daemon-cert", "Certificate")] {
        h.apply::<FhirClientApp>(client_app(
            name,
            json!({"type": "Service", "target": {"resourceAppRef": {"name": "fhir"}},
                   "roles": ["globalReader", "globalExporter"], "assignAppRoles": true,
                   "credential": {"type": cred}}),
        ))
        .await
        .unwrap();
    }
    let consumers = [
        python_consumer(&c, "service.py"),
        node_consumer("service.mjs"),
        (c.go.clone(), "--".to_string()),
    ];
    let node_env = [("INTEROP_NODE_MODULES", c.node_modules.display().to_string())];

    let secret = outputs(&h, "daemon", "fhir").await;
    for (program, script) in &consumers {
        for way in ["env-credential", "msal-secret"] {
            if way.starts_with("msal") && script == "--" {
                continue;
            }
            let r = run(program, &[script, way], &secret, &node_env).await;
            let claims = assert_fhir_token(&r, &secret, &format!("{script} {way}"));
            assert_eq!(roles(&claims), ["globalExporter", "globalReader"], "{way}");
        }
    }

    let cert = outputs(&h, "daemon-cert", "fhir").await;
    assert!(
        !cert.secret.contains_key("AZURE_CLIENT_SECRET"),
        "a Certificate client has no secret"
    );
    // The Secret mounted as a volume at SECRET_DIR rather than at the default mount path.
    let pem = cert.secret_dir().join("client-certificate.pem");
    let mut extra = node_env.to_vec();
    extra.push(("AZURE_CLIENT_CERTIFICATE_PATH", pem.display().to_string()));
    for (program, script) in &consumers {
        for way in ["env-credential", "client-certificate", "msal-certificate"] {
            if way.starts_with("msal") && script == "--" {
                continue; // Go: azidentity only
            }
            let r = run(program, &[script, way], &cert, &extra).await;
            let claims = assert_fhir_token(&r, &cert, &format!("{script} {way}"));
            assert_eq!(roles(&claims), ["globalExporter", "globalReader"], "{way}");
        }
    }
}

/// An application deleted in Entra out of band and recreated by the operator (issue 17): as soon as
/// the client is Ready again, azure-identity's `EnvironmentCredential` gets a token with its Secret
/// (no second resync, no credential of the deleted application left in it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_application_works_with_azure_identity_once_ready_again() {
    let _serial = one_at_a_time().await;
    let c = consumers();
    let h = harness(
        "interop-re",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
        |_| {},
    )
    .await;
    h.apply::<FhirClientApp>(client_app(
        "daemon",
        json!({"type": "Service", "target": {"resourceAppRef": {"name": "fhir"}},
               "roles": ["globalReader"], "assignAppRoles": true}),
    ))
    .await
    .unwrap();
    let before = outputs(&h, "daemon", "fhir").await;
    h.delete_application_out_of_band("daemon").await;
    let after = outputs(&h, "daemon", "fhir").await;
    assert_ne!(
        after.secret["AZURE_CLIENT_ID"],
        before.secret["AZURE_CLIENT_ID"]
    );
    let (program, script) = python_consumer(&c, "service.py");
    let r = run(&program, &[&script, "env-credential"], &after, &[]).await;
    let claims = assert_fhir_token(&r, &after, "env-credential after the recreate");
    assert_eq!(roles(&claims), ["globalReader"]);
}

/// The interop tests run one at a time: each drives Chromium and several runtimes, and on a small
/// machine several at once starve each other past the browser's timeouts.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

fn user(upn: &str, oid: &str) -> entra_emulator::UserConfig {
    entra_emulator::UserConfig {
        user_principal_name: upn.into(),
        password: PASSWORD.into(),
        display_name: upn.split('@').next().unwrap_or_default().into(),
        object_id: Some(oid.into()),
        ..Default::default()
    }
}

/// What a consumer needs to act as `upn` in the browser.
fn as_user(c: &Consumers, upn: &str) -> Vec<(&'static str, String)> {
    vec![
        ("USER_NAME", upn.to_string()),
        ("USER_PASSWORD", PASSWORD.to_string()),
        (
            "BROWSER_NODE_MODULES",
            c.browser_modules
                .as_ref()
                .expect("checked by browser_or_skip")
                .display()
                .to_string(),
        ),
        (
            "SIGNIN_SCRIPT",
            repo_root()
                .join("interop/browser/signin.mjs")
                .display()
                .to_string(),
        ),
    ]
}

fn scp(c: &Value) -> Vec<String> {
    let mut v: Vec<String> = c["scp"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    v.sort();
    v
}

const CLINICIAN_OID: &str = "5d9d8a52-1c7e-4a39-9a55-0c3f2a1b7e01";
const VISITOR: &str = "visitor@contoso.example";
const VISITOR_OID: &str = "5d9d8a52-1c7e-4a39-9a55-0c3f2a1b7e02";

/// Confidential web app: MSAL Python's authorization-code flow with PKCE, the user in chromium, the
/// redirect on a loopback server at the Secret's REDIRECT_URI. The token has the requested `scp`, the
/// FHIR audience and the user's app role; acquire_token_silent refreshes it once it counts as expired.
/// The same with @azure/msal-node. A user who declines consent is refused with Entra's error
/// (AADSTS65004) as each library reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confidential_web_app_with_msal_in_chromium() {
    let _serial = one_at_a_time().await;
    let c = consumers();
    if !c.browser_or_skip("confidential_web_app_with_msal_in_chromium") {
        return;
    }
    let h = harness(
        "interop-web",
        // Assignment not required at first, so the unassigned visitor reaches the consent page; the
        // last step turns it on.
        json!({"fhirUrl": "https://fhir.contoso.example", "smart": {"enabled": true},
               "appRoleAssignmentRequired": false}),
        |cfg| {
            // Under MSAL's 5-minute margin: the first silent call must use the refresh token.
            cfg.token_lifetime_secs = 120;
            cfg.tenants[0].users = vec![user(USER, CLINICIAN_OID), user(VISITOR, VISITOR_OID)];
        },
    )
    .await;
    let redirect = format!("http://localhost:{}/signin-oidc", free_port());
    h.apply::<FhirClientApp>(client_app(
        "portal",
        json!({"type": "Confidential", "target": {"resourceAppRef": {"name": "fhir"}},
               "redirectUris": [redirect], "scopes": ["user_impersonation", "patient/*.read"],
               "grantAdminConsent": true}),
    ))
    .await
    .unwrap();
    let other = format!("http://localhost:{}/callback", free_port());
    h.apply::<FhirClientApp>(client_app(
        "portal-unconsented",
        json!({"type": "Confidential", "target": {"resourceAppRef": {"name": "fhir"}},
               "redirectUris": [other]}),
    ))
    .await
    .unwrap();
    let o = outputs(&h, "portal", "fhir").await;
    assert_eq!(o.secret["REDIRECT_URI"], redirect);
    let resource_app_id = std::fs::read_to_string(o.configmap_dir().join("CLIENT_ID")).unwrap();
    assign_user_role(&h, &resource_app_id, CLINICIAN_OID, "globalReader").await;
    let (py, script) = python_consumer(&c, "webapp.py");

    let r = run(&py, &[&script], &o, &as_user(&c, USER)).await;
    let claims = assert_fhir_token(&r, &o, "auth code");
    assert_eq!(r["pkce"], true, "MSAL sent an S256 code challenge: {r}");
    assert_eq!(r["consent_shown"], false, "admin consent was granted: {r}");
    assert_eq!(scp(&claims), ["patient.all.read", "user_impersonation"]);
    assert_eq!(roles(&claims), ["globalReader"], "the user's app role");
    assert_eq!(claims["oid"], CLINICIAN_OID);
    assert_eq!(r["id_token"]["preferred_username"], USER);
    assert_eq!(r["id_token"]["aud"], o.secret["AZURE_CLIENT_ID"]);
    assert_eq!(r["has_refresh_token"], true, "{r}");
    let refreshed = &r["refreshed"];
    assert_eq!(refreshed["token_source"], "identity_provider", "{r}");
    assert_eq!(refreshed["new_token"], true, "{r}");
    assert_eq!(scp(&refreshed["claims"]), scp(&claims));
    assert_eq!(refreshed["claims"]["oid"], CLINICIAN_OID);

    // @azure/msal-node: the same flow (getAuthCodeUrl with PKCE, acquireTokenByCode, acquireTokenSilent).
    let (node, web_mjs) = node_consumer("webapp.mjs");
    let mut env = as_user(&c, USER);
    env.push(("INTEROP_NODE_MODULES", c.node_modules.display().to_string()));
    let r = run(&node, &[&web_mjs], &o, &env).await;
    let claims = assert_fhir_token(&r, &o, "msal-node auth code");
    assert_eq!(r["pkce"], true, "{r}");
    assert_eq!(scp(&claims), ["patient.all.read", "user_impersonation"]);
    assert_eq!(roles(&claims), ["globalReader"]);
    assert_eq!(r["idToken"]["preferred_username"], USER);
    assert_eq!(
        r["refreshed"]["fromCache"], false,
        "refreshed at the token endpoint: {r}"
    );
    assert_eq!(r["refreshed"]["newToken"], true, "{r}");
    assert_eq!(scp(&r["refreshed"]["claims"]), scp(&claims));

    // Negative: a user who declines the consent page of a client nobody consented to.
    let un = outputs(&h, "portal-unconsented", "fhir").await;
    let mut env = as_user(&c, VISITOR);
    env.push(("CONSENT", "cancel".into()));
    env.push(("INTEROP_NODE_MODULES", c.node_modules.display().to_string()));
    for (program, script) in [(&py, &script), (&node, &web_mjs)] {
        let r = run(program, &[script], &un, &env).await;
        assert_eq!(r["browser"]["consentShown"], true, "{r}");
        assert_refused(&r, "access_denied", "AADSTS65004");
    }

    // Negative: the FHIR server's service principal requires assignment (only users with an app role,
    // the FhirResourceApp's default); the visitor holds none and is stopped on Entra's error page
    // (AADSTS50105): the app gets no redirect at all. The assigned clinician still signs in.
    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://fhir.contoso.example", "smart": {"enabled": true}}),
    ))
    .await
    .unwrap();
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "True", Duration::from_secs(60))
        .await;
    let mut env = as_user(&c, VISITOR);
    env.push(("INTEROP_NODE_MODULES", c.node_modules.display().to_string()));
    let r = run(&py, &[&script], &o, &env).await;
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(
        r["browser"]["landed"],
        Value::Null,
        "no redirect to the app: {r}"
    );
    let page = r["browser"]["page"].as_str().unwrap_or_default();
    assert!(page.contains("AADSTS50105"), "{r}");
    let r = run(&py, &[&script], &o, &as_user(&c, USER)).await;
    assert_eq!(
        roles(&assert_fhir_token(&r, &o, "assigned user")),
        ["globalReader"]
    );
}

/// Public native (mobile/desktop) client: MSAL Python's and msal-node's PublicClientApplication sign the
/// user in interactively (auth code + PKCE on the library's own `http://localhost:<port>` server, the
/// desktop's browser being chromium) and with the device-code flow; the same client sending a secret
/// is refused with AADSTS700025.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_native_client_with_msal() {
    let _serial = one_at_a_time().await;
    let c = consumers();
    if !c.browser_or_skip("public_native_client_with_msal") {
        return;
    }
    let h = harness(
        "interop-native",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
        |cfg| cfg.tenants[0].users = vec![user(USER, CLINICIAN_OID)],
    )
    .await;
    h.apply::<FhirClientApp>(client_app(
        "desktop",
        json!({"type": "Public", "publicPlatform": "MobileDesktop",
               "target": {"resourceAppRef": {"name": "fhir"}},
               "redirectUris": ["http://localhost"], "grantAdminConsent": true}),
    ))
    .await
    .unwrap();
    let o = outputs(&h, "desktop", "fhir").await;
    assert!(
        !o.secret.contains_key("AZURE_CLIENT_SECRET"),
        "a Public client has no secret"
    );
    let resource_app_id = std::fs::read_to_string(o.configmap_dir().join("CLIENT_ID")).unwrap();
    assign_user_role(&h, &resource_app_id, CLINICIAN_OID, "globalReader").await;
    let (py, script) = python_consumer(&c, "native.py");
    let mut env = as_user(&c, USER);
    env.push((
        "BROWSER",
        repo_root()
            .join("interop/browser/open-url")
            .display()
            .to_string(),
    ));

    env.push(("INTEROP_NODE_MODULES", c.node_modules.display().to_string()));
    let (node, native_mjs) = node_consumer("native.mjs");
    for (program, script, way) in [
        (&py, &script, "interactive"),
        (&py, &script, "device-code"),
        (&node, &native_mjs, "interactive"),
        (&node, &native_mjs, "device-code"),
    ] {
        let r = run(program, &[script, way], &o, &env).await;
        let way = format!("{script} {way}");
        let claims = assert_fhir_token(&r, &o, &way);
        assert_eq!(scp(&claims), ["user_impersonation"], "{way}");
        assert_eq!(roles(&claims), ["globalReader"], "{way}");
        assert_eq!(claims["oid"], CLINICIAN_OID, "{way}");
        assert_eq!(r["id_token"]["preferred_username"], USER, "{way}: {r}");
    }

    // A secret an administrator added to the desktop app out of band, configured in the app. The
    // operator would remove it (a Public client holds none), so it is stopped first.
    let mut h = h;
    h.stop_operator().await;
    let (code, apps) = h
        .graph(
            reqwest::Method::GET,
            &format!(
                "/applications?$filter=appId eq '{}'",
                o.secret["AZURE_CLIENT_ID"]
            ),
            None,
        )
        .await;
    assert_eq!(code, 200, "{apps}");
    let (code, pw) = h
        .graph(
            reqwest::Method::POST,
            &format!(
                "/applications/{}/addPassword",
                apps["value"][0]["id"].as_str().unwrap()
            ),
            Some(json!({"passwordCredential": {"displayName": "added by hand"}})),
        )
        .await;
    assert_eq!(code, 200, "addPassword");
    env.push((
        "PUBLIC_CLIENT_SECRET",
        pw["secretText"].as_str().unwrap().to_string(),
    ));
    let r = run(&py, &[&script, "with-secret"], &o, &env).await;
    assert_refused(&r, "invalid_client", "AADSTS700025");
}

/// Public SPA: a page served from the registered SPA origin runs @azure/msal-browser in chromium:
/// loginRedirect (PKCE; the code redeemed cross-origin by the browser) and acquireTokenSilent (the
/// refresh token, cross-origin). A Confidential client's web redirect used the same way from a SPA is
/// refused with AADSTS9002326, as msal-browser reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_spa_with_msal_browser_in_chromium() {
    let _serial = one_at_a_time().await;
    let c = consumers();
    if !c.browser_or_skip("public_spa_with_msal_browser_in_chromium") {
        return;
    }
    let h = harness(
        "interop-spa",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
        |cfg| {
            cfg.token_lifetime_secs = 120;
            cfg.tenants[0].users = vec![user(USER, CLINICIAN_OID)];
        },
    )
    .await;
    let spa_redirect = format!("http://localhost:{}/callback", free_port());
    let web_redirect = format!("http://localhost:{}/callback", free_port());
    for (name, ty, redirect) in [
        ("spa", "Public", &spa_redirect),
        ("portal", "Confidential", &web_redirect),
    ] {
        h.apply::<FhirClientApp>(client_app(
            name,
            json!({"type": ty, "target": {"resourceAppRef": {"name": "fhir"}},
                   "redirectUris": [redirect], "grantAdminConsent": true}),
        ))
        .await
        .unwrap();
    }
    let o = outputs(&h, "spa", "fhir").await;
    assert_eq!(o.secret["REDIRECT_URI"], spa_redirect);
    let resource_app_id = std::fs::read_to_string(o.configmap_dir().join("CLIENT_ID")).unwrap();
    assign_user_role(&h, &resource_app_id, CLINICIAN_OID, "globalReader").await;
    let (node, spa) = node_consumer("spa.mjs");
    let mut env = as_user(&c, USER);
    env.push(("INTEROP_NODE_MODULES", c.node_modules.display().to_string()));

    let r = run(&node, &[&spa], &o, &env).await;
    let claims = assert_fhir_token(&r, &o, "msal-browser");
    assert_eq!(scp(&claims), ["user_impersonation"]);
    assert_eq!(roles(&claims), ["globalReader"]);
    assert_eq!(claims["oid"], CLINICIAN_OID);
    assert_eq!(r["idToken"]["preferred_username"], USER);
    assert_eq!(r["refreshed"]["fromCache"], false, "{r}");
    assert_eq!(r["refreshed"]["newToken"], true, "{r}");

    let web = outputs(&h, "portal", "fhir").await;
    let r = run(&node, &[&spa], &web, &env).await;
    assert_eq!(r["ok"], false, "{r}");
    let msg = r["error"]["errorMessage"].as_str().unwrap_or_default();
    assert!(msg.contains("AADSTS9002326"), "{r}");
}

/// Workload identity end to end, as on AKS: the emulator trusts this control plane's service-account
/// issuer (its OIDC discovery and JWKS, read from the API server), the pod's projected token comes from
/// the real kube-apiserver (TokenRequest for `api://AzureADTokenExchange`), and each library's
/// WorkloadIdentityCredential (azure-identity, @azure/identity, azidentity) exchanges it with nothing
/// else but the Secret's keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_with_a_projected_service_account_token() {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use kube::api::PostParams;

    let _serial = one_at_a_time().await;
    let c = consumers();
    let mut h = Harness::new("interop-wi", full_permissions()).await;
    let get = |path: &'static str| {
        let client = h.client.clone();
        async move {
            let req = http::Request::get(path).body(Vec::new()).unwrap();
            serde_json::from_str::<Value>(&client.request_text(req).await.unwrap()).unwrap()
        }
    };
    let discovery = get("/.well-known/openid-configuration").await;
    let issuer = discovery["issuer"].as_str().unwrap().to_string();
    assert!(
        discovery["jwks_uri"].as_str().is_some(),
        "the API server's OIDC discovery: {discovery}"
    );
    let jwks = get("/openid/v1/jwks").await;
    let resp = h
        .http
        .post(format!("{}/_emulator/trusted-issuers", h.emu.base_url()))
        .json(&json!({"issuer": issuer, "jwks": jwks}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let mut cfg = h.config();
    cfg.service_account_issuer = Some(issuer);
    h.start_operator(cfg).await;
    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
    ))
    .await
    .unwrap();
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "exporter"}})).unwrap();
    h.api::<ServiceAccount>()
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
    h.apply::<FhirClientApp>(client_app(
        "job",
        json!({"type": "Service", "target": {"resourceAppRef": {"name": "fhir"}},
               "roles": ["globalReader"], "assignAppRoles": true,
               "credential": {"type": "WorkloadIdentity", "serviceAccountName": "exporter"}}),
    ))
    .await
    .unwrap();
    let o = outputs(&h, "job", "fhir").await;
    assert!(!o.secret.contains_key("AZURE_CLIENT_SECRET"));
    assert!(o.secret.contains_key("AZURE_FEDERATED_TOKEN_FILE"));

    // The projected token the AKS webhook would mount, from the real API server.
    let token_file = o.dir.path().join("azure-identity-token");
    std::fs::write(&token_file, h.federated_token("exporter").await).unwrap();
    let env = [
        ("INTEROP_NODE_MODULES", c.node_modules.display().to_string()),
        // The projected volume, mounted here rather than at the webhook's default path.
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            token_file.display().to_string(),
        ),
    ];
    let (py, py_script) = python_consumer(&c, "service.py");
    let (node, node_script) = node_consumer("service.mjs");
    for (program, script) in [
        (py, py_script),
        (node, node_script),
        (c.go.clone(), "--".into()),
    ] {
        let r = run(&program, &[&script, "workload-identity"], &o, &env).await;
        let claims = assert_fhir_token(&r, &o, &format!("{script} workload-identity"));
        assert_eq!(roles(&claims), ["globalReader"], "{script}");
    }
    h.stop_operator().await;
}

/// `hack/as-azure.sh`: with the emulator answering as login.microsoftonline.com and
/// graph.microsoft.com, the operator runs with its defaults (no authority host, no Graph URL) and writes
/// a Secret naming Entra itself; azure-identity's EnvironmentCredential() — no settings at all, not even
/// instance discovery off — gets a token with that Secret alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_azure_environment_credential_with_no_settings() {
    let _serial = one_at_a_time().await;
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "\n\n######## SKIPPED: hack/as-azure.sh needs root (unshare --net --mount) ########\n"
        );
        return;
    }
    let c = consumers();
    let operator_bin = repo_root().join("target/debug/fhir-app-operator");
    assert!(
        operator_bin.exists(),
        "build it first: cargo build -p fhir-app-operator"
    );
    let h = Harness::with_emulator("interop-as-azure", |cfg, _| {
        cfg.tenants[0].apps[0].permissions = full_permissions();
        cfg.hostnames = [
            "login.microsoftonline.com",
            "graph.microsoft.com",
            "management.azure.com",
        ]
        .map(String::from)
        .to_vec();
    })
    .await;
    let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG of the test control plane");
    let server: Value = serde_yaml::from_str::<Value>(
        &std::fs::read_to_string(&kubeconfig).unwrap(),
    )
    .unwrap()["clusters"][0]["cluster"]["server"]
        .clone();
    let api_port = server
        .as_str()
        .and_then(|s| s.rsplit(':').next())
        .unwrap()
        .to_string();
    let script = repo_root().join("hack/as-azure.sh");
    let emulator = h.emu.authority_host();
    let ca = h.emu.ca_file().display().to_string();
    let as_azure = |extra: &[&str]| {
        let mut v: Vec<String> = vec![
            "--emulator".into(),
            emulator.clone(),
            "--ca".into(),
            ca.clone(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };

    // The operator, unconfigured but for its identity, its namespace and the API server.
    let mut op = tokio::process::Command::new(&script);
    op.args(as_azure(&[
        "--forward",
        &api_port,
        "--",
        &operator_bin.display().to_string(),
    ]))
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .env("KUBECONFIG", &kubeconfig)
    .env("AZURE_TENANT_ID", h.emu.tenant_id())
    .env("AZURE_CLIENT_ID", h.emu.client_id())
    .env("AZURE_CLIENT_SECRET", h.emu.client_secret())
    .env("FHIR_OP_WATCH_NAMESPACE", &h.ns.name)
    .env("FHIR_OP_HTTP_ADDR", "127.0.0.1:0")
    .env("FHIR_OP_RESYNC", "3s")
    .env("FHIR_OP_CLUSTER_NAME", "it")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .process_group(0);
    let child = op
        .spawn()
        .expect("start the operator under hack/as-azure.sh");
    // Stopped by its process group's id (as-azure.sh, its forwarders and the operator), also on panic;
    // SIGTERM lets as-azure.sh remove its temporary directory.
    struct Stop(i32);
    impl Drop for Stop {
        fn drop(&mut self) {
            unsafe { libc::kill(-self.0, libc::SIGTERM) };
        }
    }
    let _stop = Stop(child.id().expect("pid") as i32);

    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
    ))
    .await
    .unwrap();
    h.apply::<FhirClientApp>(client_app(
        "daemon",
        json!({"type": "Service", "target": {"resourceAppRef": {"name": "fhir"}},
               "roles": ["globalReader"], "assignAppRoles": true}),
    ))
    .await
    .unwrap();
    h.wait_condition::<FhirResourceApp>("fhir", "Ready", "True", Duration::from_secs(90))
        .await;
    let o = outputs(&h, "daemon", "fhir").await;
    assert_eq!(
        o.secret["AZURE_AUTHORITY_HOST"],
        "https://login.microsoftonline.com/"
    );
    let (py, service) = python_consumer(&c, "service.py");
    let args = as_azure(&["--", &py.display().to_string(), &service, "env-defaults"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run(&script, &args, &o, &[]).await;
    let claims = assert_fhir_token(&r, &o, "EnvironmentCredential() under as-azure");
    assert_eq!(roles(&claims), ["globalReader"]);
}
