//! The rest of what the discovery documents advertise for signed-in users: `end_session_endpoint`
//! (`/{tenant}/oauth2/v2.0/logout`, v1 `/oauth2/logout`) ends the browser session; the OIDC
//! `userinfo_endpoint` (`/oidc/userinfo`) answers for a user's Microsoft Graph access token.
use super::auth_request;
use super::authorize::{self, SESSION_COOKIE};
use super::{pages, resolve_tenant};
use crate::crypto::Jwt;
use crate::request::by;
use crate::state::{Shared, directory};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

/// Ends the session; goes to `post_logout_redirect_uri` when it is a redirect URI registered in
/// the tenant (Entra checks it against the app's registration), else shows a signed-out page.
pub async fn logout(
    State(sh): State<Arc<Shared>>,
    Path(seg): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let p: Vec<(String, String)> =
        serde_urlencoded::from_str(&q.unwrap_or_default()).unwrap_or_default();
    let tid = resolve_tenant(&sh.store.lock().unwrap(), &seg).unwrap_or_default();
    if let Some(h) = authorize::session_handle(&headers) {
        sh.flows.lock().unwrap().sessions.remove(&h);
    }
    let target = p
        .iter()
        .find(|(k, _)| k == "post_logout_redirect_uri")
        .map(|x| x.1.clone());
    let registered = target.as_deref().is_some_and(|t| {
        let st = sh.store.lock().unwrap();
        st.tenants.get(&tid).is_some_and(|tn| {
            tn.apps
                .iter()
                .any(|a| auth_request::match_redirect(&a.body, t).is_some())
        })
    });
    let mut r = match target.filter(|_| registered) {
        Some(t) => {
            let mut r = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(&t) {
                r.headers_mut().insert("Location", v);
            }
            r
        }
        None => pages::signed_out(),
    };
    let expired = format!(
        "{SESSION_COOKIE}=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; secure; HttpOnly; SameSite=None"
    );
    r.headers_mut()
        .append("Set-Cookie", HeaderValue::from_str(&expired).unwrap());
    by(r, &tid, "")
}

/// `GET /oidc/userinfo` with a user's Graph token: `sub`, `name`, `email` (OIDC Core 5.3).
pub async fn userinfo(State(sh): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let jwt = Jwt::parse(token)
        .ok()
        .filter(|j| j.verify(&sh.signing.public).is_ok());
    let claims = jwt
        .map(|j| j.claims)
        .filter(|c| c["aud"] == json!(super::consent::GRAPH_RESOURCE) && c["scp"].is_string());
    let found = claims.and_then(|c| {
        let st = sh.store.lock().unwrap();
        let t = st.tenants.get(c["tid"].as_str()?)?;
        let u = directory::user_by_id(t, c["oid"].as_str()?)?;
        Some(
            json!({"sub": c["sub"], "name": u.body["displayName"], "family_name": u.body["surname"],
            "given_name": u.body["givenName"], "email": u.body["userPrincipalName"]}),
        )
    });
    let r = match found {
        Some(v) => axum::Json(v).into_response(),
        None => {
            let mut r = StatusCode::UNAUTHORIZED.into_response();
            r.headers_mut().insert(
                "WWW-Authenticate",
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            r
        }
    };
    by(r, "", "")
}
