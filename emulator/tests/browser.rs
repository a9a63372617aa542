//! A real browser signs in: Debian's chromium, driven by playwright-core (interop/browser/signin.mjs,
//! the script the interop consumers sign in with too), fills in the emulator's sign-in page, accepts
//! the consent page and lands on a loopback redirect with a code, which this test then redeems with
//! PKCE. Needs `make browser-deps` (chromium from apt, playwright-core from npm into a cache outside
//! the repository); FHIR_OP_SKIP_BROWSER=1 skips.
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

/// Answers every request on a loopback port with `page(port)` (the app's redirect target).
async fn loopback_app(page: impl Fn(u16) -> String + Send + 'static) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let body: &'static str = Box::leak(page(port).into_boxed_str());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = s.read(&mut buf).await;
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

/// node_modules for the browser, or None (and a loud line) when FHIR_OP_SKIP_BROWSER=1; panics
/// with the one command to run when chromium or playwright-core is missing.
fn browser_deps() -> Option<PathBuf> {
    if std::env::var("FHIR_OP_SKIP_BROWSER").as_deref() == Ok("1") {
        // Straight to stderr: the test harness captures eprintln! of passing tests.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n\n######## SKIPPED: a browser sign-in test (FHIR_OP_SKIP_BROWSER=1) ########\n"
        );
        return None;
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
    Some(modules)
}

/// Runs interop/browser/signin.mjs with these arguments (plus a fresh profile under target/, and the
/// callback URLs reported whole, since the test redeems the code itself); its JSON, once it landed.
async fn run_browser(modules: PathBuf, mut args: serde_json::Value) -> serde_json::Value {
    let user_data = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("chromium-profile-{}", common::uuid()));
    args["userDataDir"] = serde_json::json!(user_data);
    args["withQuery"] = serde_json::json!(true);
    let script = repo_root().join("interop/browser/signin.mjs");
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
    assert!(
        r["error"].is_null() && r["landed"].is_string(),
        "the browser did not reach the callback: {r}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    r
}

#[tokio::test]
async fn chromium_signs_in_consents_and_the_code_redeems_with_pkce() {
    let Some(modules) = browser_deps() else {
        return;
    };
    let f = fixture(2).await;
    let port = loopback_app(|_| "<!DOCTYPE html><title>app</title><p>signed in</p>".into()).await;
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
    let args = serde_json::json!({"url": url, "silentUrl": silent, "callback": callback, "user": ADA, "password": PW});
    let r = run_browser(modules, args).await;
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

/// The SPA's redirect page: redeems its code from the browser, cross-origin, as MSAL.js does
/// (with `X-AnchorMailbox`, so the browser sends a CORS preflight first).
fn spa_page(token_url: &str, client_id: &str, verifier: &str, port: u16) -> String {
    format!(
        r#"<!DOCTYPE html><title>spa</title><pre id="result"></pre><script>
const q = new URLSearchParams(location.search);
const body = new URLSearchParams({{grant_type: "authorization_code", client_id: "{client_id}", code: q.get("code"),
  redirect_uri: "http://localhost:{port}/callback", code_verifier: "{verifier}", scope: "openid offline_access"}});
fetch("{token_url}", {{method: "POST", body, headers: {{"X-AnchorMailbox": "UPN:{ADA}"}}}})
  .then(async r => {{ const j = await r.json(); document.getElementById("result").textContent =
    JSON.stringify({{status: r.status, access_token: !!j.access_token, refresh_token: !!j.refresh_token, error: j.error || null}}); }})
  .catch(e => {{ document.getElementById("result").textContent = JSON.stringify({{failed: String(e)}}); }});
</script>"#
    )
}

#[tokio::test]
async fn chromium_spa_redeems_its_code_cross_origin_with_cors() {
    let Some(modules) = browser_deps() else {
        return;
    };
    let f = fixture(2).await;
    let (verifier, challenge) = pkce();
    let token_url = format!("{}{}/oauth2/v2.0/token", f.emu.authority_host(), f.tid);
    let (spa, v) = (f.spa.clone(), verifier.clone());
    let port = loopback_app(move |port| spa_page(&token_url, &spa, &v, port)).await;
    // The SPA is registered with http://localhost:3000/callback; the loopback port is ignored.
    let callback = format!("http://localhost:{port}/callback");
    let scope = format!("{API_URI}/user_impersonation openid offline_access");
    let url = format!(
        "{}{}",
        f.emu.base_url(),
        authorize_url(
            &f.tid,
            &[
                ("client_id", f.spa.as_str()),
                ("response_type", "code"),
                ("redirect_uri", callback.as_str()),
                ("scope", scope.as_str()),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("response_mode", "query")
            ]
        )
    );
    let args = serde_json::json!({"url": url, "callback": callback, "user": ADA, "password": PW, "resultSelector": "#result"});
    let r = run_browser(modules, args).await;
    let result: serde_json::Value = serde_json::from_str(r["result"].as_str().unwrap()).unwrap();
    // The browser let the page read the answer: the preflight and the response carried CORS headers.
    assert_eq!(
        result,
        serde_json::json!({"status": 200, "access_token": true, "refresh_token": true, "error": null})
    );
    let calls = f.emu.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.method == "OPTIONS" && c.path.ends_with("/oauth2/v2.0/token")),
        "the browser sent a preflight"
    );
    f.emu.shutdown().await;
}
