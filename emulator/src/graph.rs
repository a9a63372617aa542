//! Microsoft Graph v1.0: applications, service principals, credentials, grants, deleted items.
#![allow(clippy::result_large_err)]
use crate::crypto;
use crate::login::{Caller, verify_graph_token};
use crate::query::{self, Query};
use crate::server::{OpInfo, ReqCtx, Shared, random_guid};
use crate::store::{self, AppRec, SpRec, Tenant, fmt_7, fmt_secs, now_ms, s};
use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

const ODATA_CT: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

pub struct GErr {
    status: StatusCode,
    code: String,
    message: String,
    details: Option<Value>,
}

fn err(status: StatusCode, code: &str, message: impl Into<String>) -> GErr {
    GErr {
        status,
        code: code.into(),
        message: message.into(),
        details: None,
    }
}
fn bad(message: impl Into<String>) -> GErr {
    err(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}
fn not_found(id: &str) -> GErr {
    err(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}
fn denied() -> GErr {
    err(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}
fn invalid_value(prop: &str, resource: &str) -> GErr {
    bad(format!(
        "Invalid value specified for property '{prop}' of resource '{resource}'."
    ))
}

pub fn graph_error(
    ctx: &ReqCtx,
    status: StatusCode,
    code: &str,
    message: &str,
    details: Option<Value>,
) -> Response {
    let mut e = json!({"code": code, "message": message});
    if let Some(d) = details {
        e["details"] = d;
    }
    e["innerError"] = json!({"date": Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
        "request-id": ctx.request_id, "client-request-id": ctx.client_request_id});
    let body = serde_json::to_vec(&json!({"error": e})).unwrap();
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

fn json_resp(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header("Content-Type", ODATA_CT)
        .header("OData-Version", "4.0")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}
fn no_content() -> Response {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header("Content-Length", "0")
        .body(Body::empty())
        .unwrap()
}
fn with_context(ctx_url: String, v: &Value) -> Value {
    let mut m = Map::new();
    m.insert("@odata.context".into(), Value::String(ctx_url));
    if let Some(o) = v.as_object() {
        for (k, x) in o {
            m.insert(k.clone(), x.clone());
        }
    }
    Value::Object(m)
}

/// A path segment: `name`, or `name(key='value')` / `name('value')`.
fn split_key(seg: &str) -> (String, Option<(String, String)>) {
    if let Some(open) = seg.find('(')
        && seg.ends_with(')')
    {
        let name = seg[..open].to_string();
        let inner = &seg[open + 1..seg.len() - 1];
        let (k, v) = match inner.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), v.trim()),
            None => ("id".to_string(), inner.trim()),
        };
        let v = v.trim_matches('\'').replace("''", "'");
        return (name, Some((k, v)));
    }
    (seg.to_string(), None)
}

struct Req<'a> {
    sh: &'a Shared,
    caller: Caller,
    method: Method,
    q: Query,
    headers: &'a HeaderMap,
    body: Value,
    g: String,
    now: DateTime<Utc>,
    lag: i64,
    /// Multi-tenant applications of other tenants by appId: (application, home tenant). Filled
    /// for `servicePrincipals.create` only, which may instantiate one in the caller's tenant.
    foreign_apps: HashMap<String, (Value, String)>,
}

/// The multi-tenant applications registered in tenants other than `tid`, by appId.
fn foreign_apps(st: &store::Store, tid: &str) -> HashMap<String, (Value, String)> {
    st.tenants
        .values()
        .filter(|t| t.id != tid)
        .flat_map(|t| {
            t.apps
                .iter()
                .filter(|a| s(&a.body, "signInAudience") != "AzureADMyOrg")
                .map(move |a| (s(&a.body, "appId"), (a.body.clone(), t.id.clone())))
        })
        .collect()
}

impl Req<'_> {
    fn ctx(&self, frag: &str) -> String {
        format!("{}/$metadata#{frag}", self.g)
    }
    fn has_any(&self, roles: &[&str]) -> bool {
        roles.iter().any(|r| self.caller.has(r))
    }
    fn can_read(&self) -> bool {
        self.has_any(&[
            "Application.ReadWrite.OwnedBy",
            "Application.ReadWrite.All",
            "Application.Read.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ])
    }
    fn all(&self) -> bool {
        self.has_any(&["Application.ReadWrite.All", "Directory.ReadWrite.All"])
    }
    fn can_write(&self, owners: &[String]) -> bool {
        self.all()
            || (self.caller.has("Application.ReadWrite.OwnedBy")
                && owners.contains(&self.caller.oid))
    }
    fn visible(&self, from: i64) -> bool {
        from <= now_ms()
    }
    fn eventual(&self) -> bool {
        self.headers
            .get("consistencylevel")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("eventual"))
    }
    fn prefer_create(&self) -> bool {
        self.headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("create-if-missing"))
    }
}

pub async fn handle(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let (version, rest) = if let Some(r) = path.strip_prefix("/v1.0/") {
        ("v1.0", r)
    } else {
        ("beta", path.trim_start_matches("/beta/"))
    };
    let segs: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .to_string()
        })
        .collect();
    let op = operation_name(&method, &segs);
    let caller = match verify_graph_token(&sh, &headers) {
        Ok(c) => c,
        Err(msg) => {
            let mut r = graph_error(
                &ctx,
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                &msg,
                None,
            );
            r.headers_mut().insert("WWW-Authenticate", HeaderValue::from_static("Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\""));
            r.extensions_mut().insert(OpInfo {
                operation: op,
                ..Default::default()
            });
            return r;
        }
    };
    let info = OpInfo {
        operation: op.clone(),
        tenant: caller.tenant.clone(),
        caller: caller.app_id.clone(),
    };
    let write = method != Method::GET;
    let ru: u64 = {
        let mut ru: u64 = if write {
            1
        } else if op == "applications.list" || op == "oauth2PermissionGrants.list" {
            2
        } else {
            1
        };
        if let Some(q) = uri.query()
            && q.contains("select=")
            && ru > 1
        {
            ru -= 1;
        }
        ru.max(1)
    };
    let throttle_key = format!("{}/{}", caller.tenant, caller.app_id);
    let pct = match sh.throttle(&throttle_key, ru, write) {
        Ok(p) => p,
        Err((secs, info_kind)) => {
            let mut r = graph_error(
                &ctx,
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Please retry again later.",
                None,
            );
            // Graph's 429 body also carries code/message/status in innerError.
            if let Ok(mut v) = serde_json::from_slice::<Value>(
                &axum::body::to_bytes(std::mem::take(r.body_mut()), usize::MAX)
                    .await
                    .unwrap_or_default(),
            ) {
                v["error"]["innerError"]["code"] = json!("429");
                v["error"]["innerError"]["message"] = json!("Please retry after");
                v["error"]["innerError"]["status"] = json!("429");
                *r.body_mut() = Body::from(serde_json::to_vec(&v).unwrap());
            }
            let h = r.headers_mut();
            h.insert(
                "Retry-After",
                HeaderValue::from_str(&secs.to_string()).unwrap(),
            );
            h.insert(
                "x-ms-throttle-scope",
                HeaderValue::from_str(&format!(
                    "Tenant_Application/{}/{}/{}",
                    if write { "ReadWrite" } else { "Read" },
                    caller.app_id,
                    caller.tenant
                ))
                .unwrap_or(HeaderValue::from_static("Tenant_Application")),
            );
            h.insert(
                "x-ms-throttle-information",
                HeaderValue::from_static(info_kind),
            );
            r.extensions_mut().insert(info);
            return r;
        }
    };
    let body_v: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                let mut r = graph_error(
                    &ctx,
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!(
                        "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format. ({e})"
                    ),
                    None,
                );
                r.extensions_mut().insert(info);
                return r;
            }
        }
    };
    let q = match query::parse_query(uri.query()) {
        Ok(q) => q,
        Err(m) => {
            let mut r = graph_error(
                &ctx,
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                &m,
                None,
            );
            r.extensions_mut().insert(info);
            return r;
        }
    };
    let mut req = Req {
        sh: &sh,
        caller,
        method,
        q,
        headers: &headers,
        body: body_v,
        g: format!("{}/{version}", sh.base_url),
        now: Utc::now(),
        lag: sh.lag_ms(),
        foreign_apps: HashMap::new(),
    };
    let result = {
        let mut st = sh.store.lock().unwrap();
        let tid = req.caller.tenant.clone();
        if op == "servicePrincipals.create" {
            req.foreign_apps = foreign_apps(&st, &tid);
        }
        let tenant = st.tenants.get_mut(&tid).unwrap();
        let res = route(&req, tenant, &segs);
        if req.method != Method::GET && res.is_ok() {
            sh.persist(st);
        }
        res
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => graph_error(&ctx, e.status, &e.code, &e.message, e.details),
    };
    resp.headers_mut().insert(
        "x-ms-resource-unit",
        HeaderValue::from_str(&ru.to_string()).unwrap(),
    );
    if pct >= 0.8 {
        resp.headers_mut().insert(
            "x-ms-throttle-limit-percentage",
            HeaderValue::from_str(&format!("{:.1}", pct)).unwrap(),
        );
    }
    resp.extensions_mut().insert(info);
    resp
}

