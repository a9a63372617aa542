//! The state tokens of a delta query (`$skiptoken` in `@odata.nextLink`, `$deltatoken` in
//! `@odata.deltaLink`) and the position a request asks for. "The state tokens encode and include
//! query parameters (such as `$select`) specified in the initial delta query request" and are
//! opaque to the client (Learn `delta-query-overview`, "State tokens"); here a token is base64url of
//! `delta:` and the position as JSON.
use super::errors::{GErr, bad, err};
use super::query::{DELTA_TOKEN_PREFIX, Expr, Lit, parse_filter};
use super::req::Req;
use crate::crypto;
use crate::state::changes::{Collection, Gone};
use crate::state::store::{Tenant, now_ms};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// Where a round of change tracking stands.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Position {
    #[serde(rename = "c")]
    pub coll: Collection,
    pub tid: String,
    /// `$select` of the initial request (empty: every property).
    #[serde(rename = "sel", default, skip_serializing_if = "Vec::is_empty")]
    pub select: Vec<String>,
    /// The ids of `$filter=id eq '…' or …` (empty: every object).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    /// Changes after this position; None: the initial round (the objects as they are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// The last position this round covers, fixed by its first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upto: Option<u64>,
    /// The last id of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// When the deltaLink was issued (unix ms).
    #[serde(rename = "iat")]
    pub issued_ms: i64,
    /// Makes every token new: "If no changes have occurred, a different `deltatoken` is returned
    /// with no results" (Learn `delta-query-users`).
    #[serde(rename = "r", default)]
    pub nonce: u32,
}

/// What a delta request asks for.
pub enum Ask {
    /// A page of a round (initial or of changes).
    Page(Position),
    /// `$deltatoken=latest`: only a deltaLink from now ("sync from now", Learn
    /// `delta-query-overview`; documented for "Microsoft Entra ID resources such as users and
    /// groups", [INF] for applications and service principals).
    Latest(Position),
}

impl Position {
    /// The token text of this position.
    pub fn encode(&self) -> String {
        let json = serde_json::to_string(self).expect("positions serialise");
        crypto::b64url(format!("{DELTA_TOKEN_PREFIX}{json}").as_bytes())
    }

    fn decode(token: &str) -> Option<Position> {
        let text = String::from_utf8(crypto::b64_any(token)?).ok()?;
        serde_json::from_str(text.strip_prefix(DELTA_TOKEN_PREFIX)?).ok()
    }
}

/// The position of a delta request on `coll`, its tokens checked against the tenant's change log.
pub fn ask(r: &Req, t: &Tenant, coll: Collection, lifetime_secs: u64) -> Result<Ask, GErr> {
    let fresh = || -> Result<Position, GErr> {
        Ok(Position {
            coll,
            tid: t.id.clone(),
            select: r.q.select.clone(),
            ids: filtered_ids(r.q.filter.as_deref())?,
            since: None,
            upto: None,
            after: None,
            issued_ms: now_ms(),
            nonce: rand::random(),
        })
    };
    if let Some(token) = &r.q.delta_skiptoken {
        // "Delta queries with both `$select` and `$skiptoken` aren't supported" (Learn
        // `delta-query-overview`); [INF] refused as Graph refuses other query options it lacks.
        if !r.q.select.is_empty() {
            return Err(bad(
                "Delta queries with both $select and $skiptoken aren't supported.",
            ));
        }
        let pos = own(Position::decode(token), t, coll, "$skiptoken")?;
        if pos.upto.is_none() || pos.after.is_none() {
            return Err(bad("Invalid $skiptoken"));
        }
        if let Some(since) = pos.since {
            usable(r, t, &pos, since)?;
        }
        return Ok(Ask::Page(pos));
    }
    match r.q.deltatoken.as_deref() {
        None | Some("") => Ok(Ask::Page(fresh()?)),
        Some(latest) if latest.eq_ignore_ascii_case("latest") => Ok(Ask::Latest(fresh()?)),
        Some(token) => {
            let mut pos = own(Position::decode(token), t, coll, "$deltatoken")?;
            let Some(since) = pos.since.filter(|_| pos.upto.is_none()) else {
                return Err(bad("Invalid $deltatoken"));
            };
            if now_ms() - pos.issued_ms > (lifetime_secs as i64).saturating_mul(1000) {
                return Err(expired());
            }
            usable(r, t, &pos, since)?;
            // "`$select` and `$deltaLink` query parameters are supported for some Microsoft Entra
            // resources so that customers can change the properties they want to track for an
            // existing `@odata.deltaLink`" (Learn `delta-query-overview`; [INF] these are some).
            if !r.q.select.is_empty() {
                pos.select = r.q.select.clone();
            }
            Ok(Ask::Page(pos))
        }
    }
}

