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
use fhir_app_operator_tests::operator::{Harness, client_app, full_permissions, resource_app};
use fhir_app_operator_tests::repo_root;
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};

const FIX: &str = "make interop-deps   (or: bash hack/interop/install.sh)";
const USER: &str = "clinician@contoso.example";
const PASSWORD: &str = "Interop-Passw0rd";

/// Where the consumers' runtimes and libraries are installed (outside the repository).
struct Consumers {
    python: PathBuf,
    node_modules: PathBuf,
    browser_modules: PathBuf,
}

/// Runs `hack/interop/install.sh` (cached by lockfile hash: a no-op after the first run).
fn consumers() -> Consumers {
    let out = std::process::Command::new("bash")
        .arg(repo_root().join("hack/interop/install.sh"))
        .output()
        .unwrap_or_else(|e| panic!("run hack/interop/install.sh: {e}; install with: {FIX}"));
    assert!(
        out.status.success(),
        "the interop consumers are not installed and could not be installed here:\n{}\ninstall with: {FIX}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("install.sh printed no {k}; install with: {FIX}"))
    };
    Consumers {
        python: get("INTEROP_PYTHON"),
        node_modules: get("INTEROP_NODE_MODULES"),
        browser_modules: get("BROWSER_NODE_MODULES"),
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
        // requests (azure-core, MSAL Python) and Node read these; nothing else is trusted.
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("NODE_EXTRA_CA_CERTS", &ca)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .kill_on_drop(true);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let what = format!("{} {}", program.display(), args.join(" "));
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer in 120 s"))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stdout.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "{what} exited {:?} without a JSON result ({e}):\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        )
    });
    assert!(out.status.success(), "{what} failed: {v}\nstderr: {stderr}");
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
/// ClientCertificateCredential, and MSAL Python's client credentials, each get a token the FHIR server
/// accepts (signature, audience, issuer from the ConfigMap) carrying the client's app roles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_clients_with_python_azure_identity_and_msal() {
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
    let (py, script) = python_consumer(&c, "service.py");

    let secret = outputs(&h, "daemon", "fhir").await;
    for way in ["env-credential", "msal-secret"] {
        let r = run(&py, &[&script, way], &secret, &[]).await;
        let claims = assert_fhir_token(&r, &secret, way);
        assert_eq!(roles(&claims), ["globalExporter", "globalReader"], "{way}");
    }

    let cert = outputs(&h, "daemon-cert", "fhir").await;
    assert!(
        !cert.secret.contains_key("AZURE_CLIENT_SECRET"),
        "a Certificate client has no secret"
    );
    // The Secret mounted as a volume at SECRET_DIR rather than at the default mount path.
    let pem = cert.secret_dir().join("client-certificate.pem");
    for way in ["env-credential", "client-certificate", "msal-certificate"] {
        let extra = [("AZURE_CLIENT_CERTIFICATE_PATH", pem.display().to_string())];
        let r = run(&py, &[&script, way], &cert, &extra).await;
        let claims = assert_fhir_token(&r, &cert, way);
        assert_eq!(roles(&claims), ["globalExporter", "globalReader"], "{way}");
    }
    let _ = &c.node_modules;
    let _ = &c.browser_modules;
}