/// Stable snake-case operation names for the call log.
pub fn operation_name(m: &Method, segs: &[String]) -> String {
    let names: Vec<(String, bool)> = segs
        .iter()
        .map(|s| {
            let (n, k) = split_key(s);
            (n, k.is_some())
        })
        .collect();
    let n = |i: usize| names.get(i).map(|x| x.0.as_str()).unwrap_or("");
    let keyed = |i: usize| names.get(i).is_some_and(|x| x.1);
    let verb_item = |m: &Method| match *m {
        Method::GET => "get",
        Method::PATCH => "update",
        Method::DELETE => "delete",
        Method::PUT => "update",
        _ => "post",
    };
    let action = |a: &str| a.trim_start_matches("microsoft.graph.").to_string();
    match n(0) {
        "applications" | "servicePrincipals" => {
            let base = n(0);
            let depth = if keyed(0) { 0 } else { 1 };
            let len = names.len();
            if len == 1 && !keyed(0) {
                return format!(
                    "{base}.{}",
                    if *m == Method::POST { "create" } else { "list" }
                );
            }
            if len == 2 && n(1) == "$count" {
                return format!("{base}.count");
            }
            if len == depth + 1 {
                if keyed(0) && *m == Method::PATCH && segs[0].contains("uniqueName") {
                    return format!("{base}.upsert");
                }
                return format!("{base}.{}", verb_item(m));
            }
            let sub = n(depth + 1);
            match sub {
                "federatedIdentityCredentials" => {
                    if len == depth + 2 && !keyed(depth + 1) {
                        format!(
                            "federatedIdentityCredentials.{}",
                            if *m == Method::POST { "create" } else { "list" }
                        )
                    } else if keyed(depth + 1) && *m == Method::PATCH {
                        "federatedIdentityCredentials.upsert".into()
                    } else {
                        format!("federatedIdentityCredentials.{}", verb_item(m))
                    }
                }
                "appRoleAssignedTo" | "appRoleAssignments" => {
                    if len == depth + 2 {
                        format!(
                            "{sub}.{}",
                            if *m == Method::POST { "create" } else { "list" }
                        )
                    } else {
                        format!("{sub}.{}", verb_item(m))
                    }
                }
                "owners" => format!(
                    "{base}.owners.{}",
                    match *m {
                        Method::GET => "list",
                        Method::POST => "add",
                        _ => "remove",
                    }
                ),
                "oauth2PermissionGrants" => "oauth2PermissionGrants.list".into(),
                other => format!("{base}.{}", action(other)),
            }
        }
        "oauth2PermissionGrants" => {
            if names.len() == 1 {
                format!(
                    "oauth2PermissionGrants.{}",
                    if *m == Method::POST { "create" } else { "list" }
                )
            } else {
                format!("oauth2PermissionGrants.{}", verb_item(m))
            }
        }
        "directory" if n(1) == "deletedItems" => {
            if names.len() == 3 && n(2).starts_with("microsoft.graph.") {
                "deletedItems.list".into()
            } else if names.len() >= 4 {
                format!("deletedItems.{}", action(n(3)))
            } else if *m == Method::DELETE {
                "deletedItems.purge".into()
            } else {
                "deletedItems.get".into()
            }
        }
        "" => "root".into(),
        other => format!("{other}.{}", verb_item(m)),
    }
}

type R = Result<Response, GErr>;

fn route(r: &Req, t: &mut Tenant, segs: &[String]) -> R {
    if segs.is_empty() {
        return Err(bad("Invalid request."));
    }
    let (root, key) = split_key(&segs[0]);
    let m = r.method.clone();
    match root.as_str() {
        "applications" => {
            let (app_ref, rest): (Option<AppRef>, &[String]) = match (&key, segs.get(1)) {
                (Some((k, v)), _) => (Some(AppRef::Key(k.clone(), v.clone())), &segs[1..]),
                (None, Some(id)) if id != "$count" && !id.starts_with("microsoft.graph.") => {
                    (Some(AppRef::Id(id.clone())), &segs[2..])
                }
                _ => (None, &segs[1..]),
            };
            match (app_ref, rest.first().map(String::as_str), &m) {
                (None, None, &Method::GET) => list_apps(r, t),
                (None, None, &Method::POST) => create_app(r, t, None),
                (None, Some("$count"), &Method::GET) => count(
                    r,
                    t.apps
                        .iter()
                        .filter(|a| r.visible(a.visible_from_ms))
                        .count(),
                ),
                (Some(a), None, _) => app_item(r, t, a),
                (Some(a), Some(sub), _) => app_sub(r, t, a, sub, &rest[1..]),
                _ => Err(bad("Unsupported request.")),
            }
        }
        "servicePrincipals" => {
            let (sp_ref, rest): (Option<String>, &[String]) = match (&key, segs.get(1)) {
                (Some((k, v)), _) => {
                    let idx = if k.eq_ignore_ascii_case("appId") {
                        t.sp_idx_by_app_id(v)
                    } else {
                        t.sp_idx(v)
                    };
                    (
                        Some(
                            idx.map(|i| s(&t.sps[i].body, "id"))
                                .unwrap_or_else(|| format!("!{v}")),
                        ),
                        &segs[1..],
                    )
                }
                (None, Some(id)) if id != "$count" => (Some(id.clone()), &segs[2..]),
                _ => (None, &segs[1..]),
            };
            match (sp_ref, rest.first().map(String::as_str), &m) {
                (None, None, &Method::GET) => list_sps(r, t),
                (None, None, &Method::POST) => create_sp(r, t),
                (None, Some("$count"), &Method::GET) => count(
                    r,
                    t.sps
                        .iter()
                        .filter(|a| r.visible(a.visible_from_ms))
                        .count(),
                ),
                (Some(id), sub, _) => sp_routes(
                    r,
                    t,
                    &id,
                    sub,
                    if rest.is_empty() { &[] } else { &rest[1..] },
                ),
                _ => Err(bad("Unsupported request.")),
            }
        }
        "oauth2PermissionGrants" => grants(r, t, key.map(|k| k.1).or(segs.get(1).cloned())),
        "users" | "groups" if m == Method::GET => directory_read(r, t, &root, &segs[1..]),
        "directory" if segs.get(1).map(String::as_str) == Some("deletedItems") => {
            deleted_items(r, t, &segs[2..])
        }
        _ => Err(err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment '{root}'."),
        )),
    }
}

/// `GET /users`, `/users/{id|upn}`, `/users/{id}/appRoleAssignments`, `/groups`, `/groups/{id}`,
/// `/groups/{id}/members` (read-only; users and groups come from the config and the admin API).
fn directory_read(r: &Req, t: &Tenant, root: &str, rest: &[String]) -> R {
    if !r.can_read() {
        return Err(denied());
    }
    let users: Vec<Value> = t.users.iter().map(|u| u.body.clone()).collect();
    let with_type = |v: &Value, ty: &str| {
        let mut v = v.clone();
        v["@odata.type"] = json!(format!("#microsoft.graph.{ty}"));
        v
    };
    match (root, rest.first(), rest.get(1).map(String::as_str)) {
        ("users", None, _) => list_response(
            r,
            "users",
            users,
            &["id", "userPrincipalName", "displayName"],
        ),
        ("groups", None, _) => {
            let gs = t.groups.iter().map(|g| g.body.clone()).collect();
            list_response(r, "groups", gs, &["id", "displayName"])
        }
        ("users", Some(id), sub) => {
            let u = users
                .iter()
                .find(|u| s(u, "id") == *id || s(u, "userPrincipalName").eq_ignore_ascii_case(id))
                .ok_or_else(|| not_found(id))?;
            match sub {
                None => Ok(json_resp(
                    StatusCode::OK,
                    &with_context(r.ctx("users/$entity"), u),
                )),
                Some("appRoleAssignments") => {
                    let items = t
                        .assignments
                        .iter()
                        .filter(|a| s(a, "principalId") == s(u, "id"))
                        .cloned()
                        .collect();
                    list_response(
                        r,
                        &format!("users('{}')/appRoleAssignments", s(u, "id")),
                        items,
                        &["resourceId", "appRoleId"],
                    )
                }
                Some(_) => Err(bad("Unsupported request.")),
            }
        }
        ("groups", Some(id), sub) => {
            let g = t
                .groups
                .iter()
                .find(|g| s(&g.body, "id") == *id)
                .ok_or_else(|| not_found(id))?;
            match sub {
                None => Ok(json_resp(
                    StatusCode::OK,
                    &with_context(r.ctx("groups/$entity"), &g.body),
                )),
                Some("members") => {
                    let items = users
                        .iter()
                        .filter(|u| g.members.contains(&s(u, "id")))
                        .map(|u| with_type(u, "user"))
                        .collect();
                    list_response(r, "directoryObjects", items, &["id"])
                }
                Some(_) => Err(bad("Unsupported request.")),
            }
        }
        _ => Err(bad("Unsupported request.")),
    }
}

fn count(r: &Req, n: usize) -> R {
    if !r.eventual() {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Count is not currently supported.",
        ));
    }
    if !r.can_read() {
        return Err(denied());
    }
    Ok(Response::builder()
        .status(200)
        .header("Content-Type", "text/plain")
        .header("OData-Version", "4.0")
        .body(Body::from(n.to_string()))
        .unwrap())
}

enum AppRef {
    Id(String),
    Key(String, String),
}

/// Index of an application for this request; `authoritative` ignores replication lag.
fn find_app(r: &Req, t: &Tenant, a: &AppRef, authoritative: bool) -> Result<usize, GErr> {
    let idx = match a {
        AppRef::Id(id) => t.app_idx(id),
        AppRef::Key(k, v) if k.eq_ignore_ascii_case("appId") => t.app_idx_by_app_id(v),
        AppRef::Key(k, v) if k.eq_ignore_ascii_case("uniqueName") => t.app_idx_by_unique_name(v),
        AppRef::Key(k, v) if k.eq_ignore_ascii_case("id") => t.app_idx(v),
        AppRef::Key(k, _) => return Err(bad(format!("Invalid alternate key '{k}'."))),
    };
    match idx {
        Some(i) if authoritative || r.visible(t.apps[i].visible_from_ms) => Ok(i),
        _ => Err(not_found(match a {
            AppRef::Id(id) => id,
            AppRef::Key(_, v) => v,
        })),
    }
}

