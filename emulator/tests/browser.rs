//! A real browser signs in: Debian's chromium, driven by playwright-core (hack/browser/signin.mjs),
//! fills in the emulator's sign-in page, accepts the consent page and lands on a loopback redirect
//! with a code, which this test then redeems with PKCE. Needs `make browser-deps` (chromium from
//! apt, playwright-core from npm into a cache outside the repository); FHIR_OP_SKIP_BROWSER=1 skips.
mod common;
use common::signin::*;
use common::verify_with_jwks;
use std::path::PathBuf;

const FIX: &str = "make browser-deps   (or: bash hack/browser/install.sh)";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The node_modules folder `hack/browser/install.sh` fills: keyed by the lockfile's hash.
fn node_modules() -> PathBuf {
    let lock = std::fs::read(repo_root().join("hack/browser/package-lock.json")).unwrap();
    let hash: String = entra_emulator::crypto::sha256(&lock)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let cache = std::env::var("FHIR_OP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/fhir-app-operator")
        });
    cache.join("npm").join(&hash[..16]).join("node_modules")
}

/// Answers every request on a loopback port with a small page (the app's redirect target).
async fn loopback_app() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = s.read(&mut buf).await;
                let body = "<!DOCTYPE html><title>app</title><p>signed in</p>";
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    serde_urlencoded::from_str(url.split_once('?').map(|x| x.1).unwrap_or("")).unwrap()
}

#[tokio::test]
async fn chromium_signs_in_consents_and_the_code_redeems_with_pkce() {
    if std::env::var("FHIR_OP_SKIP_BROWSER").as_deref() == Ok("1") {
        // Straight to stderr: the test harness captures eprintln! of passing tests.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n\n######## SKIPPED: the browser sign-in test (FHIR_OP_SKIP_BROWSER=1) ########\n"
        );
        return;
    }
    let modules = node_modules();
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "no /usr/bin/chromium; run: {FIX}"
    );
    assert!(
        modules.join("playwright-core/package.json").exists(),
        "no playwright-core in {}; run: {FIX}",
        modules.display()
    );

    let f = fixture(2).await;
    let port = loopback_app().await;
    // Registered as http://localhost/callback (web); the loopback port is ignored when matching.
    let callback = format!("http://localhost:{port}/callback");
    let (verifier, challenge) = pkce();
    let scope = format!("{API_URI}/user_impersonation openid profile offline_access");
    let hostile = "\"><script>alert('hint')</script>";
    let q = |extra: &[(&str, &str)]| {
        let mut p = vec![
            ("client_id", f.web.as_str()),
            ("response_type", "code"),
            ("redirect_uri", callback.as_str()),
            ("scope", scope.as_str()),
        ];
        p.extend_from_slice(extra);
        format!("{}{}", f.emu.base_url(), authorize_url(&f.tid, &p))
    };
    let url = q(&[
        ("state", "<script>alert('state')</script>st-1"),
        ("nonce", "n-1"),
        ("login_hint", hostile),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let silent = q(&[("prompt", "none"), ("state", "st-2")]);
    let user_data = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("chromium-profile-{}", common::uuid()));
    let args = serde_json::json!({"url": url, "silentUrl": silent, "callback": callback, "user": ADA, "password": PW,
        "userDataDir": user_data});
    let script = repo_root().join("hack/browser/signin.mjs");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .arg(args.to_string())
            .env("BROWSER_NODE_MODULES", &modules)
            .output()
    })
    .await
    .unwrap()
    .expect("node runs");
    let _ = std::fs::remove_dir_all(&user_data);
    assert!(
        out.status.success(),
        "browser script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        r["dialogs"],
        serde_json::json!([]),
        "a reflected value ran as script"
    );
    assert_eq!(
        r["loginPrefill"], hostile,
        "login_hint shown as text, unchanged"
    );
    assert!(
        r["permissions"]
            .as_str()
            .unwrap()
            .contains("user_impersonation"),
        "{r}"
    );

    let p = query_of(r["callback"].as_str().unwrap());
    assert_eq!(p["state"], "alert('state')st-1", "tags stripped from state");
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", f.web.as_str()),
        ("client_secret", f.web_secret.as_str()),
        ("code", p["code"].as_str()),
        ("redirect_uri", callback.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let (st, _, v) = token(&f, false, &form, &[]).await;
    assert_eq!(st, 200, "{v}");
    let at = verify_with_jwks(&f.c, &f.emu, v["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (at["preferred_username"].as_str(), at["scp"].as_str()),
        (Some(ADA), Some("user_impersonation"))
    );
    let idt = verify_with_jwks(&f.c, &f.emu, v["id_token"].as_str().unwrap()).await;
    assert_eq!(idt["nonce"], "n-1");
    // The second sign-in was silent: the session cookie, no page, a fresh code.
    let s = query_of(r["silent"].as_str().unwrap());
    assert_eq!(s["state"], "st-2");
    assert!(s.contains_key("code") && s["code"] != p["code"], "{s:?}");
    f.emu.shutdown().await;
}
