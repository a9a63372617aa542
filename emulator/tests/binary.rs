//! The `entra-emulator` binary prints `eval`-able lines, serves, and stops on SIGTERM.
mod common;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn binary_prints_env_and_serves() {
    let dir = std::env::temp_dir().join(format!("entra-emu-bin-{}", common::uuid()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    let tid = common::uuid();
    let mut child = Command::new(env!("CARGO_BIN_EXE_entra-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--tenant-id",
            &tid,
            "--verified-domain",
            "fabrikam.example",
            "--permission",
            "Application.ReadWrite.All",
        ])
        .arg("--ca-file")
        .arg(&ca)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut env = std::collections::HashMap::new();
    while !env.contains_key("CA_FILE") {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "binary exited early");
        let (k, v) = line.trim().split_once('=').unwrap();
        env.insert(k.to_string(), v.trim_matches('\'').to_string());
    }
    assert!(
        env["GRAPH_URL"].starts_with("https://127.0.0.1:") && env["GRAPH_URL"].ends_with("/v1.0")
    );
    assert!(env["AZURE_AUTHORITY_HOST"].ends_with('/'));
    assert_eq!(env["AZURE_TENANT_ID"], tid);
    assert_eq!(env["CA_FILE"], ca.display().to_string());
    // The operator's own variable names carry the same values, so the output configures it as is.
    assert_eq!(env["FHIR_OP_GRAPH_URL"], env["GRAPH_URL"]);
    assert_eq!(env["FHIR_OP_EXTRA_CA_FILE"], env["CA_FILE"]);
    // The operator's ARM client (FHIR_OP_ARM_URL) is pointed at the emulator's ARM too.
    let base = env["GRAPH_URL"].trim_end_matches("/v1.0").to_string();
    assert_eq!(env["FHIR_OP_ARM_URL"], base);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
    let c = reqwest::Client::builder()
        .tls_certs_only([cert])
        .build()
        .unwrap();
    let tok: serde_json::Value = c
        .post(format!(
            "{}{tid}/oauth2/v2.0/token",
            env["AZURE_AUTHORITY_HOST"]
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", env["AZURE_CLIENT_ID"].as_str()),
            ("client_secret", env["AZURE_CLIENT_SECRET"].as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = c.post(format!("{}/applications", env["GRAPH_URL"])).bearer_auth(tok["access_token"].as_str().unwrap())
        .json(&serde_json::json!({"displayName": "from-binary", "identifierUris": ["https://fabrikam.example/api"]})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    // ARM answers at FHIR_OP_ARM_URL: a role-assignment list without a token is ARM's 401, not a 404.
    let arm = c
        .get(format!(
            "{}/subscriptions/00000000-0000-0000-0000-000000000001/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01",
            env["FHIR_OP_ARM_URL"]
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(arm.status(), 401);
    let body: serde_json::Value = arm.json().await.unwrap();
    assert_eq!(body["error"]["code"], "AuthenticationFailed");
    unsafe { libc_kill(child.id() as i32) };
    let st = child.wait().unwrap();
    assert!(st.success(), "stops cleanly on SIGTERM: {st:?}");
    let _ = std::fs::remove_dir_all(dir);
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}
unsafe fn libc_kill(pid: i32) {
    unsafe { kill(pid, 15) };
}
