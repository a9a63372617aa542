//! `GET /applications/delta` and `GET /servicePrincipals/delta`: the objects, then what changed
//! (Learn `application-delta`, `serviceprincipal-delta`, `delta-query-overview`,
//! `delta-query-users`; docs/entra-facts/claims-and-delta.md part B). The change log is
//! `state::changes`, the tokens `delta_token`.
//!
//! - A round is pages of `DeltaConfig::page_size` objects, in id order, each but the last with an
//!   `@odata.nextLink` (`$skiptoken`), the last with an `@odata.deltaLink` (`$deltatoken`); "a page
//!   can't contain both" (Learn `delta-query-overview`).
//! - The initial round lists the objects that exist ("Resources that were deleted before the
//!   initial delta query aren't returned"); later rounds the objects with a change since the
//!   token, each as it is now: "Updated instances are represented by their **id** with *at least*
//!   the updated properties, but other properties might be included" — here every selected
//!   property, as users' delta does by default (`Prefer: return=minimal` is documented for users,
//!   not for these two collections, so it is not honoured [INF]).
//! - A deleted object is `{"id": …, "@removed": {"reason": "changed"}}` while it can be restored
//!   from the deleted items, `"deleted"` once it is purged or expired (same page).
//! - `$top` is ignored: "`$top` isn't supported by all APIs and will be silently ignored in delta
//!   for unsupported APIs" (Microsoft, microsoftgraph/microsoft-graph-docs#17516); so are
//!   `$orderby`, `$count`, `$search` and `$expand` [INF].
use super::delta_token::{self, Ask, Position};
use super::errors::{R, denied, err};
use super::odata::json_resp;
use super::pattern::Params;
use super::read_order::app_as_read;
use super::req::Req;
use crate::state::changes::Collection::{self, Applications, ServicePrincipals};
use crate::state::recycle;
use crate::state::store::{self, Tenant, now_ms};
use crate::state::views::GraphObject;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub fn applications(r: &Req, t: &mut Tenant, _: &Params) -> R {
    round(r, t, Applications)
}

pub fn service_principals(r: &Req, t: &mut Tenant, _: &Params) -> R {
    round(r, t, ServicePrincipals)
}

/// Another method than GET: 405 with the text Graph gave for `POST /users/delta`
/// (davidmoten/odata-client#37).
pub fn method_not_allowed(_: &Req, _: &mut Tenant, _: &Params) -> R {
    Err(err(
        StatusCode::METHOD_NOT_ALLOWED,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
    ))
}

/// Records that `props` of the application at `i` changed (an action such as `addPassword`).
pub(super) fn app_touched(r: &Req, t: &mut Tenant, i: usize, props: &[&str]) {
    let id = t.apps[i].id().to_string();
    t.changes
        .touched(Applications, &id, props, r.now.timestamp_millis());
}

/// Records that `props` of the service principal at `i` changed.
pub(super) fn sp_touched(r: &Req, t: &mut Tenant, i: usize, props: &[&str]) {
    let id = t.sps[i].id().to_string();
    t.changes
        .touched(ServicePrincipals, &id, props, r.now.timestamp_millis());
}

/// One page of a round. Permissions: those of Learn's `application-delta` and
/// `serviceprincipal-delta` (application: Application.ReadWrite.OwnedBy, Application.Read.All,
/// Application.ReadWrite.All, Directory.Read.All, Directory.ReadWrite.All), as for a list of
/// applications; with OwnedBy the objects of others are listed too, as the list does (a caller
/// with OwnedBy can query applications it does not own: microsoftgraph/microsoft-graph-docs#17416;
/// [INF] for delta).
fn round(r: &Req, t: &Tenant, coll: Collection) -> R {
    if !r.can_read() {
        return Err(denied());
    }
    let mut pos = match delta_token::ask(r, t, coll, r.sh.delta.token_lifetime_secs)? {
        Ask::Latest(pos) => {
            let link = Link::Delta(next_round(pos, t.changes.watermark(now_ms(), r.lag)));
            return Ok(answer(r, coll, link, vec![]));
        }
        Ask::Page(pos) => pos,
    };
    // Never behind the token (the replication lag may have grown since it was issued).
    let mark = t
        .changes
        .watermark(now_ms(), r.lag)
        .max(pos.since.unwrap_or(0));
    let upto = *pos.upto.get_or_insert(mark);
    let ids = match pos.since {
        None => current_ids(r, t, &pos),
        Some(since) => t
            .changes
            .changed_ids(coll, (since, upto), &pos.select, &pos.ids)
            .into_iter()
            .collect(),
    };
    let after = pos.after.take();
    let mut rest = ids
        .into_iter()
        .filter(|id| after.as_ref().is_none_or(|a| id > a));
    let page: Vec<String> = rest.by_ref().take(r.sh.delta.page_size.max(1)).collect();
    let more = rest.next().is_some();
    let index = Index::of(t, coll);
    let value = page
        .iter()
        .map(|id| render(t, &index, id, &pos.select))
        .collect();
    let link = if more {
        pos.after = page.last().cloned();
        Link::Next(pos)
    } else {
        Link::Delta(next_round(pos, upto))
    };
    Ok(answer(r, coll, link, value))
}