fn list_response(r: &Req, frag: &str, items: Vec<Value>, filterable: &[&str]) -> R {
    let q = &r.q;
    let mut advanced = None;
    let mut items = items;
    if let Some(f) = &q.filter {
        let e = query::parse_filter(f).map_err(|m| {
            err(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                format!("Invalid filter clause: {m}"),
            )
        })?;
        let mut props = vec![];
        query::properties(&e, &mut props);
        for p in props {
            let top = p.split('/').next().unwrap_or("");
            if !filterable.iter().any(|x| x.eq_ignore_ascii_case(top)) {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    format!(
                        "Unsupported or invalid query filter clause specified for property '{top}' of resource '{}'.",
                        frag_resource(frag)
                    ),
                ));
            }
        }
        advanced = query::advanced_reason(&e);
        items.retain(|v| query::eval(&e, v));
    }
    if let Some(ob) = &q.orderby {
        if q.filter.is_some() && advanced.is_none() {
            advanced = Some("Sorting not supported for current query. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information".into());
        }
        let mut parts = ob.split_whitespace();
        let prop = parts.next().unwrap_or("displayName").to_string();
        let desc = parts.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
        items.sort_by(|a, b| {
            let x = a
                .get(&prop)
                .map(|v| v.to_string().to_lowercase())
                .unwrap_or_default();
            let y = b
                .get(&prop)
                .map(|v| v.to_string().to_lowercase())
                .unwrap_or_default();
            if desc { y.cmp(&x) } else { x.cmp(&y) }
        });
    }
    if q.count && !r.eventual() {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "$count is not currently supported without the ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information",
        ));
    }
    if let Some(sq) = &q.search {
        if !r.eventual() {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
            ));
        }
        let term = sq.trim_matches('"').to_lowercase();
        let (prop, val) = term
            .split_once(':')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap_or(("displayname".into(), term.clone()));
        items.retain(|v| {
            v.as_object().is_some_and(|o| {
                o.iter().any(|(k, x)| {
                    k.to_lowercase() == prop
                        && x.as_str().is_some_and(|x| x.to_lowercase().contains(&val))
                })
            })
        });
    }
    if let Some(reason) = advanced
        && !(r.eventual() && q.count)
    {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            reason,
        ));
    }
    let total = items.len();
    let top = q.top.unwrap_or(100);
    if top == 0 || top > 999 {
        return Err(bad(format!(
            "Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive."
        )));
    }
    let page: Vec<Value> = items
        .into_iter()
        .skip(q.skip)
        .take(top)
        .map(|v| store::select(&v, &q.select))
        .collect();
    let ctx_frag = if q.select.is_empty() {
        frag.to_string()
    } else {
        // Property names as the entity spells them (`$select=Id` -> `id`).
        let cols: Vec<String> = match page.first().and_then(Value::as_object) {
            Some(o) => o.keys().cloned().collect(),
            None => q.select.clone(),
        };
        format!("{frag}({})", cols.join(","))
    };
    let mut out = Map::new();
    out.insert("@odata.context".into(), json!(r.ctx(&ctx_frag)));
    if q.count {
        out.insert("@odata.count".into(), json!(total));
    }
    if q.skip + top < total {
        let mut params = vec![format!("$top={top}")];
        if let Some(f) = &q.filter {
            params.push(format!("$filter={}", enc(f)));
        }
        if !q.select.is_empty() {
            params.push(format!("$select={}", enc(&q.select.join(","))));
        }
        if let Some(o) = &q.orderby {
            params.push(format!("$orderby={}", enc(o)));
        }
        if q.count {
            params.push("$count=true".into());
        }
        params.push(format!(
            "$skiptoken={}",
            crypto::b64url(format!("skip:{}", q.skip + top).as_bytes())
        ));
        let path = frag;
        out.insert(
            "@odata.nextLink".into(),
            json!(format!("{}/{path}?{}", r.g, params.join("&"))),
        );
    }
    out.insert("value".into(), Value::Array(page));
    Ok(json_resp(StatusCode::OK, &Value::Object(out)))
}

fn frag_resource(frag: &str) -> &'static str {
    if frag.starts_with("servicePrincipals") {
        "ServicePrincipal"
    } else if frag.starts_with("oauth2") {
        "OAuth2PermissionGrant"
    } else {
        "Application"
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

const APP_FILTERABLE: &[&str] = &[
    "id",
    "appId",
    "displayName",
    "identifierUris",
    "tags",
    "publisherDomain",
    "signInAudience",
    "createdDateTime",
    "uniqueName",
    "web",
    "spa",
    "publicClient",
    "info",
    "description",
    "notes",
    "serviceManagementReference",
    "requiredResourceAccess",
    "keyCredentials",
    "passwordCredentials",
    "federatedIdentityCredentials",
    "isFallbackPublicClient",
    "deletedDateTime",
];
const SP_FILTERABLE: &[&str] = &[
    "id",
    "appId",
    "displayName",
    "servicePrincipalNames",
    "tags",
    "accountEnabled",
    "servicePrincipalType",
    "appOwnerOrganizationId",
    "alternativeNames",
    "preferredSingleSignOnMode",
    "appRoleAssignmentRequired",
    "createdDateTime",
    "signInAudience",
    "appDisplayName",
    "replyUrls",
    "notificationEmailAddresses",
];

fn list_apps(r: &Req, t: &Tenant) -> R {
    if !r.can_read() {
        return Err(denied());
    }
    let items: Vec<Value> = t
        .apps
        .iter()
        .filter(|a| r.visible(a.visible_from_ms))
        .map(store::app_public_view)
        .collect();
    list_response(r, "applications", items, APP_FILTERABLE)
}

fn check_writable(body: &Value, allowed: &[&str], resource: &str) -> Result<(), GErr> {
    let Some(o) = body.as_object() else {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Empty Payload. JSON content expected.",
        ));
    };
    for k in o.keys() {
        if k.starts_with('@') || k.contains("@odata") {
            continue;
        }
        if !allowed.iter().any(|a| a == k)
            && !matches!(
                k.as_str(),
                "id" | "appId" | "createdDateTime" | "publisherDomain" | "deletedDateTime"
            )
        {
            return Err(bad(format!("Property '{k}' does not exist as a declared property or extension property on resource '{resource}'.")));
        }
    }
    Ok(())
}

fn deep_merge(dst: &mut Value, src: &Value) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => {
            for (k, v) in s {
                match d.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        deep_merge(existing, v)
                    }
                    _ => {
                        d.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (d, s) => *d = s.clone(),
    }
}

fn norm_role(v: &Value) -> Value {
    json!({
        "allowedMemberTypes": v.get("allowedMemberTypes").cloned().unwrap_or(json!([])),
        "description": v.get("description").cloned().unwrap_or(Value::Null),
        "displayName": v.get("displayName").cloned().unwrap_or(Value::Null),
        "id": v.get("id").cloned().unwrap_or(Value::Null),
        "isEnabled": v.get("isEnabled").cloned().unwrap_or(json!(true)),
        "origin": v.get("origin").cloned().unwrap_or(json!("Application")),
        "value": v.get("value").cloned().unwrap_or(Value::Null),
    })
}
fn norm_scope(v: &Value) -> Value {
    json!({
        "adminConsentDescription": v.get("adminConsentDescription").cloned().unwrap_or(Value::Null),
        "adminConsentDisplayName": v.get("adminConsentDisplayName").cloned().unwrap_or(Value::Null),
        "id": v.get("id").cloned().unwrap_or(Value::Null),
        "isEnabled": v.get("isEnabled").cloned().unwrap_or(json!(true)),
        "type": v.get("type").cloned().unwrap_or(json!("User")),
        "userConsentDescription": v.get("userConsentDescription").cloned().unwrap_or(Value::Null),
        "userConsentDisplayName": v.get("userConsentDisplayName").cloned().unwrap_or(Value::Null),
        "value": v.get("value").cloned().unwrap_or(Value::Null),
    })
}

fn enabled_entitlement_error() -> GErr {
    err(
        StatusCode::BAD_REQUEST,
        "CannotDeleteOrUpdateEnabledEntitlement",
        "Permission (scope or role) cannot be deleted or updated unless disabled first.",
    )
}

fn check_entitlements(old: &[Value], new: &[Value]) -> Result<(), GErr> {
    for o in old {
        if o["isEnabled"] != json!(true) {
            continue;
        }
        match new.iter().find(|n| n["id"] == o["id"]) {
            None => return Err(enabled_entitlement_error()),
            Some(n) => {
                let mut n2 = n.clone();
                n2["isEnabled"] = json!(true);
                if &n2 != o {
                    return Err(enabled_entitlement_error());
                }
            }
        }
    }
    Ok(())
}

fn validate_redirects(list: &Value, prop: &str, public: bool) -> Result<(), GErr> {
    let Some(a) = list.as_array() else {
        return Ok(());
    };
    if a.len() > 256 {
        return Err(invalid_value(prop, "Application"));
    }
    for u in a {
        let Some(u) = u.as_str() else {
            return Err(invalid_value(prop, "Application"));
        };
        let lower = u.to_ascii_lowercase();
        let ok_len = !u.is_empty() && u.len() <= 256;
        let ok = if let Some(rest) = lower.strip_prefix("http://") {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host
                .rsplit_once(':')
                .map(|(h, p)| {
                    if p.chars().all(|c| c.is_ascii_digit()) {
                        h
                    } else {
                        host
                    }
                })
                .unwrap_or(host);
            matches!(host, "localhost" | "127.0.0.1" | "[::1]")
        } else if lower.starts_with("https://") {
            lower.len() > 8 && !lower.contains('*')
        } else {
            public && lower.contains("://")
        };
        if !ok || !ok_len {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                format!(
                    "Invalid value specified for property '{prop}' of resource 'Application'. Redirect URIs must use https, or http only for localhost: '{u}'."
                ),
            ));
        }
    }
    Ok(())
}

