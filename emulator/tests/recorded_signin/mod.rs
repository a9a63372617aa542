//! Conformance of the sign-in: the identity-platform recordings of `shared/recordings-more/`
//! (azidentity's authorization-code, reused-code, device-code, workload-identity and certificate
//! tests) replayed against the emulator. Their form bodies are recorded as `{}`, so each token or
//! device-code request is made anew the way that test made it (a user signs in on the emulator's
//! pages first); status, login header names and JSON shape are compared as for Graph.
use super::{LOGIN_HEADERS, compare_shape};
use crate::common::signin::*;
use crate::common::{cert_assertion, federated_assertion};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Where the sign-in recordings are.
pub fn dir() -> PathBuf {
    std::env::var("SIGNIN_RECORDINGS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/recordings-more")
        })
}

/// The sign-in recordings (the ARM role-assignment ones are `recorded_arm`'s).
fn files() -> Vec<(String, PathBuf)> {
    let dir = dir();
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("recordings at {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| (e.file_name().to_string_lossy().to_string(), e.path()))
        .filter(|(n, _)| n.starts_with("Test") && n.ends_with("Live.json") || n.contains("Live__"))
        .collect();
    v.sort();
    v
}

/// Differences that are right, and why.
fn explained(d: &str) -> Option<&'static str> {
    if d.contains("extra property `/error_uri`") {
        Some(
            "`error_uri` on a token error: Entra sends it on some errors (recorded on AADSTS7000215, interactive-flows.md 1.6), the emulator on all",
        )
    } else if d.contains("missing property `/foci`") {
        Some(
            "`foci` (family of client ids) is set only for Microsoft's first-party public clients (the recording used one); an app the operator registers is never in the family",
        )
    } else if d.contains("`/tenant_region_scope` is string") {
        Some("`tenant_region_scope` is null in the 2023 recording and a region in the others")
    } else {
        None
    }
}

pub struct Report {
    pub matched: usize,
    pub total: usize,
    pub unexplained: Vec<String>,
    pub markdown: String,
}

type Answer = (u16, Vec<String>, Option<String>, Option<Value>);

async fn answer(r: reqwest::Response) -> Answer {
    let st = r.status().as_u16();
    let h: Vec<String> = r
        .headers()
        .keys()
        .map(|k| k.as_str().to_ascii_lowercase())
        .collect();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    (st, h, ct, r.json().await.ok())
}

