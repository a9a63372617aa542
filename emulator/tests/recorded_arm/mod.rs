//! Conformance of Azure Resource Manager's role assignments: the ARM recordings of
//! `shared/recordings-more/` (Azure Service Operator's CRUD run with four `PrincipalNotFound`
//! answers before the 201; the Python SDK's PUT and DELETE) replayed against the emulator. Each
//! role-assignment exchange is sent as recorded (the recorded principal replaced by a service
//! principal of the emulator's tenant; the caller holds Owner on the subscription); status, ARM's
//! header names and the JSON shape are compared as for Graph.
use super::compare_shape;
use crate::common::secret_token;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Response headers ARM sends on every answer that the comparison checks by name.
pub const ARM_HEADERS: &[&str] = &[
    "content-type",
    "cache-control",
    "pragma",
    "expires",
    "strict-transport-security",
    "x-content-type-options",
];

const FILES: &[&str] = &[
    "Test_Authorization_RoleAssignment_OnResourceGroup_CRUD.yaml",
    "test_mgmt_authorization.test_role_assignment.yaml",
];

struct Exchange {
    method: String,
    url: String,
    body: Option<Value>,
    status: u16,
    headers: Vec<String>,
    resp: Option<Value>,
}

/// Both layouts: go-vcr v2 (`url`, `code`, `body`) and vcrpy v1 (`uri`, `status.code`,
/// `body.string`; request bodies as nested Python byte reprs, whose JSON is cut out).
fn load(text: &str) -> Vec<Exchange> {
    let v: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    let v: Value = serde_json::to_value(v).unwrap();
    let mut out = vec![];
    for i in v["interactions"].as_array().unwrap() {
        let (rq, rs) = (&i["request"], &i["response"]);
        let url = rq["url"]
            .as_str()
            .or(rq["uri"].as_str())
            .unwrap()
            .to_string();
        if !url.contains("/providers/Microsoft.Authorization/roleAssignments") {
            continue;
        }
        let raw_body = rq["body"].as_str().unwrap_or("");
        let body = raw_body
            .find("{\"properties\"")
            .or(raw_body.find("{\"name\""))
            .and_then(|s| {
                let e = raw_body.rfind("}}")?;
                serde_json::from_str(&raw_body[s..e + 2]).ok()
            });
        let status = rs["code"]
            .as_u64()
            .or(rs["status"]["code"].as_u64())
            .unwrap() as u16;
        let headers = rs["headers"]
            .as_object()
            .map(|h| h.keys().map(|k| k.to_ascii_lowercase()).collect())
            .unwrap_or_default();
        let text = rs["body"]
            .as_str()
            .or(rs["body"]["string"].as_str())
            .unwrap_or("");
        out.push(Exchange {
            method: rq["method"].as_str().unwrap().to_string(),
            url,
            body,
            status,
            headers,
            resp: serde_json::from_str(text).ok(),
        });
    }
    out
}

/// The differences between a recorded answer and the emulator's: status, ARM's header names, JSON shape.
fn compare(e: &Exchange, st: u16, names: &[String], ours: Option<&Value>) -> Vec<String> {
    let mut diffs = vec![];
    let mut why = vec![];
    if st != e.status {
        diffs.push(format!("status {st}, recorded {}", e.status));
    }
    for h in ARM_HEADERS {
        if e.headers.iter().any(|x| x == h) && !names.iter().any(|x| x == h) {
            diffs.push(format!("missing header `{h}`"));
        }
    }
    match (&e.resp, ours) {
        (Some(rv), Some(ov)) => compare_shape("", rv, ov, &mut diffs, &mut why),
        (Some(_), None) => diffs.push("no JSON body".into()),
        _ => {}
    }
    diffs
}