fn validate_app(t: &Tenant, app: &Value, old: Option<&Value>, self_id: &str) -> Result<(), GErr> {
    let dn = app["displayName"].as_str().unwrap_or("");
    if dn.trim().is_empty() {
        return Err(invalid_value("displayName", "Application"));
    }
    if dn.chars().count() > 256 {
        return Err(invalid_value("displayName", "Application"));
    }
    if app["description"]
        .as_str()
        .is_some_and(|d| d.chars().count() > 1024)
    {
        return Err(invalid_value("description", "Application"));
    }
    if app["notes"]
        .as_str()
        .is_some_and(|d| d.chars().count() > 1024)
    {
        return Err(invalid_value("notes", "Application"));
    }
    let aud = app["signInAudience"].as_str().unwrap_or("");
    if !matches!(
        aud,
        "AzureADMyOrg"
            | "AzureADMultipleOrgs"
            | "AzureADandPersonalMicrosoftAccount"
            | "PersonalMicrosoftAccount"
    ) {
        return Err(invalid_value("signInAudience", "Application"));
    }
    // tags
    if let Some(tags) = app["tags"].as_array()
        && tags
            .iter()
            .any(|x| x.as_str().is_none_or(|x| x.chars().count() > 256))
    {
        return Err(invalid_value("tags", "Application"));
    }
    // identifierUris
    let uris = app["identifierUris"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if uris.len() > 50 {
        return Err(invalid_value("identifierUris", "Application"));
    }
    let old_uris: Vec<Value> = old
        .and_then(|o| o["identifierUris"].as_array().cloned())
        .unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    for u in &uris {
        let Some(u) = u.as_str() else {
            return Err(invalid_value("identifierUris", "Application"));
        };
        if !seen.insert(u.to_ascii_lowercase().trim_end_matches('/').to_string()) {
            return Err(invalid_value("identifierUris", "Application"));
        }
        let lower = u.to_ascii_lowercase();
        let Some((scheme, rest)) = lower.split_once("://") else {
            return Err(invalid_value("identifierUris", "Application"));
        };
        if u.len() > 256 || rest.is_empty() || u.contains('*') {
            return Err(invalid_value("identifierUris", "Application"));
        }
        if scheme != "api" && !old_uris.iter().any(|o| o.as_str() == Some(u)) {
            let host = rest.split(['/', '?', '#', ':']).next().unwrap_or("");
            let verified = t
                .domains
                .iter()
                .any(|d| host == d || host.ends_with(&format!(".{d}")));
            if !verified {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "HostNameNotOnVerifiedDomain",
                    format!(
                        "Values of identifierUris property must use a verified domain of the organization or its subdomain: '{u}'"
                    ),
                ));
            }
        }
        let clash = t.apps.iter().any(|a| {
            s(&a.body, "id") != self_id
                && a.body["identifierUris"].as_array().is_some_and(|x| {
                    x.iter().filter_map(Value::as_str).any(|x| {
                        x.trim_end_matches('/')
                            .eq_ignore_ascii_case(u.trim_end_matches('/'))
                    })
                })
        });
        if clash {
            let mut e = bad(
                "Another object with the same value for property identifierUris already exists.",
            );
            e.details = Some(
                json!([{"code": "ObjectConflict", "message": format!("Another object with the same value for property identifierUris already exists: '{u}'."), "target": "identifierUris"}]),
            );
            return Err(e);
        }
    }
    // uniqueName
    if let Some(un) = app["uniqueName"].as_str() {
        if let Some(o) = old.and_then(|o| o["uniqueName"].as_str())
            && o != un
        {
            return Err(bad(
                "Property 'uniqueName' is read-only and cannot be changed once set.",
            ));
        }
        if t.apps.iter().any(|a| {
            s(&a.body, "id") != self_id
                && a.body["uniqueName"]
                    .as_str()
                    .is_some_and(|x| x.eq_ignore_ascii_case(un))
        }) {
            return Err(err(
                StatusCode::CONFLICT,
                "Request_MultipleObjectsWithSameKeyValue",
                format!(
                    "Another object with the same value for property uniqueName already exists: '{un}'."
                ),
            ));
        }
    }
    // redirect URIs
    validate_redirects(&app["web"]["redirectUris"], "redirectUris", false)?;
    validate_redirects(&app["spa"]["redirectUris"], "redirectUris", false)?;
    validate_redirects(&app["publicClient"]["redirectUris"], "redirectUris", true)?;
    // roles and scopes
    let roles = app["appRoles"].as_array().cloned().unwrap_or_default();
    let scopes = app["api"]["oauth2PermissionScopes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut ids = std::collections::HashSet::new();
    let mut role_values = std::collections::HashSet::new();
    for r in &roles {
        let id = r["id"].as_str().unwrap_or("");
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(invalid_value("appRoles", "Application"));
        }
        if !ids.insert(id.to_ascii_lowercase()) {
            return Err(bad(format!(
                "Request contains a property with duplicate values: app role id '{id}'."
            )));
        }
        let v = r["value"].as_str().unwrap_or("");
        if v.contains(' ') || v.chars().count() > 249 {
            return Err(invalid_value("appRoles", "Application"));
        }
        if !v.is_empty() && !role_values.insert(v.to_ascii_lowercase()) {
            return Err(bad(format!(
                "Request contains a property with duplicate values: app role value '{v}' is used more than once."
            )));
        }
        if r["allowedMemberTypes"].as_array().is_none_or(|a| {
            a.is_empty()
                || a.iter()
                    .any(|m| !matches!(m.as_str(), Some("User" | "Application")))
        }) {
            return Err(invalid_value("appRoles", "Application"));
        }
        if r["displayName"].as_str().is_none_or(str::is_empty) {
            return Err(invalid_value("appRoles", "Application"));
        }
    }
    let mut scope_values = std::collections::HashSet::new();
    for sc in &scopes {
        let id = sc["id"].as_str().unwrap_or("");
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(invalid_value("oauth2PermissionScopes", "Application"));
        }
        if !ids.insert(id.to_ascii_lowercase()) {
            return Err(bad(format!(
                "Request contains a property with duplicate values: permission id '{id}'."
            )));
        }
        let v = sc["value"].as_str().unwrap_or("");
        if v.is_empty() || v.contains(' ') || v.chars().count() > 120 {
            return Err(invalid_value("oauth2PermissionScopes", "Application"));
        }
        if !scope_values.insert(v.to_ascii_lowercase()) {
            return Err(bad(format!(
                "Request contains a property with duplicate values: scope value '{v}' is used more than once."
            )));
        }
        if !matches!(sc["type"].as_str(), Some("User" | "Admin")) {
            return Err(invalid_value("oauth2PermissionScopes", "Application"));
        }
    }
    if let Some(o) = old {
        check_entitlements(
            o["appRoles"].as_array().map(Vec::as_slice).unwrap_or(&[]),
            &roles,
        )?;
        check_entitlements(
            o["api"]["oauth2PermissionScopes"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[]),
            &scopes,
        )?;
    }
    // requiredResourceAccess
    if let Some(rra) = app["requiredResourceAccess"].as_array() {
        let perms: usize = rra
            .iter()
            .map(|x| x["resourceAccess"].as_array().map(Vec::len).unwrap_or(0))
            .sum();
        if rra.len() > 50 || perms > 400 {
            return Err(invalid_value("requiredResourceAccess", "Application"));
        }
        for x in rra {
            if uuid::Uuid::parse_str(x["resourceAppId"].as_str().unwrap_or("")).is_err() {
                return Err(invalid_value("requiredResourceAccess", "Application"));
            }
        }
    }
    if app["api"]["requestedAccessTokenVersion"]
        .as_i64()
        .is_some_and(|v| v != 1 && v != 2)
    {
        return Err(invalid_value("api", "Application"));
    }
    if aud.contains("Personal") && app["api"]["requestedAccessTokenVersion"].as_i64() == Some(1) {
        return Err(bad(
            "Property api.requestedAccessTokenVersion is invalid. It must be 2 when signInAudience includes personal Microsoft accounts.",
        ));
    }
    Ok(())
}

/// Applies a create/update payload to an app record (normalising roles, scopes, key credentials).
fn apply_app_payload(
    app: &mut AppRec,
    body: &Value,
    now: DateTime<Utc>,
    creating: bool,
) -> Result<(), GErr> {
    let mut patch = body.clone();
    if let Some(o) = patch.as_object_mut() {
        for k in [
            "id",
            "appId",
            "createdDateTime",
            "publisherDomain",
            "deletedDateTime",
        ] {
            o.remove(k);
        }
        o.retain(|k, _| !k.starts_with('@'));
        if let Some(roles) = o.get_mut("appRoles").and_then(Value::as_array_mut) {
            for r in roles.iter_mut() {
                *r = norm_role(r);
            }
        }
        if let Some(scopes) = o
            .get_mut("api")
            .and_then(|a| a.get_mut("oauth2PermissionScopes"))
            .and_then(Value::as_array_mut)
        {
            for sc in scopes.iter_mut() {
                *sc = norm_scope(sc);
            }
        }
        if let Some(pc) = o.remove("passwordCredentials") {
            // Secrets are added with addPassword; a PATCH can only remove existing ones.
            if !creating && let Some(list) = pc.as_array() {
                let keep: Vec<String> = list.iter().map(|x| s(x, "keyId")).collect();
                app.secrets.retain(|x| keep.contains(&x.key_id));
                if let Some(cur) = app.body["passwordCredentials"].as_array_mut() {
                    cur.retain(|x| keep.contains(&s(x, "keyId")));
                }
            }
        }
        if let Some(kc) = o.remove("keyCredentials") {
            let list = kc
                .as_array()
                .cloned()
                .ok_or_else(|| invalid_value("keyCredentials", "Application"))?;
            let mut out = vec![];
            let mut keys = std::collections::BTreeMap::new();
            for k in list {
                let key_id = k
                    .get("keyId")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(random_guid);
                let der = match k.get("key").and_then(Value::as_str) {
                    Some(b) => {
                        let der = crypto::b64_any(b)
                            .ok_or_else(|| invalid_value("keyCredentials", "Application"))?;
                        if x509_parser::parse_x509_certificate(&der).is_err() {
                            return Err(bad(
                                "Key credential is not a valid X.509 certificate: invalid value specified for property 'keyCredentials' of resource 'Application'.",
                            ));
                        }
                        der
                    }
                    None => match app.cert_keys.get(&key_id).and_then(|b| crypto::b64_any(b)) {
                        Some(d) => d,
                        None => return Err(invalid_value("keyCredentials", "Application")),
                    },
                };
                let existing = app.body["keyCredentials"]
                    .as_array()
                    .and_then(|a| a.iter().find(|x| s(x, "keyId") == key_id).cloned());
                let (nb, na) = crypto::cert_validity(&der)
                    .unwrap_or((now.timestamp(), now.timestamp() + 365 * 86400));
                let subject = x509_parser::parse_x509_certificate(&der)
                    .map(|(_, c)| c.subject().to_string())
                    .unwrap_or_default();
                let typ = k
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("AsymmetricX509Cert");
                let usage = k.get("usage").and_then(Value::as_str).unwrap_or("Verify");
                if !matches!(typ, "AsymmetricX509Cert" | "X509CertAndPassword")
                    || !matches!(usage, "Verify" | "Sign")
                {
                    return Err(invalid_value("keyCredentials", "Application"));
                }
                let pick = |name: &str, dflt: Value| {
                    k.get(name)
                        .filter(|v| !v.is_null())
                        .cloned()
                        .or_else(|| existing.as_ref().and_then(|e| e.get(name).cloned()))
                        .unwrap_or(dflt)
                };
                out.push(json!({
                    "customKeyIdentifier": pick("customKeyIdentifier", json!(crypto::b64(&crypto::sha1(&der)))),
                    "displayName": pick("displayName", json!(format!("CN={}", subject.trim_start_matches("CN=")))),
                    "endDateTime": pick("endDateTime", json!(fmt_secs(DateTime::from_timestamp(na, 0).unwrap_or(now)))),
                    "key": null,
                    "keyId": key_id,
                    "startDateTime": pick("startDateTime", json!(fmt_secs(DateTime::from_timestamp(nb, 0).unwrap_or(now)))),
                    "type": typ,
                    "usage": usage,
                }));
                keys.insert(key_id, crypto::b64(&der));
            }
            app.body["keyCredentials"] = Value::Array(out);
            app.cert_keys = keys;
        }
    }
    deep_merge(&mut app.body, &patch);
    Ok(())
}

