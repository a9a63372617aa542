//! The tokens a signed-in user's grant yields: delegated access token (v1 or v2 as the resource
//! asks), ID token, refresh token, `client_info`. Facts: interactive-flows.md sections 2 and 3.
use super::client_auth::Client;
use super::consent;
use super::err;
use crate::request::ReqCtx;
use crate::state::claims::{self, Mapped, Parties, Refused};
use crate::state::directory;
use crate::state::sign_in::{self as flows, Grant, Platform, Refresh};
use crate::state::store::{self, Tenant, s};
use crate::state::views::GraphObject;
use crate::state::{Shared, now_secs, random_guid};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;

fn refused(ctx: &ReqCtx, r: Refused) -> Response {
    let (code, text) = refusal(r);
    err(ctx, 400, "invalid_request", code, text)
}

/// Pairwise `sub`: stable per user and app, different between apps (D-ATC).
fn pairwise(user_id: &str, app_id: &str) -> String {
    let d = crate::crypto::sha256(format!("{user_id}|{app_id}").as_bytes());
    crate::crypto::b64url(&d)[..43].to_string()
}

/// `client_info`: base64url of `{"uid","utid"}` (2.2, recorded).
pub fn client_info(g: &Grant) -> String {
    crate::crypto::b64url(
        json!({"uid": g.user_id, "utid": g.tenant})
            .to_string()
            .as_bytes(),
    )
}

fn user_of(sh: &Shared, g: &Grant) -> Option<directory::UserRec> {
    let st = sh.store.lock().unwrap();
    directory::user_by_id(st.tenants.get(&g.tenant)?, &g.user_id).cloned()
}

/// An ID token for the client: version per endpoint used (D-IDT), `nonce` when sent, `c_hash`
/// only when issued with a code from /authorize.
pub fn id_token(sh: &Shared, g: &Grant, code: Option<&str>) -> String {
    let u = user_of(sh, g).map(|u| u.body).unwrap_or_default();
    let now = now_secs();
    let tid = &g.tenant;
    let mut c = json!({"aud": g.client_id, "iat": now, "nbf": now, "exp": now + sh.token_lifetime_secs as i64,
        "aio": "emulator", "name": u["displayName"], "oid": g.user_id, "rh": "0.emulator.",
        "sub": pairwise(&g.user_id, &g.client_id), "tid": tid, "uti": random_guid()});
    if g.v1 {
        c["iss"] = json!(format!("https://sts.windows.net/{tid}/"));
        c["amr"] = json!(["pwd"]);
        c["unique_name"] = u["userPrincipalName"].clone();
        c["upn"] = u["userPrincipalName"].clone();
        c["ver"] = json!("1.0");
    } else {
        c["iss"] = json!(format!("{}/{tid}/v2.0", sh.base_url));
        c["preferred_username"] = u["userPrincipalName"].clone();
        c["ver"] = json!("2.0");
    }
    if let Some(n) = &g.nonce {
        c["nonce"] = json!(n);
    }
    if let Some(code) = code {
        let h = crate::crypto::sha256(code.as_bytes());
        c["c_hash"] = json!(crate::crypto::b64url(&h[..16]));
    }
    // Refused mappings were answered at the token endpoint (`issue`); a hybrid ID token from
    // /authorize gets no mapped claims then.
    if let Ok(Some(m)) = id_token_mapping(sh, g) {
        claims::apply(&mut c, &m);
    }
    sh.signing.sign(&c)
}

/// The mapping of a token whose audience is `audience_sp` and `aud` claim `aud`, for this grant's
/// user, client and resource (`state::claims`).
fn mapping(
    t: &Tenant,
    g: &Grant,
    audience_sp: &Value,
    aud: &str,
) -> Result<Option<Mapped>, Refused> {
    let who = Parties {
        user: directory::user_by_id(t, &g.user_id),
        client_sp: t.sp_idx_by_app_id(&g.client_id).map(|i| &t.sps[i].body),
        resource_sp: t.sp_idx(&g.resource_sp).map(|i| &t.sps[i].body),
        audience_sp,
    };
    claims::for_token(t, &who, aud)
}

