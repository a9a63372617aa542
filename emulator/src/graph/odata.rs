//! OData on the wire: response bodies, `@odata.context`, path keys, and the list query options
//! (`$filter`, `$orderby`, `$search`, `$count`, `$top`, `$skiptoken`, `$select`).
use super::errors::{GErr, R, bad, denied, err};
use super::query::{self, Query};
use super::req::Req;
use crate::crypto;
use crate::state::store;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

const ODATA_CT: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

pub fn json_resp(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header("Content-Type", ODATA_CT)
        .header("OData-Version", "4.0")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}
pub fn no_content() -> Response {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header("Content-Length", "0")
        .body(Body::empty())
        .unwrap()
}
/// A 200 with one entity (or value) and its `@odata.context` (`…/$metadata#{frag}`).
pub fn entity(r: &Req, frag: &str, v: &Value) -> Response {
    json_resp(StatusCode::OK, &with_context(r.ctx(frag), v))
}
/// A 201 with the created entity and its `@odata.context`.
pub fn created(r: &Req, frag: &str, v: &Value) -> Response {
    json_resp(StatusCode::CREATED, &with_context(r.ctx(frag), v))
}
/// The response with a `Location` header.
pub fn with_location(mut resp: Response, url: &str) -> Response {
    resp.headers_mut()
        .insert("Location", HeaderValue::from_str(url).unwrap());
    resp
}

/// `v` with `@odata.context` first.
pub fn with_context(ctx_url: String, v: &Value) -> Value {
    prepend("@odata.context", json!(ctx_url), v)
}
/// `v` with `@odata.type` first.
pub fn with_context_type(t: &str, v: &Value) -> Value {
    prepend("@odata.type", json!(t), v)
}
fn prepend(key: &str, value: Value, v: &Value) -> Value {
    let mut m = Map::new();
    m.insert(key.into(), value);
    if let Some(o) = v.as_object() {
        for (k, x) in o {
            m.insert(k.clone(), x.clone());
        }
    }
    Value::Object(m)
}

/// The `Location` of a created directory object.
pub fn location(r: &Req, tid: &str, id: &str, kind: &str) -> String {
    format!(
        "{}/v2/{tid}/directoryObjects/{id}/Microsoft.DirectoryServices.{kind}",
        r.sh.base_url
    )
}

/// A path segment: `name`, or `name(key='value')` / `name('value')`.
pub fn split_key(seg: &str) -> (String, Option<(String, String)>) {
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

/// A `$count` segment's answer: the number as text (needs `ConsistencyLevel: eventual`).
pub fn count(r: &Req, n: usize) -> R {
    if !r.eventual() {
        return Err(bad("Count is not currently supported."));
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

/// Rejects properties a payload may not set (the server-set ones are ignored).
pub fn check_writable(body: &Value, allowed: &[&str], resource: &str) -> Result<(), GErr> {
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
            return Err(bad(format!(
                "Property '{k}' does not exist as a declared property or extension property on resource '{resource}'."
            )));
        }
    }
    Ok(())
}

/// PATCH semantics: objects merge key by key, anything else is replaced.
pub fn deep_merge(dst: &mut Value, src: &Value) {
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

const SORT_NEEDS_ADVANCED: &str = "Sorting not supported for current query. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information";

/// A collection answer: the query options applied to `items`, one page of them.
pub fn list_response(r: &Req, frag: &str, items: Vec<Value>, filterable: &[&str]) -> R {
    let q = &r.q;
    let mut items = items;
    let mut advanced = match &q.filter {
        Some(f) => filter(f, frag, filterable, &mut items)?,
        None => None,
    };
    if let Some(ob) = &q.orderby {
        if q.filter.is_some() && advanced.is_none() {
            advanced = Some(SORT_NEEDS_ADVANCED.into());
        }
        order_by(ob, &mut items);
    }
    if q.count && !r.eventual() {
        return Err(bad(
            "$count is not currently supported without the ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information",
        ));
    }
    if let Some(sq) = &q.search {
        search(r, sq, &mut items)?;
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
    page(r, frag, items)
}

/// Keeps the items `$filter` matches; the reason the filter needs an advanced query, if it does.
fn filter(
    f: &str,
    frag: &str,
    filterable: &[&str],
    items: &mut Vec<Value>,
) -> Result<Option<String>, GErr> {
    let e = query::parse_filter(f).map_err(|m| bad(format!("Invalid filter clause: {m}")))?;
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
    let advanced = query::advanced_reason(&e);
    items.retain(|v| query::eval(&e, v));
    Ok(advanced)
}

/// `$orderby=prop [asc|desc]`, comparing values as lower-cased JSON text.
fn order_by(ob: &str, items: &mut [Value]) {
    let mut parts = ob.split_whitespace();
    let prop = parts.next().unwrap_or("displayName").to_string();
    let desc = parts.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
    let key = |v: &Value| {
        v.get(&prop)
            .map(|v| v.to_string().to_lowercase())
            .unwrap_or_default()
    };
    items.sort_by(|a, b| {
        let (x, y) = (key(a), key(b));
        if desc { y.cmp(&x) } else { x.cmp(&y) }
    });
}

/// `$search="prop:term"` (default property displayName), a case-insensitive substring match.
fn search(r: &Req, sq: &str, items: &mut Vec<Value>) -> Result<(), GErr> {
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
    Ok(())
}

/// One page (`$top`, `$skiptoken`, `$select`) with `@odata.context`, `@odata.count` and
/// `@odata.nextLink`.
fn page(r: &Req, frag: &str, items: Vec<Value>) -> R {
    let q = &r.q;
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
        out.insert("@odata.nextLink".into(), json!(next_link(r, q, frag, top)));
    }
    out.insert("value".into(), Value::Array(page));
    Ok(json_resp(StatusCode::OK, &Value::Object(out)))
}

fn next_link(r: &Req, q: &Query, frag: &str, top: usize) -> String {
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
    format!("{}/{frag}?{}", r.g, params.join("&"))
}

fn frag_resource(frag: &str) -> &'static str {
    if frag.starts_with("servicePrincipals") {
        "ServicePrincipal"
    } else if frag.starts_with("oauth2") {
        "OAuth2PermissionGrant"
    } else if frag.starts_with("groups") {
        "Group"
    } else if frag.starts_with("users") {
        "User"
    } else {
        "Application"
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
