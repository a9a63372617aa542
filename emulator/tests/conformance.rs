//! Conformance: replay every recorded Graph / login request of `shared/graph-recordings` against the
//! emulator and compare status codes, the Graph-relevant response header names, and the JSON property
//! names and types of each body. The report is `emulator/CONFORMANCE.md`: this test fails when the
//! committed one is not what the replay gives; `UPDATE_CONFORMANCE=1 cargo test -p entra-emulator
//! --test conformance` writes it anew. Without the recordings (`shared/graph-recordings`,
//! `shared/recordings-more` beside the repository) the test is skipped with a message naming them.
mod common;
mod recorded_arm;
mod recorded_ids;
mod recorded_signin;
use common::*;
use recorded_ids::{learn_ids, substitute};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Debug, Clone)]
struct Exchange {
    method: String,
    url: String,
    req_body: Option<String>,
    status: u16,
    headers: Vec<String>,
    content_type: Option<String>,
    body: Option<Value>,
}

fn recordings_dir() -> PathBuf {
    std::env::var("GRAPH_RECORDINGS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/graph-recordings")
        })
}

fn parse_json_body(s: &str) -> Option<Value> {
    if s.trim().is_empty() {
        None
    } else {
        serde_json::from_str(s).ok()
    }
}

fn load_autorest(text: &str) -> Vec<Exchange> {
    let v: Value = serde_json::from_str(text).unwrap();
    let mut out = vec![];
    for (_, e) in v.as_object().unwrap() {
        let req = &e["Request"];
        let resp = &e["Response"];
        let mut headers: Vec<String> = vec![];
        let mut ct = None;
        for part in ["Headers", "ContentHeaders"] {
            if let Some(h) = resp[part].as_object() {
                for (k, v) in h {
                    headers.push(k.to_ascii_lowercase());
                    if k.eq_ignore_ascii_case("content-type") {
                        ct = v[0].as_str().map(str::to_string);
                    }
                }
            }
        }
        out.push(Exchange {
            method: req["Method"].as_str().unwrap().into(),
            url: req["RequestUri"].as_str().unwrap().into(),
            req_body: req["Content"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            status: resp["StatusCode"].as_u64().unwrap() as u16,
            headers,
            content_type: ct,
            body: resp["Content"].as_str().and_then(parse_json_body),
        });
    }
    out
}

fn load_vcr(text: &str) -> Vec<Exchange> {
    let v: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    let v: Value = serde_json::to_value(v).unwrap();
    v["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let h = i["response"]["headers"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            Exchange {
                method: i["request"]["method"].as_str().unwrap().into(),
                url: i["request"]["uri"].as_str().unwrap().into(),
                req_body: i["request"]["body"].as_str().map(str::to_string),
                status: i["response"]["status"]["code"].as_u64().unwrap() as u16,
                headers: h.keys().map(|k| k.to_ascii_lowercase()).collect(),
                content_type: h
                    .get("content-type")
                    .and_then(|v| v[0].as_str())
                    .map(str::to_string),
                body: i["response"]["body"]["string"]
                    .as_str()
                    .and_then(parse_json_body),
            }
        })
        .collect()
}

