//! Microsoft's Graph SDK for Python (msgraph-sdk, from PyPI, pinned in interop/python/requirements.txt)
//! reads the emulator's delta queries on applications the way a directory sync does: the initial
//! round page by page through `@odata.nextLink`, then only what changed through `@odata.deltaLink`,
//! with `@removed` for a deleted application. The SDK parses the emulator's answers with its own
//! generated models (`DeltaGetResponse`, `Application`), so a wire shape it cannot read fails here.
use std::time::{Duration, Instant};

use fhir_app_operator_tests::fhir::installed;
use fhir_app_operator_tests::repo_root;
use serde_json::{Value, json};

struct Sdk {
    python: std::path::PathBuf,
    emu: entra_emulator::Running,
}

impl Sdk {
    /// Runs interop/python/graph_delta.py with the bootstrap app's credentials (it holds
    /// Application.ReadWrite.OwnedBy, one of delta's documented permissions); its JSON line.
    async fn run(&self, args: &[&str]) -> Value {
        let script = repo_root().join("interop/python/graph_delta.py");
        let ca = self.emu.ca_file();
        let out = tokio::process::Command::new(&self.python)
            .arg(&script)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GRAPH_URL", self.emu.base_url())
            .env("AZURE_AUTHORITY_HOST", self.emu.authority_host())
            .env("AZURE_TENANT_ID", self.emu.tenant_id())
            .env("AZURE_CLIENT_ID", self.emu.client_id())
            .env("AZURE_CLIENT_SECRET", self.emu.client_secret())
            .env("SSL_CERT_FILE", &ca)
            .env("REQUESTS_CA_BUNDLE", &ca)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(120), out)
            .await
            .expect("graph_delta.py answered within 120 s")
            .expect("graph_delta.py ran");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "graph_delta.py {args:?} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("graph_delta.py printed no JSON ({e}): {stdout}"))
    }

    async fn graph(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let http = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.emu.ca_pem().as_bytes()).unwrap(),
            )
            .build()
            .unwrap();
        let mut req = http
            .request(method, format!("{}{path}", self.emu.graph_url()))
            .bearer_auth(self.emu.admin_token(&self.emu.tenant_id()));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("graph call");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap_or(Value::Null)
    }
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[0].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgraph_sdk_reads_the_initial_round_and_then_only_the_changes() {
    let python = installed()
        .remove("INTEROP_PYTHON")
        .expect("install.sh printed INTEROP_PYTHON");
    let mut cfg = entra_emulator::Config::default();
    // Pages of 2, so the SDK must follow @odata.nextLink through the initial round.
    cfg.delta.page_size = 2;
    let sdk = Sdk {
        python,
        emu: entra_emulator::start(cfg).await.expect("start emulator"),
    };
    let post = reqwest::Method::POST;
    let mut made = vec![];
    for i in 0..5 {
        let app = sdk
            .graph(
                post.clone(),
                "/applications",
                Some(json!({"displayName": format!("sync-{i}")})),
            )
            .await;
        made.push(app["id"].as_str().unwrap().to_string());
    }

    let initial = sdk.run(&["initial"]).await;
    let seen = ids(&initial, "changed");
    for id in &made {
        assert!(
            seen.contains(id),
            "{id} missing from the initial round: {initial}"
        );
    }
    assert!(
        initial["pages"].as_u64().unwrap() >= 3,
        "paged in 2s: {initial}"
    );
    assert_eq!(initial["removed"], json!([]), "{initial}");

    let (edited, deleted) = (&made[0], &made[1]);
    sdk.graph(
        reqwest::Method::PATCH,
        &format!("/applications/{edited}"),
        Some(json!({"displayName": "sync-renamed"})),
    )
    .await;
    sdk.graph(
        reqwest::Method::DELETE,
        &format!("/applications/{deleted}"),
        None,
    )
    .await;
    let created = sdk
        .graph(
            post,
            "/applications",
            Some(json!({"displayName": "sync-new"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Changes show once replicated (the emulator's replication lag): poll as a sync tool does.
    let (mut link, mut changed, mut removed) = (
        initial["delta_link"].as_str().unwrap().to_string(),
        vec![],
        vec![],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while (changed.len() < 2 || removed.is_empty()) && Instant::now() < deadline {
        let next = sdk.run(&["next", &link]).await;
        changed.extend(next["changed"].as_array().unwrap().iter().cloned());
        removed.extend(next["removed"].as_array().unwrap().iter().cloned());
        link = next["delta_link"].as_str().unwrap().to_string();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let changed_ids: Vec<&str> = changed.iter().map(|p| p[0].as_str().unwrap()).collect();
    assert!(
        changed.contains(&json!([edited, "sync-renamed"])),
        "the rename, with its new name: {changed:?}"
    );
    assert!(
        changed_ids.contains(&created.as_str()),
        "the new application: {changed:?}"
    );
    assert!(
        !changed_ids.contains(&made[2].as_str()),
        "an untouched application is not sent again: {changed:?}"
    );
    // A soft-deleted application comes as @removed "changed" (restorable for 30 days; Learn
    // `application-delta`, docs/entra-facts/claims-and-delta.md part B).
    assert_eq!(removed, vec![json!([deleted, "changed"])], "{removed:?}");
}