fn location(r: &Req, tid: &str, id: &str, kind: &str) -> String {
    format!(
        "{}/v2/{tid}/directoryObjects/{id}/Microsoft.DirectoryServices.{kind}",
        r.sh.base_url
    )
}

fn create_app(r: &Req, t: &mut Tenant, unique_name: Option<&str>) -> R {
    if !r.has_any(&[
        "Application.ReadWrite.OwnedBy",
        "Application.ReadWrite.All",
        "Directory.ReadWrite.All",
    ]) {
        return Err(denied());
    }
    check_writable(&r.body, store::APP_WRITABLE, "Application")?;
    let mut body = store::new_application(t, r.now);
    body["signInAudience"] = json!(r.sh.default_sign_in_audience);
    let mut rec = AppRec {
        body,
        ..Default::default()
    };
    apply_app_payload(&mut rec, &r.body, r.now, true)?;
    if let Some(u) = unique_name {
        rec.body["uniqueName"] = json!(u);
    }
    if rec.body["signInAudience"]
        .as_str()
        .is_some_and(|a| a.contains("Personal"))
        && rec.body["api"]["requestedAccessTokenVersion"].is_null()
    {
        rec.body["api"]["requestedAccessTokenVersion"] = json!(2);
    }
    validate_app(t, &rec.body, None, "")?;
    if r.caller.oid != crate::login::ADMIN_OID {
        rec.owners.push(r.caller.oid.clone());
    }
    rec.visible_from_ms = now_ms() + r.lag;
    let id = s(&rec.body, "id");
    let mut shown = store::app_public_view(&rec);
    shown["createdDateTime"] = json!(fmt_7(r.now));
    t.apps.push(rec);
    let mut resp = json_resp(
        StatusCode::CREATED,
        &with_context(r.ctx("applications/$entity"), &shown),
    );
    resp.headers_mut().insert(
        "Location",
        HeaderValue::from_str(&location(r, &t.id, &id, "Application")).unwrap(),
    );
    Ok(resp)
}

fn app_item(r: &Req, t: &mut Tenant, a: AppRef) -> R {
    match r.method {
        Method::GET => {
            if !r.can_read() {
                return Err(denied());
            }
            let i = find_app(r, t, &a, false)?;
            let v = store::app_public_view(&t.apps[i]);
            let (frag, v) = if r.q.select.is_empty() {
                ("applications/$entity".to_string(), v)
            } else {
                let sel = store::select(&v, &r.q.select);
                let cols: Vec<String> = sel
                    .as_object()
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default();
                (format!("applications({})/$entity", cols.join(",")), sel)
            };
            Ok(json_resp(StatusCode::OK, &with_context(r.ctx(&frag), &v)))
        }
        Method::PATCH => {
            let is_unique = matches!(&a, AppRef::Key(k, _) if k.eq_ignore_ascii_case("uniqueName"));
            let idx = find_app(r, t, &a, is_unique);
            let i = match idx {
                Ok(i) => i,
                Err(e) => {
                    if is_unique && r.prefer_create() {
                        let AppRef::Key(_, name) = &a else {
                            unreachable!()
                        };
                        let mut resp = create_app(r, t, Some(name))?;
                        resp.headers_mut().insert(
                            "Preference-Applied",
                            HeaderValue::from_static("create-if-missing"),
                        );
                        return Ok(resp);
                    }
                    return Err(e);
                }
            };
            if !r.can_write(&t.apps[i].owners) {
                return Err(denied());
            }
            check_writable(&r.body, store::APP_WRITABLE, "Application")?;
            let old = t.apps[i].body.clone();
            let mut rec = t.apps[i].clone();
            apply_app_payload(&mut rec, &r.body, r.now, false)?;
            let id = s(&old, "id");
            validate_app(t, &rec.body, Some(&old), &id)?;
            let app_id = s(&rec.body, "appId");
            t.apps[i] = rec;
            let body = t.apps[i].body.clone();
            for sp in t.sps.iter_mut().filter(|sp| s(&sp.body, "appId") == app_id) {
                store::sync_sp_from_app(&mut sp.body, &body);
            }
            Ok(no_content())
        }
        Method::DELETE => {
            let i = find_app(r, t, &a, false)?;
            if !r.can_write(&t.apps[i].owners) {
                return Err(denied());
            }
            let mut rec = t.apps.remove(i);
            rec.body["deletedDateTime"] = json!(fmt_secs(r.now));
            let app_id = s(&rec.body, "appId");
            let sp_ids: Vec<String> = t
                .sps
                .iter()
                .filter(|sp| s(&sp.body, "appId") == app_id)
                .map(|sp| s(&sp.body, "id"))
                .collect();
            for id in &sp_ids {
                remove_sp(t, id);
            }
            t.deleted_apps.push(rec);
            Ok(no_content())
        }
        _ => Err(err(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Method not allowed.",
        )),
    }
}

fn remove_sp(t: &mut Tenant, id: &str) {
    t.sps.retain(|sp| s(&sp.body, "id") != id);
    t.assignments
        .retain(|a| s(a, "principalId") != id && s(a, "resourceId") != id);
    t.grants
        .retain(|g| s(g, "clientId") != id && s(g, "resourceId") != id);
}

fn app_sub(r: &Req, t: &mut Tenant, a: AppRef, sub: &str, rest: &[String]) -> R {
    let (sub_name, sub_key) = split_key(sub);
    let i = find_app(r, t, &a, false)?;
    let app_obj_id = s(&t.apps[i].body, "id");
    match (sub_name.as_str(), &r.method) {
        ("addPassword" | "microsoft.graph.addPassword", &Method::POST) => {
            if !r.can_write(&t.apps[i].owners) {
                return Err(denied());
            }
            let pc = if r.body.is_null() {
                json!({})
            } else {
                r.body
                    .get("passwordCredential")
                    .cloned()
                    .unwrap_or(json!({}))
            };
            let pc = if pc.is_null() { json!({}) } else { pc };
            let start = match pc.get("startDateTime").and_then(Value::as_str) {
                Some(x) => store::parse_time(x)
                    .ok_or_else(|| invalid_value("startDateTime", "PasswordCredential"))?,
                None => r.now,
            };
            let end = match pc.get("endDateTime").and_then(Value::as_str) {
                Some(x) => store::parse_time(x)
                    .ok_or_else(|| invalid_value("endDateTime", "PasswordCredential"))?,
                None => start + chrono::Duration::days(365 * 2),
            };
            if end <= start {
                return Err(bad("Key credential end date is invalid."));
            }
            let key_id = pc
                .get("keyId")
                .and_then(Value::as_str)
                .filter(|k| uuid::Uuid::parse_str(k).is_ok())
                .map(str::to_string)
                .unwrap_or_else(random_guid);
            if t.apps[i].secrets.iter().any(|x| x.key_id == key_id) {
                return Err(bad(format!(
                    "A credential with keyId '{key_id}' already exists."
                )));
            }
            if t.apps[i].secrets.len() >= 100 {
                return Err(bad(
                    "The maximum number of password credentials for this application has been reached.",
                ));
            }
            let secret = crate::random_secret();
            let cred = json!({"customKeyIdentifier": null, "displayName": pc.get("displayName").cloned().unwrap_or(Value::Null),
                "endDateTime": fmt_7(end), "hint": secret.chars().take(3).collect::<String>(), "keyId": key_id,
                "secretText": secret, "startDateTime": fmt_7(start)});
            let mut stored = cred.clone();
            stored["secretText"] = Value::Null;
            stored["endDateTime"] = json!(fmt_secs(end));
            stored["startDateTime"] = json!(fmt_secs(start));
            let app = &mut t.apps[i];
            app.body["passwordCredentials"]
                .as_array_mut()
                .unwrap()
                .insert(0, stored);
            app.secrets.push(store::Secret {
                key_id,
                text: secret,
                usable_from_ms: now_ms() + r.lag,
            });
            let mut resp = json_resp(
                StatusCode::OK,
                &with_context(r.ctx("microsoft.graph.passwordCredential"), &cred),
            );
            resp.headers_mut()
                .insert("Location", HeaderValue::from_str(&r.sh.base_url).unwrap());
            Ok(resp)
        }
        ("removePassword" | "microsoft.graph.removePassword", &Method::POST) => {
            if !r.can_write(&t.apps[i].owners) {
                return Err(denied());
            }
            let key_id = r
                .body
                .get("keyId")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let app = &mut t.apps[i];
            if !remove_by_key_id(&mut app.body["passwordCredentials"], &key_id) {
                return Err(bad(format!(
                    "No password credential found with keyId '{key_id}'."
                )));
            }
            app.secrets.retain(|x| x.key_id != key_id);
            Ok(no_content())
        }
        ("removeKey" | "microsoft.graph.removeKey", &Method::POST) => {
            if !r.can_write(&t.apps[i].owners) {
                return Err(denied());
            }
            let key_id = r
                .body
                .get("keyId")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let app = &mut t.apps[i];
            if !remove_by_key_id(&mut app.body["keyCredentials"], &key_id) {
                return Err(not_found(&key_id));
            }
            app.cert_keys.remove(&key_id);
            Ok(no_content())
        }
        ("federatedIdentityCredentials", _) => {
            fics(r, t, i, &app_obj_id, sub_key.map(|k| k.1), rest)
        }
        ("owners", _) => owners(r, t, Owned::App(i), rest),
        _ => Err(err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment '{sub}'."),
        )),
    }
}