/// The ID token's audience is the client: the policy on the client's service principal shapes it
/// (AHDS `set-fhir-user-mapping`; MicrosoftDocs/azure-docs#45285 for the refusal).
fn id_token_mapping(sh: &Shared, g: &Grant) -> Result<Option<Mapped>, Refused> {
    let st = sh.store.lock().unwrap();
    let Some(t) = st.tenants.get(&g.tenant) else {
        return Ok(None);
    };
    let Some(i) = t.sp_idx_by_app_id(&g.client_id) else {
        return Ok(None);
    };
    mapping(t, g, &t.sps[i].body, &g.client_id)
}

/// The token endpoint's answer to a refused mapping: 400 `invalid_request` with AADSTS50146 (text
/// as on the wire in 2025, sunilbandla/vue-msal-sample#8; the error-code table's is shorter) or
/// AADSTS501461 (text as on the wire, Azure-Samples/active-directory-aspnetcore-webapp-openidconnect-v2#728;
/// Entra `jwt-claims-customization` quotes it without the comma).
pub(crate) fn refusal(r: Refused) -> (u32, &'static str) {
    match r {
        Refused::MissingSigningKey => (
            50146,
            "This application is required to be configured with an application-specific signing key. It is either not configured with one, or the key has expired or is not yet valid.",
        ),
        Refused::AudienceNotVerified => (
            501461,
            "AcceptMappedClaims is only supported for a token audience matching the application GUID or an audience within the tenant's verified domains. Either change the resource identifier, or use an application-specific signing key.",
        ),
    }
}

/// Why a delegated access token is not issued.
enum NotIssued {
    NoUser,
    Mapping(Refused),
}

/// A delegated access token: v1 or v2 as the *resource* asks (`requestedAccessTokenVersion`, D-AT),
/// with the claims the policy on the resource's service principal maps (Graph
/// `how-to-claims-customization`).
fn access_token(sh: &Shared, g: &Grant, acr: &str) -> Result<(String, String), NotIssued> {
    let st = sh.store.lock().unwrap();
    let t = st.tenants.get(&g.tenant).ok_or(NotIssued::NoUser)?;
    let rsp = t
        .sps
        .iter()
        .find(|x| x.body.id() == g.resource_sp)
        .ok_or(NotIssued::NoUser)?
        .body
        .clone();
    let u = directory::user_by_id(t, &g.user_id)
        .ok_or(NotIssued::NoUser)?
        .body
        .clone();
    let roles = directory::user_roles(t, &g.user_id, &rsp);
    let r_app = s(&rsp, "appId");
    let version = st
        .tenants
        .values()
        .find_map(|t| {
            t.app_idx_by_app_id(&r_app)
                .map(|i| t.apps[i].requested_token_version())
        })
        .flatten()
        .unwrap_or(1);
    drop(st);
    let now = now_secs();
    let tid = &g.tenant;
    let resource_uri = g
        .requested
        .first()
        .and_then(|r| r.rsplit_once('/'))
        .map(|x| x.0.to_string())
        .unwrap_or(r_app.clone());
    let mut c = json!({"iat": now, "nbf": now, "exp": now + sh.token_lifetime_secs as i64, "aio": "emulator",
        "name": u["displayName"], "oid": g.user_id, "rh": "0.emulator.", "scp": g.scopes.join(" "),
        "sub": pairwise(&g.user_id, &r_app), "tid": tid, "uti": random_guid()});
    if version == 2 {
        c["aud"] = json!(r_app);
        c["iss"] = json!(format!("{}/{tid}/v2.0", sh.base_url));
        c["azp"] = json!(g.client_id);
        c["azpacr"] = json!(acr);
        c["preferred_username"] = u["userPrincipalName"].clone();
        c["ver"] = json!("2.0");
    } else {
        // v1 `aud` is the resource URI the client used (D-ATC); Graph's is its well-known URI.
        c["aud"] = json!(if r_app == store::GRAPH_APP_ID {
            consent::GRAPH_RESOURCE.to_string()
        } else {
            resource_uri.trim_end_matches('/').to_string()
        });
        c["iss"] = json!(format!("https://sts.windows.net/{tid}/"));
        c["idp"] = c["iss"].clone();
        c["acr"] = json!("1");
        c["amr"] = json!(["pwd"]);
        c["appid"] = json!(g.client_id);
        c["appidacr"] = json!(acr);
        c["unique_name"] = u["userPrincipalName"].clone();
        c["upn"] = u["userPrincipalName"].clone();
        c["ver"] = json!("1.0");
    }
    if !roles.is_empty() {
        c["roles"] = json!(roles);
    }
    {
        let st = sh.store.lock().unwrap();
        if let Some(t) = st.tenants.get(&g.tenant) {
            let aud = c["aud"].as_str().unwrap_or("").to_string();
            if let Some(m) = mapping(t, g, &rsp, &aud).map_err(NotIssued::Mapping)? {
                claims::apply(&mut c, &m);
            }
        }
    }
    Ok((sh.signing.sign(&c), resource_uri))
}