/// Index just past the JSON value starting at `start` (brace/bracket matching, string-aware).
fn json_end(s: &[u8], start: usize) -> usize {
    let (mut depth, mut i, mut in_str, mut esc) = (0i32, start, false, false);
    while i < s.len() {
        let c = s[i];
        if in_str {
            if esc {
                esc = false
            } else if c == b'\\' {
                esc = true
            } else if c == b'"' {
                in_str = false
            }
        } else if c == b'"' {
            in_str = true
        } else if c == b'{' || c == b'[' {
            depth += 1
        } else if c == b'}' || c == b']' {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    s.len()
}

fn load_nock(text: &str) -> Vec<Exchange> {
    let mut out = vec![];
    for chunk in text.split("nock('").skip(1) {
        let host = chunk.split('\'').next().unwrap().trim_end_matches(":443");
        let (method, rest) = if let Some(p) = chunk.find(".get('") {
            ("GET", &chunk[p + 6..])
        } else if let Some(p) = chunk.find(".post('") {
            ("POST", &chunk[p + 7..])
        } else {
            continue;
        };
        let path = rest.split('\'').next().unwrap();
        let after_path = &rest[path.len() + 1..];
        let req_body = if method == "POST" && after_path.starts_with(", \"") {
            Some(after_path[3..].split('"').next().unwrap().to_string())
        } else {
            None
        };
        let rp = chunk.find(".reply(").unwrap() + 7;
        let status: u16 = chunk[rp..]
            .split(',')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let bstart = rp + chunk[rp..].find(['{', '[']).unwrap();
        let bend = json_end(chunk.as_bytes(), bstart);
        let body_text = &chunk[bstart..bend];
        let hstart = bend + chunk[bend..].find('[').unwrap();
        let hend = hstart + chunk[hstart..].find("]);").unwrap();
        let items: Vec<String> = chunk[hstart + 1..hend]
            .split(",\n")
            .map(|x| x.trim().trim_matches('\'').to_string())
            .filter(|x| !x.is_empty())
            .collect();
        let mut headers = vec![];
        let mut ct = None;
        for pair in items.chunks(2) {
            headers.push(pair[0].to_ascii_lowercase());
            if pair[0].eq_ignore_ascii_case("content-type") {
                ct = pair.get(1).cloned();
            }
        }
        out.push(Exchange {
            method: method.into(),
            url: format!("{host}{path}"),
            req_body,
            status,
            headers,
            content_type: ct,
            body: serde_json::from_str(body_text).ok(),
        });
    }
    out
}

const GRAPH_HEADERS: &[&str] = &[
    "content-type",
    "odata-version",
    "location",
    "request-id",
    "client-request-id",
    "x-ms-ags-diagnostic",
    "x-ms-resource-unit",
    "cache-control",
    "strict-transport-security",
];
const LOGIN_HEADERS: &[&str] = &[
    "content-type",
    "cache-control",
    "pragma",
    "expires",
    "x-ms-request-id",
    "x-ms-ests-server",
    "strict-transport-security",
    "x-content-type-options",
    "access-control-allow-origin",
    "access-control-allow-methods",
];

/// Properties the emulator returns that a given (older) recording lacks, and why that is right.
fn known_extra(prop: &str) -> Option<&'static str> {
    match prop {
        "serviceManagementReference" => {
            Some("added to Graph v1.0 in 2022; present in the 2022/2023 azure-cli recordings")
        }
        "samlMetadataUrl"
        | "servicePrincipalLockConfiguration"
        | "requestSignatureVerification" => {
            Some("added to Graph v1.0 after 2022; present in the 2023 azure-cli recording")
        }
        "redirectUriSettings" => {
            Some("added to Graph v1.0 `web` in 2023; present in the 2023 azure-cli recording")
        }
        "nativeAuthenticationApisEnabled" => {
            Some("a Graph v1.0 property (Learn `application` resource) newer than every recording")
        }
        "uniqueName" => Some(
            "alternate key added to Graph v1.0 in 2025 (application upsert); newer than every recording",
        ),
        _ => None,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn compare_shape(
    path: &str,
    rec: &Value,
    ours: &Value,
    diffs: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    match (rec, ours) {
        (Value::Object(r), Value::Object(o)) => {
            for (k, rv) in r {
                let p = format!("{path}/{k}");
                match o.get(k) {
                    None => diffs.push(format!("missing property `{p}`")),
                    Some(ov) => compare_shape(&p, rv, ov, diffs, notes),
                }
            }
            for k in o.keys() {
                if !r.contains_key(k) {
                    match known_extra(k) {
                        Some(why) => notes.push(format!("extra property `{path}/{k}`: {why}")),
                        None => diffs.push(format!("extra property `{path}/{k}`")),
                    }
                }
            }
        }
        (Value::Array(r), Value::Array(o)) => {
            if path.is_empty() || path.ends_with("/value") {
                if r.len() != o.len() {
                    diffs.push(format!(
                        "`{path}` has {} elements, recorded {}",
                        o.len(),
                        r.len()
                    ));
                }
            } else if !r.is_empty() && o.is_empty() {
                diffs.push(format!("`{path}` is empty, recorded {} elements", r.len()));
            }
            for (i, (rv, ov)) in r.iter().zip(o.iter()).enumerate() {
                compare_shape(&format!("{path}[{i}]"), rv, ov, diffs, notes);
            }
        }
        (r, o) => {
            if type_name(r) != type_name(o) {
                diffs.push(format!(
                    "`{path}` is {} ({}), recorded {} ({})",
                    type_name(o),
                    o,
                    type_name(r),
                    r
                ));
            }
        }
    }
}

fn operator_uses(method: &str, url: &str) -> bool {
    let p = url.split('?').next().unwrap_or("");
    p.contains("/applications")
        || p.contains("/servicePrincipals")
        || p.contains("/directory/deletedItems")
        || p.contains("/oauth2/v2.0/token")
        || method == "GET" && p.contains("well-known")
}

struct FileReport {
    name: String,
    total: usize,
    matched: usize,
    skipped: Vec<String>,
    rows: Vec<String>,
    diffs: Vec<(String, String, bool)>,
    notes: BTreeMap<String, usize>,
}

/// Whether the recording was made before `day` (`YYYY-MM-DD`): the first `createdDateTime` its
/// answers carry. One without any is taken as old (every such recording in the set is).
fn recorded_before(exchanges: &[Exchange], day: &str) -> bool {
    let first = exchanges.iter().find_map(|e| {
        let b = e.body.as_ref()?;
        let v = b["createdDateTime"]
            .as_str()
            .or(b["value"][0]["createdDateTime"].as_str())?;
        Some(v.get(..10)?.to_string())
    });
    first.is_none_or(|d| d.as_str() < day)
}

async fn replay(name: &str, exchanges: Vec<Exchange>) -> FileReport {
    // The era's default signInAudience, as the recording's first create shows it.
    let default_aud = exchanges
        .iter()
        .find(|e| {
            e.method == "POST"
                && e.url.ends_with("/applications")
                && !e
                    .req_body
                    .as_deref()
                    .unwrap_or("")
                    .contains("signInAudience")
        })
        .and_then(|e| {
            e.body.as_ref()?["signInAudience"]
                .as_str()
                .map(str::to_string)
        });
    let mut cfg = config();
    cfg.tenants[0].apps[0].permissions = vec!["Application.ReadWrite.All".into()];
    if let Some(a) = &default_aud {
        cfg.default_sign_in_audience = a.clone();
    }
    let (emu, c) = start(cfg).await;
    let admin = emu.admin_token(&emu.tenant_id());
    // The era's app-management policy: Microsoft turned the identifier-URI restriction on in
    // customer tenants in June and July 2025 (Learn `identifier-uri-restrictions`), so a recording
    // made before then comes from a tenant without it: the replay disables the default policy, as
    // that tenant's administrator could. Later recordings meet the emulator's default.
    if recorded_before(&exchanges, "2025-06-01") {
        let url = format!(
            "{}/v1.0/policies/defaultAppManagementPolicy",
            emu.base_url()
        );
        let r = (c.patch(url).bearer_auth(&admin))
            .json(&json!({"isEnabled": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "disable the default policy");
    }
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut rep = FileReport {
        name: name.into(),
        total: 0,
        matched: 0,
        skipped: vec![],
        rows: vec![],
        diffs: vec![],
        notes: BTreeMap::new(),
    };
    for (n, e) in exchanges.iter().enumerate() {
        let idx = n + 1;
        let (graph, login) = (
            e.url.starts_with("https://graph.microsoft.com/"),
            e.url.starts_with("https://login.microsoftonline.com/"),
        );
        if !graph && !login {
            rep.skipped.push(format!(
                "#{idx} {} {} — not a Graph or login call",
                e.method,
                e.url.split('?').next().unwrap()
            ));
            continue;
        }
        rep.total += 1;
        let mut url = substitute(&e.url, &ids);
        let mut body = e.req_body.as_ref().map(|b| substitute(b, &ids));
        if graph {
            url = url.replacen("https://graph.microsoft.com", &emu.base_url(), 1);
        } else {
            // The JS recording uses placeholders for tenant, client and (sanitised) scope.
            url = url
                .replacen(
                    "https://login.microsoftonline.com/",
                    &emu.authority_host(),
                    1,
                )
                .replace("88888888-8888-8888-8888-888888888888", &emu.tenant_id());
            if let Some(b) = &body {
                body = Some(
                    b.replace(
                        "client_id=azure_client_id",
                        &format!("client_id={}", emu.client_id()),
                    )
                    .replace(
                        "client_secret=azure_client_secret",
                        &format!("client_secret={}", percent_encode(&emu.client_secret())),
                    )
                    .replace(
                        "scope=https%3A%2F%2Fsanitized%2F",
                        "scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
                    ),
                );
            }
        }
        let mut rb = c.request(
            reqwest::Method::from_bytes(e.method.as_bytes()).unwrap(),
            &url,
        );
        if graph {
            rb = rb.bearer_auth(&admin);
            if let Some(b) = &body {
                rb = rb
                    .header("Content-Type", "application/json")
                    .body(b.clone());
            }
        } else if let Some(b) = &body {
            rb = rb
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(b.clone());
        }
        if e.headers.iter().any(|h| h == "client-request-id") {
            // The recorded client sent a client-request-id (Graph echoes it only then).
            rb = rb.header("client-request-id", uuid());
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers: Vec<String> = resp
            .headers()
            .keys()
            .map(|k| k.as_str().to_ascii_lowercase())
            .collect();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let text = resp.text().await.unwrap();
        let ours = parse_json_body(&text);
        let mut diffs = vec![];
        let mut notes = vec![];
        if status != e.status {
            diffs.push(format!("status {status}, recorded {}", e.status));
        }
        let relevant = if graph { GRAPH_HEADERS } else { LOGIN_HEADERS };
        for h in relevant {
            let (r, o) = (
                e.headers.iter().any(|x| x == h),
                headers.iter().any(|x| x == h),
            );
            if r && !o {
                diffs.push(format!("header `{h}` missing"));
            } else if o && !r {
                diffs.push(format!("header `{h}` not in the recording"));
            }
        }
        if let (Some(rc), Some(oc)) = (&e.content_type, &ct) {
            let norm = |s: &str| s.replace(' ', "").to_ascii_lowercase();
            if norm(rc) != norm(oc) {
                diffs.push(format!("content-type `{oc}`, recorded `{rc}`"));
            }
        }
        match (&e.body, &ours) {
            (Some(r), Some(o)) => {
                compare_shape("", r, o, &mut diffs, &mut notes);
                learn_ids(r, o, &mut ids);
            }
            (Some(_), None) => diffs.push("no JSON body, recorded one".into()),
            (None, Some(_)) => diffs.push("JSON body, recorded none".into()),
            (None, None) => {}
        }
        for n in notes {
            *rep.notes.entry(n).or_default() += 1;
        }
        let short = format!(
            "{} {}",
            e.method,
            e.url
                .replace("https://graph.microsoft.com", "")
                .replace("https://login.microsoftonline.com", "")
        );
        let short: String = short.chars().take(110).collect();
        let used = operator_uses(&e.method, &e.url);
        if diffs.is_empty() {
            rep.matched += 1;
            rep.rows.push(format!(
                "| {idx} | `{short}` | {} | {status} | ✅ |",
                e.status
            ));
        } else {
            rep.rows.push(format!(
                "| {idx} | `{short}` | {} | {status} | ❌ {} |",
                e.status,
                diffs.join("; ").replace('|', "\\|")
            ));
            for d in diffs {
                rep.diffs.push((format!("#{idx} {short}"), d, used));
            }
        }
    }
    emu.shutdown().await;
    rep
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The azure-cli recordings kept in this repository (reduced copies, see the NOTICE there).
fn own_recordings_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/recordings/azure-cli")
}

/// The recordings of `dir` as (name in the report, path), sorted by name.
fn recording_files(dir: &std::path::Path, prefix: &str) -> Vec<(String, PathBuf)> {
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("recordings at {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| {
            (
                format!("{prefix}{}", e.file_name().to_string_lossy()),
                e.path(),
            )
        })
        .filter(|(n, _)| n.ends_with(".yaml") || n.ends_with(".json") || n.ends_with(".js"))
        .collect();
    files.sort();
    files
}

const REGENERATE: &str = "UPDATE_CONFORMANCE=1 cargo test -p entra-emulator --test conformance";

/// The recording directories that are not there (named as they were looked for).
fn missing_recordings() -> Vec<String> {
    [recordings_dir(), recorded_signin::dir()]
        .into_iter()
        .filter(|d| !d.is_dir())
        .map(|d| d.display().to_string())
        .collect()
}

/// Writes the report (`UPDATE_CONFORMANCE=1`), or checks that the committed one is current.
fn write_or_check_report(md: &str) {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("CONFORMANCE.md");
    if std::env::var_os("UPDATE_CONFORMANCE").is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::write(&out, md).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        committed == md,
        "{} is not what the replay gives now; regenerate it with `{REGENERATE}` and commit it",
        out.display()
    );
}

#[tokio::test]
async fn conformance_with_recorded_graph_traffic() {
    let missing = missing_recordings();
    if !missing.is_empty() {
        eprintln!(
            "\n**********\nSKIPPED conformance_with_recorded_graph_traffic: recordings not found at {} \
             (set GRAPH_RECORDINGS_DIR / SIGNIN_RECORDINGS_DIR to where they are)\n**********\n",
            missing.join(" and ")
        );
        return;
    }
    let mut files = recording_files(&recordings_dir(), "");
    files.extend(recording_files(&own_recordings_dir(), "azure-cli/"));
    let mut reports = vec![];
    for (n, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let ex = if n.ends_with(".yaml") {
            load_vcr(&text)
        } else if n.ends_with(".js") {
            load_nock(&text)
        } else {
            load_autorest(&text)
        };
        reports.push(replay(n, ex).await);
    }
    let total: usize = reports.iter().map(|r| r.total).sum();
    let matched: usize = reports.iter().map(|r| r.matched).sum();
    let mut md = String::new();
    writeln!(md, "# Conformance report (generated by `{REGENERATE}`)\n").unwrap();
    writeln!(md, "Every Graph and login request recorded in `shared/graph-recordings/` and `emulator/tests/recordings/azure-cli/` is replayed against a fresh emulator (one per file),").unwrap();
    writeln!(md, "with recorded ids mapped to the ids the emulator returned, paired by the object they belong to (an id already learned, else a name such as").unwrap();
    writeln!(md, "`displayName` or `value`), not by position in a collection. Compared: status code, the Graph-relevant response header").unwrap();
    writeln!(md, "names (Graph: {}; login: {}), the content type, and the JSON property names and value types of each body", GRAPH_HEADERS.join(", "), LOGIN_HEADERS.join(", ")).unwrap();
    writeln!(md, "(for `value` lists also the element count). The sign-in recordings of `shared/recordings-more/` follow in their own section.\n").unwrap();
    writeln!(md, "**Exchanges matched: {matched} / {total}.**\n").unwrap();
    writeln!(
        md,
        "| file | matched / total | not replayed |\n|---|---|---|"
    )
    .unwrap();
    for r in &reports {
        writeln!(
            md,
            "| `{}` | {} / {} | {} |",
            r.name,
            r.matched,
            r.total,
            r.skipped.len()
        )
        .unwrap();
    }
    writeln!(md, "\n## Remaining differences\n").unwrap();
    let all_diffs: Vec<_> = reports
        .iter()
        .flat_map(|r| r.diffs.iter().map(move |d| (r.name.clone(), d)))
        .collect();
    if all_diffs.is_empty() {
        writeln!(md, "None.\n").unwrap();
    } else {
        for (f, (ex, d, used)) in &all_diffs {
            writeln!(
                md,
                "- `{f}` {ex}: {d}{}",
                if *used {
                    " (operation the operator uses)"
                } else {
                    ""
                }
            )
            .unwrap();
        }
        writeln!(md).unwrap();
    }
    writeln!(md, "## Explained, accepted differences\n").unwrap();
    writeln!(md, "- Replay set-up: the emulator's default `signInAudience` is set per file to what that recording's first create returned (`AzureADandPersonalMicrosoftAccount` in the 2022-2023 azure-cli recordings; the Graph default changed over time, see the facts notes §2.1). The JS recording's placeholder client id, secret and sanitised scope (`https://sanitized/`) are replaced by the emulator's bootstrap app and `https://graph.microsoft.com/.default`. Graph calls use the emulator's admin token (the recordings were made by a signed-in user). A `client-request-id` request header is sent when the recorded response echoes one (the AutoRest recording keeps no request headers).").unwrap();
    let mut notes: BTreeMap<String, usize> = BTreeMap::new();
    for r in &reports {
        for (n, c) in &r.notes {
            *notes.entry(n.clone()).or_default() += c;
        }
    }
    for (n, c) in &notes {
        writeln!(md, "- {n} ({c} occurrences)").unwrap();
    }
    writeln!(md, "- Values are not compared (ids, dates, hosts in `@odata.context` / `Location` / `@odata.nextLink` naturally differ; the emulator's host replaces graph.microsoft.com and login.microsoftonline.com).").unwrap();
    writeln!(md, "\n## Not replayed\n").unwrap();
    for r in &reports {
        for s in &r.skipped {
            writeln!(md, "- `{}` {s}", r.name).unwrap();
        }
    }
    for r in &reports {
        writeln!(md, "\n## `{}` — {} / {}\n\n| # | request | recorded | emulator | result |\n|---|---|---|---|---|", r.name, r.matched, r.total).unwrap();
        for row in &r.rows {
            writeln!(md, "{row}").unwrap();
        }
    }
    let signin = recorded_signin::report().await;
    md.push_str(&signin.markdown);
    let arm = recorded_arm::report().await;
    md.push_str(&arm.markdown);
    println!("{md}");
    let used_diffs: Vec<_> = all_diffs.iter().filter(|(_, (_, _, used))| *used).collect();
    assert!(
        used_diffs.is_empty(),
        "{} differences in operations the operator uses:\n{:#?}",
        used_diffs.len(),
        used_diffs
    );
    assert!(
        signin.unexplained.is_empty(),
        "sign-in recordings: {:#?}",
        signin.unexplained
    );
    assert!(
        arm.unexplained.is_empty() && arm.total >= 10,
        "ARM recordings ({} / {} matched): {:#?}",
        arm.matched,
        arm.total,
        arm.unexplained
    );
    assert!(
        signin.total >= 15,
        "expected 15+ sign-in exchanges, found {} ({} matched)",
        signin.total,
        signin.matched
    );
    assert!(
        total >= 100,
        "expected the recordings to hold 100+ exchanges, found {total}"
    );
    write_or_check_report(&md);
    let _ = json!({});
}