/// The deltaLink's position: changes after `upto`, from now on.
fn next_round(pos: Position, upto: u64) -> Position {
    Position {
        since: Some(upto),
        upto: None,
        after: None,
        issued_ms: now_ms(),
        nonce: rand::random(),
        ..pos
    }
}

/// The initial round's objects: those that exist and have replicated (as a list shows them), in
/// id order.
fn current_ids(r: &Req, t: &Tenant, pos: &Position) -> Vec<String> {
    let wanted =
        |id: &str| pos.ids.is_empty() || pos.ids.iter().any(|i| i.eq_ignore_ascii_case(id));
    let mut ids: Vec<String> = match pos.coll {
        Applications => t
            .apps
            .iter()
            .filter(|a| r.visible(a.visible_from_ms) && wanted(a.id()))
            .map(|a| a.id().to_string())
            .collect(),
        ServicePrincipals => t
            .sps
            .iter()
            .filter(|s| r.visible(s.visible_from_ms) && wanted(s.id()))
            .map(|s| s.id().to_string())
            .collect(),
    };
    ids.sort();
    ids
}

/// The live objects of a collection by id.
struct Index {
    coll: Collection,
    by_id: HashMap<String, usize>,
}

impl Index {
    fn of(t: &Tenant, coll: Collection) -> Self {
        let by_id = match coll {
            Applications => t
                .apps
                .iter()
                .enumerate()
                .map(|(i, a)| (a.id().to_string(), i))
                .collect(),
            ServicePrincipals => t
                .sps
                .iter()
                .enumerate()
                .map(|(i, s)| (s.id().to_string(), i))
                .collect(),
        };
        Index { coll, by_id }
    }
}

/// The object as a read shows it (only `select` and `id`, which "is always returned"), or its
/// `@removed` entry.
fn render(t: &Tenant, index: &Index, id: &str, select: &[String]) -> Value {
    let live = index.by_id.get(id).map(|&i| match index.coll {
        Applications => app_as_read(store::app_public_view(&t.apps[i])),
        ServicePrincipals => t.sps[i].body.clone(),
    });
    let Some(full) = live else {
        let reason = match recycle::find(t, id) {
            Some(_) => "changed",
            None => "deleted",
        };
        return json!({"id": id, "@removed": {"reason": reason}});
    };
    if select.is_empty() {
        return full;
    }
    let mut shown = store::select(&full, select);
    if let Some(o) = shown.as_object_mut()
        && !o.contains_key("id")
    {
        o.insert("id".into(), json!(id));
    }
    shown
}

enum Link {
    Next(Position),
    Delta(Position),
}

/// The page: `@odata.context` (with the `$select` of the request, as Learn `delta-query-users`
/// shows it), the link, the objects.
fn answer(r: &Req, coll: Collection, link: Link, value: Vec<Value>) -> Response {
    let name = coll.name();
    let frag = if r.q.select.is_empty() {
        name.to_string()
    } else {
        format!("{name}({})", columns(&r.q.select, &value).join(","))
    };
    let mut out = Map::new();
    out.insert("@odata.context".into(), json!(r.ctx(&frag)));
    let (key, url) = match link {
        Link::Next(p) => ("@odata.nextLink", format!("$skiptoken={}", p.encode())),
        Link::Delta(p) => ("@odata.deltaLink", format!("$deltatoken={}", p.encode())),
    };
    out.insert(key.into(), json!(format!("{}/{name}/delta?{url}", r.g)));
    out.insert("value".into(), Value::Array(value));
    json_resp(StatusCode::OK, &Value::Object(out))
}

/// The selected properties as the entity spells them (`$select=DisplayName` → `displayName`).
fn columns(select: &[String], value: &[Value]) -> Vec<String> {
    let sample = value
        .iter()
        .filter_map(Value::as_object)
        .find(|o| !o.contains_key("@removed"));
    select
        .iter()
        .map(|s| {
            sample
                .and_then(|o| o.keys().find(|k| k.eq_ignore_ascii_case(s)))
                .unwrap_or(s)
                .clone()
        })
        .collect()
}