fn fic_valid(f: &Value) -> Result<(), GErr> {
    let name = f["name"].as_str().unwrap_or("");
    if name.is_empty()
        || name.chars().count() > 120
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid_value("name", "FederatedIdentityCredential"));
    }
    let issuer = f["issuer"].as_str().unwrap_or("");
    if issuer.is_empty() || issuer.chars().count() > 600 {
        return Err(invalid_value("issuer", "FederatedIdentityCredential"));
    }
    let subject = f["subject"].as_str().unwrap_or("");
    if subject.is_empty() || subject.chars().count() > 600 {
        return Err(invalid_value("subject", "FederatedIdentityCredential"));
    }
    let auds = f["audiences"].as_array().cloned().unwrap_or_default();
    if auds.len() != 1
        || auds[0]
            .as_str()
            .is_none_or(|a| a.is_empty() || a.chars().count() > 600)
    {
        return Err(bad(
            "Invalid value specified for property 'audiences' of resource 'FederatedIdentityCredential'. Exactly one audience is required.",
        ));
    }
    if f["description"]
        .as_str()
        .is_some_and(|d| d.chars().count() > 600)
    {
        return Err(invalid_value("description", "FederatedIdentityCredential"));
    }
    Ok(())
}

fn fic_entity(body: &Value, id: &str) -> Value {
    json!({"id": id, "name": body["name"], "issuer": body["issuer"], "subject": body["subject"],
           "description": body.get("description").cloned().unwrap_or(Value::Null), "audiences": body["audiences"]})
}

fn fics(
    r: &Req,
    t: &mut Tenant,
    i: usize,
    app_obj_id: &str,
    key: Option<String>,
    rest: &[String],
) -> R {
    const FIC_FIELDS: &[&str] = &[
        "name",
        "issuer",
        "subject",
        "description",
        "audiences",
        "id",
        "claimsMatchingExpression",
    ];
    let tid = t.id.clone();
    let frag_base = format!("applications('{app_obj_id}')/federatedIdentityCredentials");
    let item_key = key.or_else(|| rest.first().cloned());
    let can_write = r.can_write(&t.apps[i].owners);
    let app = &mut t.apps[i];
    let find = |app: &AppRec, k: &str| {
        app.fics
            .iter()
            .position(|f| s(f, "id") == k || s(f, "name") == k)
    };
    let check_unique = |app: &AppRec, f: &Value, skip: Option<usize>| -> Result<(), GErr> {
        for (j, x) in app.fics.iter().enumerate() {
            if Some(j) == skip {
                continue;
            }
            if s(x, "name").eq_ignore_ascii_case(f["name"].as_str().unwrap_or("")) {
                return Err(err(
                    StatusCode::CONFLICT,
                    "Request_MultipleObjectsWithSameKeyValue",
                    format!(
                        "FederatedIdentityCredential with name {} already exists.",
                        s(f, "name")
                    ),
                ));
            }
            if s(x, "issuer") == s(f, "issuer") && s(x, "subject") == s(f, "subject") {
                return Err(bad(format!(
                    "FederatedIdentityCredential with issuer '{}' and subject '{}' already exists on this application.",
                    s(f, "issuer"),
                    s(f, "subject")
                )));
            }
        }
        Ok(())
    };
    match (item_key, &r.method) {
        (None, &Method::GET) => {
            if !r.can_read() {
                return Err(denied());
            }
            let items = app.fics.clone();
            list_response(
                r,
                &frag_base,
                items,
                &["name", "issuer", "subject", "audiences", "id"],
            )
        }
        (None, &Method::POST) => {
            if !can_write {
                return Err(denied());
            }
            check_writable(&r.body, FIC_FIELDS, "FederatedIdentityCredential")?;
            fic_valid(&r.body)?;
            if app.fics.len() >= 20 {
                return Err(bad(
                    "The maximum number of federated identity credentials (20) for this application has been reached.",
                ));
            }
            check_unique(app, &r.body, None)?;
            let id = random_guid();
            let f = fic_entity(&r.body, &id);
            app.fics.push(f.clone());
            let mut resp = json_resp(
                StatusCode::CREATED,
                &with_context(r.ctx(&format!("{frag_base}/$entity")), &f),
            );
            resp.headers_mut().insert(
                "Location",
                HeaderValue::from_str(&format!(
                    "{}/v2/{tid}/federatedIdentityCredentials/{id}",
                    r.sh.base_url
                ))
                .unwrap(),
            );
            Ok(resp)
        }
        (Some(k), &Method::GET) => {
            if !r.can_read() {
                return Err(denied());
            }
            let j = find(app, &k).ok_or_else(|| not_found(&k))?;
            Ok(json_resp(
                StatusCode::OK,
                &with_context(r.ctx(&format!("{frag_base}/$entity")), &app.fics[j]),
            ))
        }
        (Some(k), &Method::PATCH) => {
            if !can_write {
                return Err(denied());
            }
            check_writable(&r.body, FIC_FIELDS, "FederatedIdentityCredential")?;
            match find(app, &k) {
                Some(j) => {
                    let mut f = app.fics[j].clone();
                    if let Some(n) = r.body.get("name").and_then(Value::as_str)
                        && n != s(&f, "name")
                    {
                        return Err(bad("Property 'name' is read-only and cannot be changed."));
                    }
                    deep_merge(&mut f, &r.body);
                    let f = fic_entity(&f, &s(&app.fics[j], "id"));
                    fic_valid(&f)?;
                    check_unique(app, &f, Some(j))?;
                    app.fics[j] = f;
                    Ok(no_content())
                }
                None if r.prefer_create() => {
                    let mut body = r.body.clone();
                    body["name"] = json!(k);
                    fic_valid(&body)?;
                    if app.fics.len() >= 20 {
                        return Err(bad(
                            "The maximum number of federated identity credentials (20) for this application has been reached.",
                        ));
                    }
                    check_unique(app, &body, None)?;
                    let id = random_guid();
                    let f = fic_entity(&body, &id);
                    app.fics.push(f.clone());
                    Ok(json_resp(
                        StatusCode::CREATED,
                        &with_context(r.ctx(&format!("{frag_base}/$entity")), &f),
                    ))
                }
                None => Err(not_found(&k)),
            }
        }
        (Some(k), &Method::DELETE) => {
            if !can_write {
                return Err(denied());
            }
            let j = find(app, &k).ok_or_else(|| not_found(&k))?;
            app.fics.remove(j);
            Ok(no_content())
        }
        _ => Err(err(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Method not allowed.",
        )),
    }
}

enum Owned {
    App(usize),
    Sp(usize),
}

fn owners(r: &Req, t: &mut Tenant, o: Owned, rest: &[String]) -> R {
    let list = match o {
        Owned::App(i) => t.apps[i].owners.clone(),
        Owned::Sp(i) => t.sps[i].owners.clone(),
    };
    match (rest.first().map(String::as_str), &r.method) {
        (None, &Method::GET) => {
            if !r.can_read() {
                return Err(denied());
            }
            let items: Vec<Value> = list
                .iter()
                .filter_map(|id| {
                    t.sp_idx(id).map(|j| {
                        with_context_type("#microsoft.graph.servicePrincipal", &t.sps[j].body)
                    })
                })
                .collect();
            list_response(r, "directoryObjects", items, &["id"])
        }
        (Some("$ref"), &Method::POST) => {
            if !r.all() {
                return Err(denied());
            }
            let target = r
                .body
                .get("@odata.id")
                .and_then(Value::as_str)
                .unwrap_or("");
            let id = target
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string();
            if t.sp_idx(&id).is_none() {
                return Err(not_found(&id));
            }
            if list.contains(&id) {
                return Err(bad(
                    "One or more added object references already exist for the following modified properties: 'owners'.",
                ));
            }
            match o {
                Owned::App(i) => t.apps[i].owners.push(id),
                Owned::Sp(i) => t.sps[i].owners.push(id),
            }
            Ok(no_content())
        }
        (Some(id), &Method::DELETE) if rest.get(1).map(String::as_str) == Some("$ref") => {
            if !r.all() {
                return Err(denied());
            }
            let id = id.to_string();
            if !list.contains(&id) {
                return Err(not_found(&id));
            }
            match o {
                Owned::App(i) => t.apps[i].owners.retain(|x| *x != id),
                Owned::Sp(i) => t.sps[i].owners.retain(|x| *x != id),
            }
            Ok(no_content())
        }
        _ => Err(err(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Method not allowed.",
        )),
    }
}

fn with_context_type(t: &str, v: &Value) -> Value {
    let mut m = Map::new();
    m.insert("@odata.type".into(), json!(t));
    if let Some(o) = v.as_object() {
        for (k, x) in o {
            m.insert(k.clone(), x.clone());
        }
    }
    Value::Object(m)
}

fn list_sps(r: &Req, t: &Tenant) -> R {
    if !r.can_read() && !r.caller.has("AppRoleAssignment.ReadWrite.All") {
        return Err(denied());
    }
    let items: Vec<Value> = t
        .sps
        .iter()
        .filter(|a| r.visible(a.visible_from_ms))
        .map(|x| x.body.clone())
        .collect();
    list_response(r, "servicePrincipals", items, SP_FILTERABLE)
}

const SP_WRITABLE: &[&str] = &[
    "appId",
    "accountEnabled",
    "appRoleAssignmentRequired",
    "tags",
    "notes",
    "description",
    "displayName",
    "homepage",
    "loginUrl",
    "logoutUrl",
    "notificationEmailAddresses",
    "preferredSingleSignOnMode",
    "replyUrls",
    "alternativeNames",
    "appDescription",
    "servicePrincipalType",
    "keyCredentials",
    "passwordCredentials",
    "samlSingleSignOnSettings",
    "preferredTokenSigningKeyThumbprint",
    "info",
    "addIns",
];