/// One token request redeeming a user's grant (a code, a refresh token, a device code).
#[derive(Clone, Copy)]
pub(super) struct Call<'a> {
    pub sh: &'a Shared,
    pub ctx: &'a ReqCtx,
    pub tid: &'a str,
    pub form: &'a HashMap<String, String>,
    pub c: &'a Client,
    pub origin: Option<&'a str>,
    pub v1: bool,
}

/// The token response: access token, refresh token (v2: only with `offline_access`, D-SC), ID token
/// (with `openid`), `client_info` when asked (MSAL sends `client_info=1`).
pub(super) fn issue(call: Call, g: &Grant, platform: Platform, spa_issued: i64) -> Response {
    let Call { sh, ctx, form, .. } = call;
    let acr = call.c.acr.unwrap_or("0");
    // The ID token follows the endpoint version the flow started on or redeems at (D-IDT).
    let v1 = call.v1 || g.v1;
    let (at, resource) = match access_token(sh, g, acr) {
        Ok(x) => x,
        Err(NotIssued::NoUser) => {
            return err(
                ctx,
                400,
                "invalid_grant",
                50034,
                "The user account does not exist in the directory.",
            );
        }
        Err(NotIssued::Mapping(r)) => return refused(ctx, r),
    };
    let wants_id_token = v1 || g.oidc.iter().any(|x| x == "openid");
    if wants_id_token && let Err(r) = id_token_mapping(sh, g) {
        return refused(ctx, r);
    }
    let life = sh.token_lifetime_secs;
    let mut body = if v1 {
        let exp = now_secs() + life as i64;
        json!({"token_type": "Bearer", "scope": g.scopes.join(" "), "expires_in": life.to_string(), "ext_expires_in": life.to_string(),
               "expires_on": exp.to_string(), "not_before": (exp - life as i64).to_string(), "resource": resource, "access_token": at})
    } else {
        // `scope` lists the resource's scopes only, not openid/profile/offline_access (recorded, 2.2).
        json!({"token_type": "Bearer", "scope": g.requested.join(" "), "expires_in": life, "ext_expires_in": life, "access_token": at})
    };
    if v1 || g.oidc.iter().any(|x| x == "offline_access") {
        let rt = flows::handle();
        let expires = if platform == Platform::Spa {
            spa_issued + flows::SPA_RT_LIFETIME_SECS
        } else {
            now_secs() + flows::RT_LIFETIME_SECS
        };
        let mut f = sh.flows.lock().unwrap();
        f.sweep();
        f.refresh.insert(
            rt.clone(),
            Refresh {
                grant: g.clone(),
                platform,
                expires,
                spa_issued,
            },
        );
        body["refresh_token"] = json!(rt);
    }
    if wants_id_token {
        body["id_token"] = json!(id_token(sh, g, None));
    }
    if form.get("client_info").map(String::as_str) == Some("1") {
        body["client_info"] = json!(client_info(g));
    }
    let mut r = (StatusCode::OK, axum::Json(body)).into_response();
    super::login_headers(&mut r);
    r
}