/// A decoded token of this tenant and collection. A token that does not decode, or is another
/// collection's or tenant's: [INF] 400 `Request_BadRequest`, as a list's bad `$skiptoken` (Graph's
/// answer to a mangled directory delta token is not documented).
fn own(pos: Option<Position>, t: &Tenant, coll: Collection, param: &str) -> Result<Position, GErr> {
    match pos {
        Some(p) if p.coll == coll && p.tid == t.id => Ok(p),
        _ => Err(bad(format!("Invalid {param}"))),
    }
}

/// The changes after `since` are still in the log; else the expiry (or the reset) error.
fn usable(r: &Req, t: &Tenant, pos: &Position, since: u64) -> Result<(), GErr> {
    match t.changes.check(since) {
        Ok(()) => Ok(()),
        Err(Gone::Expired) => Err(expired()),
        Err(Gone::Reset) => Err(reset(r, pos)),
    }
}

/// An expired token: "you will receive a BadRequest response with the error code
/// "syncStateNotFound" and the following error message: "The sync state generation is not found.
/// The delta token is expired and data must be synchronized again."" (Microsoft 365 Developer Blog,
/// "Duration of change tracking tokens for identity and education resources", 2020-07-03, which
/// lists applications; Learn `delta-query-overview`: "a 40X-series error with error codes such as
/// `syncStateNotFound`").
pub fn expired() -> GErr {
    err(
        StatusCode::BAD_REQUEST,
        "syncStateNotFound",
        "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
    )
}

/// Graph's synchronization reset: "a response code of `410 Gone` and a **Location** header
/// containing a request URL with an empty `$deltatoken` (same as the initial query)" (Learn
/// `delta-query-overview`). Its body is not documented: [INF] the error table's `resyncRequired`
/// (Learn `errors`: "The delta token is no longer valid, and the app must reset the sync state.").
fn reset(r: &Req, pos: &Position) -> GErr {
    let mut e = err(
        StatusCode::GONE,
        "resyncRequired",
        "The delta token is no longer valid, and the app must reset the sync state.",
    );
    let mut query = vec![];
    if !pos.select.is_empty() {
        query.push(format!("$select={}", pos.select.join(",")));
    }
    if !pos.ids.is_empty() {
        let ors: Vec<String> = pos.ids.iter().map(|i| format!("id eq '{i}'")).collect();
        query.push(format!("$filter={}", enc(&ors.join(" or "))));
    }
    query.push("$deltatoken=".into());
    e.location = Some(format!(
        "{}/{}/delta?{}",
        r.g,
        pos.coll.name(),
        query.join("&")
    ));
    e
}

/// The ids of a delta `$filter`: "The only supported `$filter` expression is for tracking changes
/// for specific resources, by their ID: `$filter=id+eq+{value}` or `$filter=id+eq+{value1}+or+id+
/// eq+{value2}`" (Learn `application-delta`, `serviceprincipal-delta`). Anything else: [INF] the
/// list's 400 `Request_UnsupportedQuery`.
fn filtered_ids(filter: Option<&str>) -> Result<Vec<String>, GErr> {
    let Some(f) = filter else { return Ok(vec![]) };
    let unsupported = || {
        err(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Unsupported query filter clause specified for a delta query: only id eq '{value}', joined by or.",
        )
    };
    let e = parse_filter(f).map_err(|m| bad(format!("Invalid filter clause: {m}")))?;
    let mut ids = vec![];
    let mut stack = vec![&e];
    while let Some(x) = stack.pop() {
        match x {
            Expr::Or(a, b) => stack.extend([b.as_ref(), a.as_ref()]),
            Expr::Cmp(p, op, Lit::Str(v)) if p.eq_ignore_ascii_case("id") && op == "eq" => {
                ids.push(v.clone())
            }
            _ => return Err(unsupported()),
        }
    }
    Ok(ids)
}

pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_only_id_filters_pass() {
        let p = Position {
            coll: Collection::ServicePrincipals,
            tid: "t".into(),
            select: vec!["appId".into()],
            ids: vec![],
            since: Some(3),
            upto: None,
            after: None,
            issued_ms: 1,
            nonce: 7,
        };
        assert_eq!(Position::decode(&p.encode()), Some(p));
        assert_eq!(Position::decode("c2tpcDoxMDA"), None, "a list's skip:100");
        assert_eq!(
            filtered_ids(Some("id eq 'a' or id eq 'b'")).ok(),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert!(filtered_ids(Some("displayName eq 'a'")).is_err());
        assert!(filtered_ids(Some("id eq 'a' and id eq 'b'")).is_err());
    }
}