fn create_sp(r: &Req, t: &mut Tenant) -> R {
    if !r.has_any(&[
        "Application.ReadWrite.OwnedBy",
        "Application.ReadWrite.All",
        "Directory.ReadWrite.All",
    ]) {
        return Err(denied());
    }
    check_writable(&r.body, SP_WRITABLE, "ServicePrincipal")?;
    let app_id = r
        .body
        .get("appId")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    if app_id.is_empty() {
        return Err(bad(
            "Property 'appId' is required when creating a service principal.",
        ));
    }
    if t.sp_idx_by_app_id(&app_id).is_some() {
        return Err(err(
            StatusCode::CONFLICT,
            "Request_MultipleObjectsWithSameKeyValue",
            format!(
                "The service principal cannot be created, updated, or restored because the service principal name {app_id} is already in use."
            ),
        ));
    }
    let no_backing = || {
        let mut e = bad(format!(
            "The appId '{app_id}' of the service principal does not reference a valid application object."
        ));
        e.details = Some(json!([{"code": "NoBackingApplicationObject", "target": "appId"}]));
        e
    };
    let (app_body, home_tenant, owners) = match t.app_idx_by_app_id(&app_id) {
        Some(i) => {
            if !r.visible(t.apps[i].visible_from_ms) {
                return Err(no_backing());
            }
            if !r.can_write(&t.apps[i].owners) {
                return Err(denied());
            }
            (
                t.apps[i].body.clone(),
                t.id.clone(),
                t.apps[i].owners.clone(),
            )
        }
        None if app_id == store::HEALTHCARE_APP_ID => {
            // Importing Microsoft's first-party app (`az ad sp create --id …`) takes more than OwnedBy.
            if !r.all() {
                return Err(denied());
            }
            let sp = store::healthcare_sp(&t.id);
            t.sps.push(SpRec {
                body: sp.clone(),
                owners: vec![],
                visible_from_ms: now_ms() + r.lag,
            });
            return Ok(json_resp(
                StatusCode::CREATED,
                &with_context(r.ctx("servicePrincipals/$entity"), &sp),
            ));
        }
        None => {
            // A multi-tenant application registered in another tenant.
            let other = r.foreign_apps.get(&app_id).cloned();
            match other {
                Some((body, home)) => {
                    if !r.all() {
                        return Err(err(
                            StatusCode::FORBIDDEN,
                            "Authorization_RequestDenied",
                            "When using this permission, the backing application of the service principal being created must in the local tenant",
                        ));
                    }
                    (body, home, vec![])
                }
                None => return Err(no_backing()),
            }
        }
    };
    let mut sp = store::new_service_principal(&app_body, &home_tenant, r.now);
    if let Some(o) = r.body.as_object() {
        for (k, v) in o {
            if k != "appId"
                && SP_WRITABLE.contains(&k.as_str())
                && !matches!(k.as_str(), "keyCredentials" | "passwordCredentials")
            {
                sp[k] = v.clone();
            }
        }
    }
    let id = s(&sp, "id");
    let mut sp_owners = vec![];
    if r.caller.oid != crate::login::ADMIN_OID {
        sp_owners.push(r.caller.oid.clone());
    }
    for o in owners {
        if !sp_owners.contains(&o) {
            sp_owners.push(o);
        }
    }
    t.sps.push(SpRec {
        body: sp.clone(),
        owners: sp_owners,
        visible_from_ms: now_ms() + r.lag,
    });
    let mut resp = json_resp(
        StatusCode::CREATED,
        &with_context(r.ctx("servicePrincipals/$entity"), &sp),
    );
    resp.headers_mut().insert(
        "Location",
        HeaderValue::from_str(&location(r, &t.id, &id, "ServicePrincipal")).unwrap(),
    );
    Ok(resp)
}

fn sp_routes(r: &Req, t: &mut Tenant, id: &str, sub: Option<&str>, rest: &[String]) -> R {
    let i = match t.sp_idx(id) {
        Some(i) if r.visible(t.sps[i].visible_from_ms) => i,
        _ => return Err(not_found(id.trim_start_matches('!'))),
    };
    match (sub, &r.method) {
        (None, &Method::GET) => {
            if !r.can_read() && !r.caller.has("AppRoleAssignment.ReadWrite.All") {
                return Err(denied());
            }
            let v = store::select(&t.sps[i].body, &r.q.select);
            Ok(json_resp(
                StatusCode::OK,
                &with_context(r.ctx("servicePrincipals/$entity"), &v),
            ))
        }
        (None, &Method::PATCH) => {
            if !r.can_write(&t.sps[i].owners) {
                return Err(denied());
            }
            check_writable(&r.body, SP_WRITABLE, "ServicePrincipal")?;
            let mut patch = r.body.clone();
            if let Some(o) = patch.as_object_mut() {
                o.remove("appId");
                o.remove("keyCredentials");
                o.remove("passwordCredentials");
            }
            deep_merge(&mut t.sps[i].body, &patch);
            Ok(no_content())
        }
        (None, &Method::DELETE) => {
            if !r.can_write(&t.sps[i].owners) {
                return Err(denied());
            }
            if matches!(
                s(&t.sps[i].body, "appId").as_str(),
                store::GRAPH_APP_ID | store::HEALTHCARE_APP_ID
            ) {
                return Err(denied());
            }
            remove_sp(t, id);
            Ok(no_content())
        }
        (Some("appRoleAssignedTo"), _) => assignments(r, t, i, true, rest),
        (Some("appRoleAssignments"), _) => assignments(r, t, i, false, rest),
        (Some("owners"), _) => owners(r, t, Owned::Sp(i), rest),
        (Some("oauth2PermissionGrants"), &Method::GET) => {
            if !r.can_read() && !r.caller.has("DelegatedPermissionGrant.ReadWrite.All") {
                return Err(denied());
            }
            let items: Vec<Value> = t
                .grants
                .iter()
                .filter(|g| s(g, "clientId") == id)
                .cloned()
                .collect();
            list_response(
                r,
                "oauth2PermissionGrants",
                items,
                &["clientId", "resourceId", "consentType", "principalId"],
            )
        }
        (Some(x), _) => Err(err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment '{x}'."),
        )),
        _ => Err(err(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Method not allowed.",
        )),
    }
}

pub fn new_assignment(
    principal_id: &str,
    principal_name: &str,
    role_id: &str,
    resource: &Value,
    now: DateTime<Utc>,
) -> Value {
    let mut raw = store::guid_bytes_le(principal_id).to_vec();
    raw.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    json!({
        "id": crypto::b64url(&raw),
        "deletedDateTime": null,
        "appRoleId": role_id,
        "createdDateTime": fmt_7(now),
        "principalDisplayName": principal_name,
        "principalId": principal_id,
        "principalType": "ServicePrincipal",
        "resourceDisplayName": resource["displayName"],
        "resourceId": resource["id"],
    })
}

fn assignments(r: &Req, t: &mut Tenant, i: usize, assigned_to: bool, rest: &[String]) -> R {
    let sp_id = s(&t.sps[i].body, "id");
    let frag = format!(
        "servicePrincipals('{sp_id}')/{}",
        if assigned_to {
            "appRoleAssignedTo"
        } else {
            "appRoleAssignments"
        }
    );
    let may_write = r.has_any(&["AppRoleAssignment.ReadWrite.All", "Directory.ReadWrite.All"]);
    match (rest.first(), &r.method) {
        (None, &Method::GET) => {
            if !r.can_read() && !may_write {
                return Err(denied());
            }
            let items: Vec<Value> = t
                .assignments
                .iter()
                .filter(|a| {
                    if assigned_to {
                        s(a, "resourceId") == sp_id
                    } else {
                        s(a, "principalId") == sp_id
                    }
                })
                .cloned()
                .collect();
            list_response(
                r,
                &frag,
                items,
                &[
                    "principalId",
                    "resourceId",
                    "appRoleId",
                    "principalType",
                    "id",
                ],
            )
        }
        (None, &Method::POST) => {
            if !may_write {
                return Err(denied());
            }
            check_writable(
                &r.body,
                &[
                    "principalId",
                    "resourceId",
                    "appRoleId",
                    "principalType",
                    "principalDisplayName",
                    "resourceDisplayName",
                ],
                "AppRoleAssignment",
            )?;
            let principal_id = r
                .body
                .get("principalId")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let resource_id = r
                .body
                .get("resourceId")
                .and_then(Value::as_str)
                .unwrap_or(if assigned_to { &sp_id } else { "" })
                .to_string();
            let role_id = r
                .body
                .get("appRoleId")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if assigned_to && resource_id != sp_id {
                return Err(bad(
                    "The resourceId in the request body must match the service principal in the request URL.",
                ));
            }
            if !assigned_to && principal_id != sp_id {
                return Err(bad(
                    "The principalId in the request body must match the service principal in the request URL.",
                ));
            }
            // A principal is a service principal, or (on appRoleAssignedTo) a user or a group.
            let principal = match t
                .sp_idx(&principal_id)
                .filter(|j| r.visible(t.sps[*j].visible_from_ms))
            {
                Some(pi) => Some(("ServicePrincipal", s(&t.sps[pi].body, "displayName"))),
                None if assigned_to => crate::directory::principal(t, &principal_id),
                None => None,
            };
            let Some((ptype, pname)) = principal else {
                return Err(not_found(&principal_id));
            };
            let member = if ptype == "ServicePrincipal" {
                "Application"
            } else {
                "User"
            };
            let Some(ri) = t
                .sp_idx(&resource_id)
                .filter(|j| r.visible(t.sps[*j].visible_from_ms))
            else {
                return Err(not_found(&resource_id));
            };
            let resource = t.sps[ri].body.clone();
            let role_ok = role_id == "00000000-0000-0000-0000-000000000000"
                || resource["appRoles"].as_array().is_some_and(|roles| {
                    roles.iter().any(|x| {
                        s(x, "id") == role_id
                            && x["allowedMemberTypes"]
                                .as_array()
                                .is_some_and(|m| m.iter().any(|m| m == member))
                    })
                });
            if !role_ok {
                return Err(bad(
                    "Permission being assigned was not found on application",
                ));
            }
            if t.assignments.iter().any(|a| {
                s(a, "principalId") == principal_id
                    && s(a, "resourceId") == resource_id
                    && s(a, "appRoleId") == role_id
            }) {
                return Err(bad(
                    "Permission being assigned already exists on the object",
                ));
            }
            let mut a = new_assignment(&principal_id, &pname, &role_id, &resource, r.now);
            a["principalType"] = json!(ptype);
            t.assignments.push(a.clone());
            Ok(json_resp(
                StatusCode::CREATED,
                &with_context(r.ctx(&format!("{frag}/$entity")), &a),
            ))
        }
        (Some(aid), &Method::GET) => {
            let a = t
                .assignments
                .iter()
                .find(|a| {
                    s(a, "id") == *aid
                        && (s(a, "resourceId") == sp_id || s(a, "principalId") == sp_id)
                })
                .ok_or_else(|| not_found(aid))?;
            Ok(json_resp(
                StatusCode::OK,
                &with_context(r.ctx(&format!("{frag}/$entity")), a),
            ))
        }
        (Some(aid), &Method::DELETE) => {
            if !may_write {
                return Err(denied());
            }
            let before = t.assignments.len();
            t.assignments.retain(|a| {
                !(s(a, "id") == *aid
                    && (s(a, "resourceId") == sp_id || s(a, "principalId") == sp_id))
            });
            if t.assignments.len() == before {
                return Err(not_found(aid));
            }
            Ok(no_content())
        }
        _ => Err(err(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Method not allowed.",
        )),
    }
}