/// Makes the request a recorded exchange stands for; None if it is not one the emulator serves.
async fn request_for(
    name: &str,
    path: &str,
    f: &Fixture,
    b: &mut Browser,
    device: &mut Option<String>,
) -> Option<Answer> {
    let base = f.emu.base_url();
    let tok = format!("{base}/{}/oauth2/v2.0/token", f.tid);
    let scope = format!("{API_URI}/user_impersonation openid offline_access");
    if path.starts_with("/common/discovery/instance") {
        let ae = format!("{base}/{}/oauth2/v2.0/authorize", f.tid);
        let q = serde_urlencoded::to_string([
            ("api-version", "1.1"),
            ("authorization_endpoint", ae.as_str()),
        ])
        .unwrap();
        return Some(
            answer(
                f.c.get(format!("{base}/common/discovery/instance?{q}"))
                    .send()
                    .await
                    .unwrap(),
            )
            .await,
        );
    }
    if path.ends_with("/v2.0/.well-known/openid-configuration") {
        return Some(
            answer(
                f.c.get(format!(
                    "{base}/{}/v2.0/.well-known/openid-configuration",
                    f.tid
                ))
                .send()
                .await
                .unwrap(),
            )
            .await,
        );
    }
    if path.ends_with("/oauth2/v2.0/devicecode") {
        let r =
            f.c.post(format!("{base}/{}/oauth2/v2.0/devicecode", f.tid))
                .form(&[("client_id", f.native.as_str()), ("scope", scope.as_str())])
                .send()
                .await
                .unwrap();
        let a = answer(r).await;
        let body = a.3.clone().unwrap_or_default();
        *device = body["device_code"].as_str().map(str::to_string);
        // The user completes the code page before the device's next poll.
        let page = b
            .post(
                "/devicelogin",
                &[("otc", body["user_code"].as_str().unwrap_or(""))],
            )
            .await;
        let consent = b.sign_in(&f.tid, &page, ADA, PW).await;
        b.consent(&f.tid, &consent, true, false).await;
        return Some(a);
    }
    if !path.ends_with("/oauth2/v2.0/token") {
        return None;
    }
    let form: Vec<(String, String)> = if name.contains("AuthorizationCode") {
        let public = name.contains("Public");
        let (client, redirect) = if public {
            (&f.native, NATIVE_REDIRECT)
        } else {
            (&f.web, WEB_REDIRECT)
        };
        let code = code_for(f, b, client, redirect, &[]).await["code"].clone();
        let mut v = vec![
            ("grant_type", "authorization_code".to_string()),
            ("client_id", client.clone()),
            ("code", code),
            ("redirect_uri", redirect.into()),
            ("scope", scope.clone()),
            ("client_info", "1".into()),
        ];
        if !public {
            v.push(("client_secret", f.web_secret.clone()));
        }
        if name.contains("InvalidCode") {
            // The recorded test redeemed its code once before; this is the second time.
            f.c.post(&tok).form(&v).send().await.unwrap();
        }
        v.into_iter().map(|(k, x)| (k.to_string(), x)).collect()
    } else if name.contains("DeviceCode") {
        vec![
            (
                "grant_type".into(),
                "urn:ietf:params:oauth:grant-type:device_code".into(),
            ),
            ("client_id".into(), f.native.clone()),
            ("device_code".into(), device.clone().unwrap_or_default()),
            ("client_info".into(), "1".into()),
        ]
    } else {
        let assertion = if name.contains("Certificate") {
            cert_assertion(&f.emu.client_id(), &tok, "RS256", "x5t-std", 600)
        } else {
            federated_assertion(ISSUER, SA, "api://AzureADTokenExchange", 600)
        };
        vec![
            ("grant_type".into(), "client_credentials".into()),
            ("client_id".into(), f.emu.client_id()),
            (
                "client_assertion_type".into(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ),
            ("client_assertion".into(), assertion),
            (
                "scope".into(),
                "https://graph.microsoft.com/.default".into(),
            ),
        ]
    };
    Some(answer(f.c.post(&tok).form(&form).send().await.unwrap()).await)
}

/// Status, login header names, content type and body shape; (unexplained, explained) differences.
fn compare(e: &Value, a: &Answer) -> (Vec<String>, Vec<String>) {
    let mut diffs = vec![];
    let mut notes = vec![];
    let rec_status = e["StatusCode"].as_u64().unwrap_or(0) as u16;
    if a.0 != rec_status {
        diffs.push(format!("status {}, recorded {rec_status}", a.0));
    }
    let rec_h: Vec<String> = e["ResponseHeaders"]
        .as_object()
        .map(|o| o.keys().map(|k| k.to_ascii_lowercase()).collect())
        .unwrap_or_default();
    for h in LOGIN_HEADERS {
        match (rec_h.iter().any(|x| x == h), a.1.iter().any(|x| x == h)) {
            (true, false) => diffs.push(format!("header `{h}` missing")),
            (false, true) => diffs.push(format!("header `{h}` not in the recording")),
            _ => {}
        }
    }
    let rec_ct = e["ResponseHeaders"]["Content-Type"]
        .as_str()
        .map(|s| s.replace(' ', "").to_ascii_lowercase());
    if rec_ct.is_some()
        && rec_ct
            != a.2
                .as_ref()
                .map(|s| s.replace(' ', "").to_ascii_lowercase())
    {
        diffs.push(format!("content-type {:?}, recorded {rec_ct:?}", a.2));
    }
    match (&e["ResponseBody"], &a.3) {
        (Value::Object(_), Some(o)) => {
            compare_shape("", &e["ResponseBody"], o, &mut diffs, &mut notes)
        }
        (Value::Object(_), None) => diffs.push("no JSON body, recorded one".into()),
        _ => {}
    }
    let (expl, rest): (Vec<String>, Vec<String>) =
        diffs.into_iter().partition(|d| explained(d).is_some());
    notes.extend(
        expl.iter()
            .map(|d| format!("{d} — {}", explained(d).unwrap())),
    );
    (rest, notes)
}

/// Replays every sign-in recording; the markdown section for CONFORMANCE.md.
pub async fn report() -> Report {
    let mut md = String::new();
    let (mut matched, mut total, mut unexplained, mut notes) = (
        0,
        0,
        vec![],
        std::collections::BTreeMap::<String, usize>::new(),
    );
    let mut tables = String::new();
    let mut summary = String::new();
    for (name, path) in files() {
        let rec: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let f = fixture(2).await;
        let mut b = Browser::new(&f.emu);
        let mut device = None;
        let (mut fm, mut ft) = (0, 0);
        let mut rows = String::new();
        for (i, e) in rec["Entries"].as_array().unwrap().iter().enumerate() {
            let uri = e["RequestUri"].as_str().unwrap();
            let p = uri
                .split_once("login.microsoftonline.com")
                .map(|x| x.1)
                .unwrap_or(uri);
            let method = e["RequestMethod"].as_str().unwrap();
            let short: String = format!("{method} {}", p.split('?').next().unwrap())
                .chars()
                .take(100)
                .collect();
            let Some(a) = request_for(&name, p, &f, &mut b, &mut device).await else {
                unexplained.push(format!("`{name}` #{} {short}: not replayed", i + 1));
                continue;
            };
            ft += 1;
            let (d, n) = compare(e, &a);
            for x in n {
                *notes.entry(x).or_default() += 1;
            }
            let rs = e["StatusCode"].as_u64().unwrap_or(0);
            if d.is_empty() {
                fm += 1;
                writeln!(rows, "| {} | `{short}` | {rs} | {} | ✅ |", i + 1, a.0).unwrap();
            } else {
                writeln!(
                    rows,
                    "| {} | `{short}` | {rs} | {} | ❌ {} |",
                    i + 1,
                    a.0,
                    d.join("; ").replace('|', "\\|")
                )
                .unwrap();
                unexplained.extend(
                    d.iter()
                        .map(|x| format!("`{name}` #{} {short}: {x}", i + 1)),
                );
            }
        }
        f.emu.shutdown().await;
        writeln!(summary, "| `{name}` | {fm} / {ft} |").unwrap();
        writeln!(tables, "\n### `{name}` — {fm} / {ft}\n\n| # | request | recorded | emulator | result |\n|---|---|---|---|---|\n{rows}").unwrap();
        matched += fm;
        total += ft;
    }
    writeln!(md, "\n## Sign-in recordings (`shared/recordings-more/`)\n").unwrap();
    writeln!(md, "Real identity-platform exchanges recorded by Azure SDK for Go's azidentity tests (see that folder's NOTICE.md). Their form bodies are recorded as `{{}}`, so each token and device-code request is made anew the way that test made it: for the authorization-code files a user first signs in on the emulator's pages (the confidential test redeems with the web client's secret, the public one with a mobile/desktop client and no secret; the reused-code tests redeem the code a second time), for the device-code file the user completes the code page before the poll, the workload-identity and certificate files send a federated and a certificate client assertion. MSAL sends `client_info=1`, so the replay does. Compared as above: status, login header names, content type, JSON property names and types.\n").unwrap();
    writeln!(md, "**Exchanges matched: {matched} / {total}.**\n\n| file | matched / total |\n|---|---|\n{summary}").unwrap();
    writeln!(md, "### Remaining differences\n").unwrap();
    if unexplained.is_empty() {
        writeln!(md, "None.\n").unwrap();
    }
    for u in &unexplained {
        writeln!(md, "- {u}").unwrap();
    }
    writeln!(md, "### Explained, accepted differences\n").unwrap();
    for (n, c) in &notes {
        writeln!(md, "- {n} ({c} occurrences)").unwrap();
    }
    writeln!(md, "- The recordings' hosts (login.microsoftonline.com), tenant (`fake-tenant`), client and scopes (the management API) are the emulator's; values are not compared.").unwrap();
    md.push_str(&tables);
    Report {
        matched,
        total,
        unexplained,
        markdown: md,
    }
}
