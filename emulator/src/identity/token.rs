//! The token endpoint, `/{tenant}/oauth2/v2.0/token` and v1 `/{tenant}/oauth2/token`: the
//! client-credentials grant here, the user grants in [`super::grants`]; the endpoint's CORS
//! preflight and its answer to a GET.
use super::client_auth::{Client, Refused, authenticate};
use super::{aadsts_error, login_headers, tenant_or_unknown};
use crate::request::{ReqCtx, by};
use crate::state::claims as mapped;
use crate::state::store;
use crate::state::views::GraphObject;
use crate::state::{ADMIN_OID, Shared, directory, now_secs, random_guid};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// A Graph token with the admin permissions, for tests.
pub fn admin_token(sh: &Shared, tenant: &str) -> String {
    let now = now_secs();
    let roles = [
        "Application.ReadWrite.All",
        "AppRoleAssignment.ReadWrite.All",
        "DelegatedPermissionGrant.ReadWrite.All",
        "Policy.Read.All",
        "Policy.ReadWrite.ApplicationConfiguration",
        "Group.ReadWrite.All",
        "User.ReadWrite.All",
    ];
    sh.signing.sign(&json!({
        "aud": "https://graph.microsoft.com", "iss": format!("https://sts.windows.net/{tenant}/"),
        "iat": now, "nbf": now, "exp": now + sh.token_lifetime_secs as i64,
        "app_displayname": "entra-emulator admin", "appid": ADMIN_OID, "appidacr": "1",
        "idp": format!("https://sts.windows.net/{tenant}/"), "idtyp": "app", "oid": ADMIN_OID, "sub": ADMIN_OID,
        "roles": roles, "tid": tenant, "uti": random_guid(), "ver": "1.0"
    }))
}

pub async fn token(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    Path(t): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let v1 = uri.path().ends_with("/oauth2/token");
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let tid = match tenant_or_unknown(&sh, &ctx, &t) {
        Ok(tid) => tid,
        Err(r) => return by(r, "", ""),
    };
    let (resp, caller) = token_inner(&sh, &ctx, &tid, &form, &headers, v1).await;
    by(resp, &tid, &caller)
}

/// `GET` on the token endpoint (AADSTS900561, D-ERR).
pub async fn wrong_verb(
    axum::Extension(ctx): axum::Extension<ReqCtx>,
    method: axum::http::Method,
) -> Response {
    let text =
        format!("The endpoint only accepts POST, OPTIONS requests. Received a {method} request.");
    super::err(&ctx, 400, "invalid_request", 900561, &text)
}

/// `OPTIONS` on the token endpoint: the CORS preflight a browser sends before MSAL.js's POST
/// (it adds non-simple headers such as `X-AnchorMailbox`, 2.1). Entra's exact answer is not
/// recorded; this one allows what the browser asks for.
pub async fn preflight(headers: HeaderMap) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert("Access-Control-Allow-Origin", HeaderValue::from_static("*"));
    h.insert(
        "Access-Control-Allow-Methods",
        HeaderValue::from_static("POST, OPTIONS"),
    );
    let asked = headers
        .get("access-control-request-headers")
        .cloned()
        .unwrap_or(HeaderValue::from_static("content-type"));
    h.insert("Access-Control-Allow-Headers", asked);
    h.insert("Access-Control-Max-Age", HeaderValue::from_static("86400"));
    r
}

/// The grant the form asks for: the user grants in [`super::grants`], client credentials here.
async fn token_inner(
    sh: &Shared,
    ctx: &ReqCtx,
    tid: &str,
    form: &HashMap<String, String>,
    headers: &HeaderMap,
    v1: bool,
) -> (Response, String) {
    let grant = form.get("grant_type").map(String::as_str).unwrap_or("");
    if grant.is_empty() {
        let text = "The request body must contain the following parameter: 'grant_type'.";
        let r = aadsts_error(
            ctx,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            text,
        );
        return (r, String::new());
    }
    if super::grants::is_user_grant(grant) {
        return super::grants::redeem(sh, ctx, tid, form, headers, v1, grant).await;
    }
    if grant != "client_credentials" {
        let text = format!("The app requested an unsupported grant type '{grant}'.");
        let r = aadsts_error(
            ctx,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &text,
        );
        return (r, String::new());
    }
    match client_credentials(sh, ctx, tid, form, headers, v1).await {
        Ok((r, client_id)) | Err((r, client_id)) => (r, client_id),
    }
}

/// The client-credentials grant: an authenticated client with a service principal here gets an
/// app token for one resource (`scope={resource}/.default`, v1 `resource=`).
async fn client_credentials(
    sh: &Shared,
    ctx: &ReqCtx,
    tid: &str,
    form: &HashMap<String, String>,
    headers: &HeaderMap,
    v1: bool,
) -> Result<(Response, String), Refused> {
    let Client {
        sp: client_sp,
        client_id,
        acr,
        ..
    } = authenticate(sh, ctx, tid, form, headers).await?;
    let bad = |status: StatusCode, err: &str, code: u32, text: &str| {
        (
            aadsts_error(ctx, status, err, code, text),
            client_id.clone(),
        )
    };
    let Some(acr) = acr else {
        return Err(bad(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    };
    // The client needs a service principal in this tenant.
    let Some(client_sp) = client_sp else {
        return Err(bad(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            7000229,
            &format!(
                "The client application {client_id} is missing service principal in the tenant {tid}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119"
            ),
        ));
    };
    let resource = requested_resource(form, v1)
        .map_err(|(err, code, text)| bad(StatusCode::BAD_REQUEST, err, code, &text))?;
    let app = AppCaller {
        client_id: &client_id,
        sp: &client_sp,
        acr,
    };
    let (token, exp) = app_token(sh, tid, &app, &resource)
        .map_err(|(err, code, text)| bad(StatusCode::BAD_REQUEST, err, code, &text))?;
    let lifetime = sh.token_lifetime_secs;
    let body = if v1 {
        json!({"token_type": "Bearer", "expires_in": lifetime.to_string(), "ext_expires_in": lifetime.to_string(),
               "expires_on": exp.to_string(), "not_before": (exp - lifetime as i64).to_string(), "resource": resource, "access_token": token})
    } else {
        json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token})
    };
    let mut r = (StatusCode::OK, axum::Json(body)).into_response();
    login_headers(&mut r);
    Ok((r, client_id))
}