fn grants(r: &Req, t: &mut Tenant, id: Option<String>) -> R {
    let may_write = r.has_any(&[
        "DelegatedPermissionGrant.ReadWrite.All",
        "Directory.ReadWrite.All",
    ]);
    let may_read = may_write || r.can_read();
    match (id, &r.method) {
        (None, &Method::GET) => {
            if !may_read {
                return Err(denied());
            }
            list_response(
                r,
                "oauth2PermissionGrants",
                t.grants.clone(),
                &["clientId", "resourceId", "consentType", "principalId", "id"],
            )
        }
        (None, &Method::POST) => {
            if !may_write {
                return Err(denied());
            }
            check_writable(
                &r.body,
                &[
                    "clientId",
                    "consentType",
                    "principalId",
                    "resourceId",
                    "scope",
                    "startTime",
                    "expiryTime",
                ],
                "OAuth2PermissionGrant",
            )?;
            let client = s(&r.body, "clientId");
            let resource = s(&r.body, "resourceId");
            let consent = s(&r.body, "consentType");
            let principal = r
                .body
                .get("principalId")
                .and_then(Value::as_str)
                .map(str::to_string);
            if t.sp_idx(&client).is_none() {
                return Err(not_found(&client));
            }
            if t.sp_idx(&resource).is_none() {
                return Err(not_found(&resource));
            }
            match (consent.as_str(), &principal) {
                ("AllPrincipals", None) | ("Principal", Some(_)) => {}
                _ => return Err(invalid_value("consentType", "OAuth2PermissionGrant")),
            }
            let mut raw = store::guid_bytes_le(&client).to_vec();
            raw.extend_from_slice(&store::guid_bytes_le(&resource));
            if let Some(p) = &principal {
                raw.extend_from_slice(&store::guid_bytes_le(p));
            }
            let gid = crypto::b64url(&raw);
            if t.grants.iter().any(|g| s(g, "id") == gid) {
                return Err(err(
                    StatusCode::CONFLICT,
                    "Request_MultipleObjectsWithSameKeyValue",
                    "Permission entry already exists.",
                ));
            }
            let g = json!({"clientId": client, "consentType": consent, "id": gid, "principalId": principal, "resourceId": resource,
                           "scope": r.body.get("scope").cloned().unwrap_or(json!(""))});
            t.grants.push(g.clone());
            Ok(json_resp(
                StatusCode::CREATED,
                &with_context(r.ctx("oauth2PermissionGrants/$entity"), &g),
            ))
        }
        (Some(id), &Method::GET) => {
            if !may_read {
                return Err(denied());
            }
            let g = t
                .grants
                .iter()
                .find(|g| s(g, "id") == id)
                .ok_or_else(|| not_found(&id))?;
            Ok(json_resp(
                StatusCode::OK,
                &with_context(r.ctx("oauth2PermissionGrants/$entity"), g),
            ))
        }
        (Some(id), &Method::PATCH) => {
            if !may_write {
                return Err(denied());
            }
            check_writable(
                &r.body,
                &["scope", "startTime", "expiryTime"],
                "OAuth2PermissionGrant",
            )?;
            let g = t
                .grants
                .iter_mut()
                .find(|g| s(g, "id") == id)
                .ok_or_else(|| not_found(&id))?;
            if let Some(sc) = r.body.get("scope") {
                g["scope"] = sc.clone();
            }
            Ok(no_content())
        }
        (Some(id), &Method::DELETE) => {
            if !may_write {
                return Err(denied());
            }
            let before = t.grants.len();
            t.grants.retain(|g| s(g, "id") != id);
            if before == t.grants.len() {
                return Err(not_found(&id));
            }
            Ok(no_content())
        }
        _ => Err(err(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Method not allowed.",
        )),
    }
}

fn deleted_items(r: &Req, t: &mut Tenant, rest: &[String]) -> R {
    let first = rest.first().map(String::as_str);
    match (first, rest.get(1).map(String::as_str), &r.method) {
        (Some(cast), None, &Method::GET) if cast.starts_with("microsoft.graph.") => {
            if !r.can_read() {
                return Err(denied());
            }
            let items: Vec<Value> = if cast == "microsoft.graph.application" {
                t.deleted_apps.iter().map(store::app_public_view).collect()
            } else {
                vec![]
            };
            list_response(
                r,
                &format!("directory/deletedItems/{cast}"),
                items,
                APP_FILTERABLE,
            )
        }
        (Some(id), None, &Method::GET) => {
            if !r.can_read() {
                return Err(denied());
            }
            let a = t
                .deleted_apps
                .iter()
                .find(|a| s(&a.body, "id") == id)
                .ok_or_else(|| not_found(id))?;
            Ok(json_resp(
                StatusCode::OK,
                &with_context(
                    r.ctx("directory/deletedItems/$entity"),
                    &with_context_type("#microsoft.graph.application", &store::app_public_view(a)),
                ),
            ))
        }
        (Some(id), None, &Method::DELETE) => {
            let j = t
                .deleted_apps
                .iter()
                .position(|a| s(&a.body, "id") == id)
                .ok_or_else(|| not_found(id))?;
            if !r.can_write(&t.deleted_apps[j].owners) {
                return Err(denied());
            }
            t.deleted_apps.remove(j);
            Ok(no_content())
        }
        (Some(id), Some("restore" | "microsoft.graph.restore"), &Method::POST) => {
            let j = t
                .deleted_apps
                .iter()
                .position(|a| s(&a.body, "id") == id)
                .ok_or_else(|| not_found(id))?;
            if !r.can_write(&t.deleted_apps[j].owners) {
                return Err(denied());
            }
            let mut rec = t.deleted_apps[j].clone();
            rec.body["deletedDateTime"] = Value::Null;
            validate_app(t, &rec.body, None, &s(&rec.body, "id")).map_err(|mut e| {
                e.message = format!("The object cannot be restored: {}", e.message);
                e
            })?;
            t.deleted_apps.remove(j);
            let shown = with_context_type(
                "#microsoft.graph.application",
                &store::app_public_view(&rec),
            );
            t.apps.push(rec);
            Ok(json_resp(
                StatusCode::OK,
                &with_context(r.ctx("directoryObjects/$entity"), &shown),
            ))
        }
        _ => Err(err(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Method not allowed.",
        )),
    }
}

/// Removes the credential with `key_id` from a credential collection; false when there was none.
fn remove_by_key_id(credentials: &mut Value, key_id: &str) -> bool {
    let Some(list) = credentials.as_array_mut() else {
        return false;
    };
    let before = list.len();
    list.retain(|x| s(x, "keyId") != key_id);
    list.len() != before
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(m: Method, p: &str) -> String {
        let segs: Vec<String> = p
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        operation_name(&m, &segs)
    }

    #[test]
    fn operation_names_are_stable() {
        assert_eq!(op(Method::POST, "applications"), "applications.create");
        assert_eq!(op(Method::GET, "applications"), "applications.list");
        assert_eq!(op(Method::GET, "applications/x"), "applications.get");
        assert_eq!(
            op(Method::GET, "applications(appId='x')"),
            "applications.get"
        );
        assert_eq!(
            op(Method::PATCH, "applications(uniqueName='x')"),
            "applications.upsert"
        );
        assert_eq!(op(Method::PATCH, "applications/x"), "applications.update");
        assert_eq!(op(Method::DELETE, "applications/x"), "applications.delete");
        assert_eq!(
            op(Method::POST, "applications/x/addPassword"),
            "applications.addPassword"
        );
        assert_eq!(
            op(Method::POST, "applications/x/microsoft.graph.addPassword"),
            "applications.addPassword"
        );
        assert_eq!(
            op(Method::POST, "applications(appId='y')/removePassword"),
            "applications.removePassword"
        );
        assert_eq!(
            op(Method::POST, "applications/x/federatedIdentityCredentials"),
            "federatedIdentityCredentials.create"
        );
        assert_eq!(
            op(
                Method::PATCH,
                "applications/x/federatedIdentityCredentials(name='n')"
            ),
            "federatedIdentityCredentials.upsert"
        );
        assert_eq!(
            op(
                Method::DELETE,
                "applications/x/federatedIdentityCredentials/n"
            ),
            "federatedIdentityCredentials.delete"
        );
        assert_eq!(
            op(Method::POST, "servicePrincipals"),
            "servicePrincipals.create"
        );
        assert_eq!(
            op(Method::POST, "servicePrincipals/x/appRoleAssignedTo"),
            "appRoleAssignedTo.create"
        );
        assert_eq!(
            op(Method::DELETE, "servicePrincipals/x/appRoleAssignedTo/a"),
            "appRoleAssignedTo.delete"
        );
        assert_eq!(
            op(Method::POST, "oauth2PermissionGrants"),
            "oauth2PermissionGrants.create"
        );
        assert_eq!(
            op(Method::PATCH, "oauth2PermissionGrants/g"),
            "oauth2PermissionGrants.update"
        );
        assert_eq!(
            op(
                Method::GET,
                "directory/deletedItems/microsoft.graph.application"
            ),
            "deletedItems.list"
        );
        assert_eq!(
            op(Method::POST, "directory/deletedItems/x/restore"),
            "deletedItems.restore"
        );
        assert_eq!(
            op(Method::DELETE, "directory/deletedItems/x"),
            "deletedItems.purge"
        );
        assert_eq!(
            op(Method::GET, "applications/x/owners"),
            "applications.owners.list"
        );
    }

    #[test]
    fn alternate_keys_split() {
        assert_eq!(
            split_key("applications(appId='a-b')"),
            ("applications".into(), Some(("appId".into(), "a-b".into())))
        );
        assert_eq!(
            split_key("federatedIdentityCredentials(name='it''s')"),
            (
                "federatedIdentityCredentials".into(),
                Some(("name".into(), "it's".into()))
            )
        );
        assert_eq!(split_key("applications"), ("applications".into(), None));
    }
}