/// Differences that are right, and why.
fn explained(d: &str) -> Option<&'static str> {
    let added = [
        "/condition`",
        "/conditionVersion`",
        "/delegatedManagedIdentityResourceId`",
        "/description`",
    ];
    if d.starts_with("extra property `/properties") && added.iter().any(|a| d.ends_with(a)) {
        Some(
            "`condition`, `conditionVersion`, `delegatedManagedIdentityResourceId` and `description` came with api-version 2020-04-01-preview and later; the 2018 recording predates them, and the emulator answers the 2022-04-01 shape for every api-version",
        )
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

pub async fn report() -> Report {
    let dir = super::recorded_signin::dir();
    let mut md =
        String::from("\n# Azure Resource Manager role assignments (`shared/recordings-more/`)\n\n");
    writeln!(md, "Each recorded role-assignment exchange is sent to a fresh emulator as recorded (method, path, api-version, body), with the recorded principal replaced by a service principal of the emulator's tenant; the caller (the emulator's bootstrap app, with an ARM token) holds Owner on the subscription. The recorded `PrincipalNotFound` answers are ARM's directory replica not seeing a new principal: the replay sets the emulator's `principal_lag_ms` so the principal is unknown for exactly the PUTs that were refused, and visible afterwards (the lag is time-based; the recording's ~22 s are not waited for). Compared: status, ARM's header names ({}), and the JSON property names and value types.\n", ARM_HEADERS.join(", ")).unwrap();
    let (mut matched, mut total, mut unexplained, mut notes) = (0, 0, vec![], vec![]);
    let mut rows = String::new();
    for f in FILES {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let ex = load(&text);
        let (m, n) = replay(f, &ex, &mut rows, &mut unexplained, &mut notes).await;
        matched += m;
        total += n;
        writeln!(md, "- `{f}`: {m} / {n} matched").unwrap();
    }
    writeln!(md, "\n**Exchanges matched: {matched} / {total}.**\n").unwrap();
    writeln!(
        md,
        "Remaining differences: {}\n",
        if unexplained.is_empty() {
            "none.".to_string()
        } else {
            unexplained.join("; ")
        }
    )
    .unwrap();
    notes.sort();
    notes.dedup();
    for n in &notes {
        writeln!(md, "- Explained: {n}").unwrap();
    }
    writeln!(
        md,
        "\n| file | # | request | recorded | emulator | result |\n|---|---|---|---|---|---|"
    )
    .unwrap();
    md.push_str(&rows);
    Report {
        matched,
        total,
        unexplained,
        markdown: md,
    }
}

/// A fresh emulator whose bootstrap app (the caller, with an ARM token) is Owner of the
/// subscription, and the object id of a service principal created now, as ASO's test created its
/// identity just before assigning it a role.
async fn fixture() -> (entra_emulator::Running, reqwest::Client, String, String) {
    let mut cfg = crate::common::config();
    let caller = cfg.tenants[0].apps[0].client_id.clone();
    cfg.arm.role_assignments = vec![entra_emulator::SeedAssignment {
        scope: "/subscriptions/00000000-0000-0000-0000-000000000000".into(),
        role: "Owner".into(),
        principal_client_id: Some(caller.clone()),
        ..Default::default()
    }];
    let (emu, c) = crate::common::start(cfg).await;
    let (_, tok) = secret_token(
        &c,
        &emu,
        &caller,
        &emu.client_secret(),
        "https://management.azure.com/.default",
    )
    .await;
    let token = tok["access_token"]
        .as_str()
        .expect("an ARM token")
        .to_string();
    let admin = emu.admin_token(&emu.tenant_id());
    let graph = |path: &str, body: Value| {
        c.post(format!("{}{path}", emu.graph_url()))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let app: Value = graph("/applications", json!({"displayName": "assignee"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sp: Value = graph("/servicePrincipals", json!({"appId": app["appId"]}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let principal = sp["id"].as_str().unwrap().to_string();
    (emu, c, token, principal)
}

async fn replay(
    file: &str,
    ex: &[Exchange],
    rows: &mut String,
    unexplained: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> (usize, usize) {
    let (emu, c, token, principal) = fixture().await;
    let (mut matched, mut n) = (0, 0);
    for (i, e) in ex.iter().enumerate() {
        n += 1;
        let refused_for_lag = e.status == 400
            && e.resp
                .as_ref()
                .is_some_and(|r| r["error"]["code"] == "PrincipalNotFound");
        c.put(format!("{}/_emulator/arm", emu.base_url()))
            .json(&json!({"principal_lag_ms": if refused_for_lag { 3_600_000u64 } else { 0 }}))
            .send()
            .await
            .unwrap();
        let path = e
            .url
            .split_once("management.azure.com")
            .map(|(_, p)| p)
            .unwrap_or(&e.url);
        let mut body = e.body.clone();
        if let Some(b) = body.as_mut() {
            b["properties"]["principalId"] = json!(principal);
        }
        let method = reqwest::Method::from_bytes(e.method.as_bytes()).unwrap();
        let mut req = c
            .request(method, format!("{}{path}", emu.base_url()))
            .bearer_auth(&token);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let r = req.send().await.unwrap();
        let st = r.status().as_u16();
        let names: Vec<String> = r.headers().keys().map(|k| k.as_str().to_string()).collect();
        let ours: Option<Value> = r.json().await.ok();
        let diffs = compare(e, st, &names, ours.as_ref());
        let (ok, rest): (Vec<String>, Vec<String>) =
            diffs.into_iter().partition(|d| explained(d).is_some());
        for d in &ok {
            notes.push(explained(d).unwrap().to_string());
        }
        let result = if rest.is_empty() {
            matched += 1;
            if ok.is_empty() {
                "match".to_string()
            } else {
                "match (explained)".to_string()
            }
        } else {
            unexplained.extend(rest.iter().map(|d| format!("`{file}` #{i}: {d}")));
            rest.join("; ")
        };
        let short = path
            .split('?')
            .next()
            .unwrap_or(path)
            .rsplit("/providers/")
            .next()
            .unwrap_or(path);
        writeln!(
            rows,
            "| `{file}` | {i} | {} …/{short} | {} | {st} | {result} |",
            e.method, e.status
        )
        .unwrap();
    }
    (matched, n)
}