/// An Entra error for the token request: (`error`, AADSTS code, text), all answered with 400.
type TokenErr = (&'static str, u32, String);

/// The resource a client-credentials request is for: v1's `resource`, else the one `/.default`
/// scope (MSAL Go and Java add `openid profile offline_access` to every request, client
/// credentials included — microsoft-authentication-library-for-go#72, #329; Entra ignores them
/// beside the one `/.default` scope, alone they are refused, #304).
fn requested_resource(form: &HashMap<String, String>, v1: bool) -> Result<String, TokenErr> {
    if v1 && form.contains_key("resource") {
        return Ok(form.get("resource").cloned().unwrap_or_default());
    }
    let scope = form.get("scope").cloned().unwrap_or_default();
    if scope.trim().is_empty() {
        return Err((
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.".into(),
        ));
    }
    let parts: Vec<&str> = scope
        .split_whitespace()
        .filter(|s| !matches!(*s, "openid" | "profile" | "offline_access"))
        .collect();
    if parts.len() != 1 || !parts[0].ends_with("/.default") {
        return Err((
            "invalid_scope",
            70011,
            format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    }
    Ok(parts[0].trim_end_matches("/.default").to_string())
}

/// The application a client-credentials token is for.
struct AppCaller<'a> {
    client_id: &'a str,
    sp: &'a Value,
    acr: &'static str,
}

/// An app token for `resource` (found by name among the tenant's visible service principals), with
/// the app roles the client holds on it; v1 or v2 as the resource asks
/// (`requestedAccessTokenVersion`). A resource requiring assignment refuses a client holding none.
fn app_token(
    sh: &Shared,
    tid: &str,
    app: &AppCaller,
    resource: &str,
) -> Result<(String, i64), TokenErr> {
    let now_ms = store::now_ms();
    let st = sh.store.lock().unwrap();
    let tenant = &st.tenants[tid];
    let Some(ri) = tenant
        .sp_idx_by_name(resource)
        .filter(|i| tenant.sps[*i].visible_from_ms <= now_ms)
    else {
        return Err((
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {tid}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        ));
    };
    let rsp = &tenant.sps[ri].body;
    let r_app_id = rsp.app_id().to_string();
    let csp_id = app.sp.id().to_string();
    let roles = directory::role_values(tenant, std::slice::from_ref(&csp_id), rsp);
    if rsp.assignment_required() && roles.is_empty() {
        return Err((
            "invalid_grant",
            501051,
            format!(
                "Application '{}'({}) is not assigned to a role for the application '{resource}'({}).",
                app.client_id,
                app.sp.display_name(),
                rsp.display_name()
            ),
        ));
    }
    let version = st
        .tenants
        .values()
        .find_map(|t| {
            t.app_idx_by_app_id(&r_app_id)
                .map(|i| t.apps[i].requested_token_version())
        })
        .flatten()
        .unwrap_or(1);
    let now = now_secs();
    let exp = now + sh.token_lifetime_secs as i64;
    let (client_id, acr) = (app.client_id, app.acr);
    let mut claims = if version == 2 {
        json!({"aud": r_app_id, "iss": format!("{}/{tid}/v2.0", sh.base_url), "iat": now, "nbf": now, "exp": exp,
               "azp": client_id, "azpacr": acr, "idtyp": "app", "oid": csp_id, "sub": csp_id, "tid": tid,
               "rh": "0.emulator.", "uti": random_guid(), "ver": "2.0"})
    } else {
        let aud = if r_app_id == store::GRAPH_APP_ID {
            "https://graph.microsoft.com".to_string()
        } else {
            resource.to_string()
        };
        json!({"aud": aud, "iss": format!("https://sts.windows.net/{tid}/"), "iat": now, "nbf": now, "exp": exp,
               "aio": "emulator", "app_displayname": app.sp["displayName"], "appid": client_id, "appidacr": acr,
               "idp": format!("https://sts.windows.net/{tid}/"), "idtyp": "app", "oid": csp_id, "sub": csp_id,
               "rh": "0.emulator.", "tid": tid, "uti": random_guid(), "ver": "1.0"})
    };
    if !roles.is_empty() {
        claims["roles"] = json!(roles);
    }
    // The policy on the resource's service principal shapes app tokens too (`state::claims`).
    let who = mapped::Parties {
        user: None,
        client_sp: Some(app.sp),
        resource_sp: Some(rsp),
        audience_sp: rsp,
    };
    let aud = claims["aud"].as_str().unwrap_or("").to_string();
    match mapped::for_token(tenant, &who, &aud) {
        Ok(Some(m)) => mapped::apply(&mut claims, &m),
        Ok(None) => {}
        Err(r) => {
            let (code, text) = super::user_tokens::refusal(r);
            return Err(("invalid_request", code, text.to_string()));
        }
    }
    Ok((sh.signing.sign(&claims), exp))
}
