//! Token-endpoint grants that act for a signed-in user — `authorization_code`, `refresh_token` and
//! the device code — and the delegated access, ID and refresh tokens they return.
//! Facts: interactive-flows.md sections 1.6, 2 and 3.
// Entra's error answers are the `Err` values here, as in graph/.
#![allow(clippy::result_large_err)]
use crate::consent;
use crate::directory;
use crate::flows::{self, Grant, Platform, Refresh};
use crate::login::{Client, aadsts_error, authenticate};
use crate::server::{ReqCtx, Shared, now_secs, random_guid};
use crate::store::{self, s};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;

pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Entra also takes the short `device_code`, which MSAL.js (msal-node's acquireTokenByDeviceCode)
/// sends (its `GrantType.DEVICE_CODE_GRANT`).
pub const DEVICE_CODE_GRANT_SHORT: &str = "device_code";

pub fn is_user_grant(g: &str) -> bool {
    matches!(
        g,
        "authorization_code" | "refresh_token" | DEVICE_CODE_GRANT | DEVICE_CODE_GRANT_SHORT
    )
}

type Out = (Response, String);
type Form = HashMap<String, String>;

fn err(ctx: &ReqCtx, status: u16, error: &str, code: u32, text: &str) -> Response {
    aadsts_error(
        ctx,
        StatusCode::from_u16(status).unwrap(),
        error,
        code,
        text,
    )
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
    sh.signing.sign(&c)
}

/// A delegated access token: v1 or v2 as the *resource* asks (`requestedAccessTokenVersion`, D-AT).
fn access_token(sh: &Shared, g: &Grant, acr: &str) -> Option<(String, String)> {
    let st = sh.store.lock().unwrap();
    let t = st.tenants.get(&g.tenant)?;
    let rsp = t
        .sps
        .iter()
        .find(|x| s(&x.body, "id") == g.resource_sp)?
        .body
        .clone();
    let u = directory::user_by_id(t, &g.user_id)?.body.clone();
    let roles = directory::user_roles(t, &g.user_id, &rsp);
    let r_app = s(&rsp, "appId");
    let version = st
        .tenants
        .values()
        .find_map(|t| {
            t.app_idx_by_app_id(&r_app)
                .map(|i| t.apps[i].body["api"]["requestedAccessTokenVersion"].as_i64())
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
    Some((sh.signing.sign(&c), resource_uri))
}

/// The token response: access token, refresh token (v2: only with `offline_access`, D-SC), ID token
/// (with `openid`), `client_info` when asked (MSAL sends `client_info=1`).
fn issue(call: Call, g: &Grant, platform: Platform, spa_issued: i64) -> Response {
    let Call { sh, ctx, form, .. } = call;
    let acr = call.c.acr.unwrap_or("0");
    // The ID token follows the endpoint version the flow started on or redeems at (D-IDT).
    let v1 = call.v1 || g.v1;
    let Some((at, resource)) = access_token(sh, g, acr) else {
        return err(
            ctx,
            400,
            "invalid_grant",
            50034,
            "The user account does not exist in the directory.",
        );
    };
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
    if v1 || g.oidc.iter().any(|x| x == "openid") {
        body["id_token"] = json!(id_token(sh, g, None));
    }
    if form.get("client_info").map(String::as_str) == Some("1") {
        body["client_info"] = json!(client_info(g));
    }
    let mut r = (StatusCode::OK, axum::Json(body)).into_response();
    crate::login::login_headers(&mut r);
    r
}

/// Who may redeem what was issued for a platform (D-AC, 2.5): a web redirect needs a client
/// credential; spa and mobile/desktop redirects make the client public (no credential allowed);
/// a spa code is redeemable only cross-origin, and only with PKCE.
fn platform_rules(
    ctx: &ReqCtx,
    c: &Client,
    platform: Platform,
    origin: Option<&str>,
    pkce_used: bool,
) -> Result<(), Response> {
    if let Some(o) = origin
        && platform != Platform::Spa
    {
        return Err(err(
            ctx,
            400,
            "invalid_request",
            9002326,
            &format!(
                "Cross-origin token redemption is permitted only for the 'Single-Page Application' client-type. Request origin: '{o}'."
            ),
        ));
    }
    if platform == Platform::Spa && origin.is_none() {
        return Err(err(
            ctx,
            400,
            "invalid_request",
            9002327,
            "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.",
        ));
    }
    if platform == Platform::Spa && !pkce_used {
        return Err(err(
            ctx,
            400,
            "invalid_request",
            9002325,
            "Proof Key for Code Exchange is required for cross-origin authorization code redemption.",
        ));
    }
    match (platform, c.acr) {
        (Platform::Web, None) => Err(err(
            ctx,
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
        (Platform::Spa | Platform::PublicClient, Some(_)) => Err(err(
            ctx,
            401,
            "invalid_client",
            700025,
            "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        )),
        _ => Ok(()),
    }
}

/// RFC 7636: S256 is base64url(SHA-256(verifier)); plain compares as is.
fn pkce_ok(challenge: &str, method: &str, verifier: &str) -> bool {
    if method == "S256" {
        crate::crypto::b64url(&crate::crypto::sha256(verifier.as_bytes())) == challenge
    } else {
        verifier == challenge
    }
}

/// One token request, as the grants see it.
#[derive(Clone, Copy)]
struct Call<'a> {
    sh: &'a Shared,
    ctx: &'a ReqCtx,
    tid: &'a str,
    form: &'a Form,
    c: &'a Client,
    origin: Option<&'a str>,
    v1: bool,
}

/// Entry from the token endpoint for the grants above.
pub async fn redeem(
    sh: &Shared,
    ctx: &ReqCtx,
    tid: &str,
    form: &Form,
    headers: &HeaderMap,
    v1: bool,
    grant: &str,
) -> Out {
    let client = match authenticate(sh, ctx, tid, form, headers).await {
        Ok(c) => c,
        Err(e) => return e,
    };
    let origin = headers.get("origin").and_then(|v| v.to_str().ok());
    let cid = client.client_id.clone();
    let r = match grant {
        "authorization_code" => by_code(Call {
            sh,
            ctx,
            tid,
            form,
            c: &client,
            origin,
            v1,
        }),
        "refresh_token" => by_refresh(Call {
            sh,
            ctx,
            tid,
            form,
            c: &client,
            origin,
            v1,
        }),
        _ => by_device_code(Call {
            sh,
            ctx,
            tid,
            form,
            c: &client,
            origin,
            v1,
        }),
    };
    (r.unwrap_or_else(|e| e), cid)
}

/// Makes a response to a SPA readable cross-origin (errors after the origin checks too). Entra's
/// exact CORS headers on /token are not recorded (2.5); `*` is what its metadata endpoints send.
fn cors(mut r: Response) -> Response {
    r.headers_mut()
        .insert("Access-Control-Allow-Origin", HeaderValue::from_static("*"));
    r
}

/// A platform-rule error for a cross-origin request is readable by the page that sent it: msal-browser
/// reports Entra's `ServerError: invalid_request: 9002326 … AADSTS9002326` from the response body
/// (Azure-Samples/ms-identity-javascript-angular-tutorial#37), so Entra's answer carries CORS headers.
fn cross_origin(r: Response, origin: Option<&str>) -> Response {
    if origin.is_some() { cors(r) } else { r }
}

fn need<'a>(ctx: &ReqCtx, form: &'a Form, name: &str) -> Result<&'a str, Response> {
    form.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            err(
                ctx,
                400,
                "invalid_request",
                900144,
                &format!("The request body must contain the following parameter: '{name}'."),
            )
        })
}

fn malformed(ctx: &ReqCtx) -> Response {
    // MSAL's fixture for an unknown code or token: invalid_grant AADSTS9002313 (1.7).
    err(
        ctx,
        400,
        "invalid_grant",
        9002313,
        "Invalid request. Request is malformed or invalid.",
    )
}

fn by_code(call: Call) -> Result<Response, Response> {
    let Call {
        sh,
        ctx,
        tid,
        form,
        c,
        origin,
        ..
    } = call;
    let code = need(ctx, form, "code")?;
    let redirect = need(ctx, form, "redirect_uri")?;
    let found = sh.flows.lock().unwrap().codes.get(code).cloned();
    let Some(k) = found.filter(|k| k.grant.client_id == c.client_id) else {
        return Err(malformed(ctx));
    };
    platform_rules(ctx, c, k.platform, origin, k.pkce.is_some())
        .map_err(|r| cross_origin(r, origin))?;
    let spa = |r: Response| {
        if k.platform == Platform::Spa {
            cors(r)
        } else {
            r
        }
    };
    if k.grant.tenant != tid {
        return Err(spa(err(
            ctx,
            400,
            "invalid_grant",
            700005,
            "Provided Authorization Code is intended to use against other tenant, thus rejected.",
        )));
    }
    if k.redeemed {
        return Err(spa(err(
            ctx,
            400,
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        )));
    }
    if now_secs() - k.issued > flows::CODE_LIFETIME_SECS {
        return Err(spa(err(
            ctx,
            400,
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        )));
    }
    if redirect != k.redirect_uri {
        // The exact code Entra uses here is not recorded; AADSTS50011 names the mismatch (D-ERR InvalidReplyTo).
        return Err(spa(err(
            ctx,
            400,
            "invalid_grant",
            50011,
            &format!(
                "The redirect URI '{redirect}' specified in the request does not match the redirect URI used to request the authorization code for the application '{}'.",
                c.client_id
            ),
        )));
    }
    if let Some((ch, method)) = &k.pkce {
        match form.get("code_verifier") {
            // Which code Entra gives for a missing verifier is not verified (1.6); both are seen in the wild.
            None => {
                return Err(spa(err(
                    ctx,
                    400,
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                )));
            }
            Some(v) if !pkce_ok(ch, method, v) => {
                return Err(spa(err(
                    ctx,
                    400,
                    "invalid_grant",
                    50148,
                    "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.",
                )));
            }
            _ => {}
        }
    }
    if let Some(x) = sh.flows.lock().unwrap().codes.get_mut(code) {
        x.redeemed = true;
    }
    Ok(spa(issue(call, &k.grant, k.platform, now_secs())))
}

fn by_refresh(call: Call) -> Result<Response, Response> {
    let Call {
        sh,
        ctx,
        tid,
        form,
        c,
        origin,
        v1,
    } = call;
    let rt = need(ctx, form, "refresh_token")?;
    let found = sh.flows.lock().unwrap().refresh.get(rt).cloned();
    let Some(old) = found.filter(|x| x.grant.client_id == c.client_id && x.grant.tenant == tid)
    else {
        return Err(malformed(ctx));
    };
    platform_rules(ctx, c, old.platform, origin, true).map_err(|r| cross_origin(r, origin))?;
    let spa = |r: Response| {
        if old.platform == Platform::Spa {
            cors(r)
        } else {
            r
        }
    };
    if now_secs() > old.expires {
        if old.platform == Platform::Spa {
            let issued = chrono::DateTime::from_timestamp(old.spa_issued, 0)
                .map(|d| d.format("%m/%d/%Y %H:%M:%S").to_string())
                .unwrap_or_default();
            return Err(spa(err(
                ctx,
                400,
                "invalid_grant",
                700084,
                &format!(
                    "The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00, which cannot be extended. It is now expired and a new sign in request must be sent by the SPA to the sign in page. The token was issued on {issued}."
                ),
            )));
        }
        return Err(err(
            ctx,
            400,
            "invalid_grant",
            700082,
            "The refresh token has expired due to inactivity.",
        ));
    }
    let mut g = old.grant.clone();
    // A refresh token is good for every permission already consented (D-AC 2.1): another resource
    // may be asked for, within what was granted.
    if let Some(scope) = form.get("scope").filter(|x| !x.trim().is_empty() && !v1) {
        g = rescope(sh, ctx, &g, scope).map_err(spa)?;
    }
    // Rotated: a new refresh token with each use; the old one is not revoked (D-RT).
    Ok(spa(issue(call, &g, old.platform, old.spa_issued)))
}

fn rescope(sh: &Shared, ctx: &ReqCtx, g: &Grant, scope: &str) -> Result<Grant, Response> {
    let st = sh.store.lock().unwrap();
    let t = &st.tenants[&g.tenant];
    let app = st
        .tenants
        .values()
        .find_map(|t| {
            t.app_idx_by_app_id(&g.client_id)
                .map(|i| t.apps[i].body.clone())
        })
        .unwrap_or_default();
    let csp = t
        .sp_idx_by_app_id(&g.client_id)
        .map(|i| t.sps[i].body.clone())
        .unwrap_or_default();
    let req = consent::resolve_v2(t, &app, scope)
        .map_err(|(code, e, text)| err(ctx, 400, e, code, &text))?;
    if !consent::missing(t, &csp, &req, &g.user_id).is_empty() {
        return Err(err(
            ctx,
            400,
            "invalid_grant",
            65001,
            &format!(
                "The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource.",
                g.client_id,
                s(&app, "displayName")
            ),
        ));
    }
    let r = &req.resources[0];
    let mut oidc = req.oidc.clone();
    oidc.extend(g.oidc.iter().filter(|x| *x == "offline_access").cloned());
    Ok(Grant {
        resource_sp: r.sp_id.clone(),
        scopes: r.values.clone(),
        requested: r.requested.clone(),
        oidc,
        ..g.clone()
    })
}

fn by_device_code(call: Call) -> Result<Response, Response> {
    let Call {
        sh,
        ctx,
        tid,
        form,
        c,
        ..
    } = call;
    let dc = need(ctx, form, "device_code")?;
    // The device-code flow is a public-client flow: "Allow public client flows" (isFallbackPublicClient).
    if c.acr.is_none() && c.app.body["isFallbackPublicClient"] != json!(true) {
        return Err(err(
            ctx,
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    }
    let found = sh.flows.lock().unwrap().devices.get(dc).cloned();
    // The device-code errors clients handle: authorization_pending, authorization_declined,
    // bad_verification_code, expired_token (RFC 8628 3.5 and Microsoft's device-code page). Their
    // AADSTS numbers are not recorded except 70016 (MSAL fixture) and 70020 (azure-cli#22251).
    let Some(d) = found.filter(|d| d.client_id == c.client_id && d.tenant == tid) else {
        return Err(err(
            ctx,
            400,
            "bad_verification_code",
            9002313,
            "Invalid request. Request is malformed or invalid.",
        ));
    };
    if d.declined {
        return Err(err(
            ctx,
            400,
            "authorization_declined",
            70000,
            "The user declined to authorize the device.",
        ));
    }
    if d.redeemed {
        return Err(err(
            ctx,
            400,
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        ));
    }
    if now_secs() - d.issued > flows::DEVICE_CODE_LIFETIME_SECS {
        return Err(err(
            ctx,
            400,
            "expired_token",
            70020,
            "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
        ));
    }
    let Some(g) = d.grant.clone() else {
        // MSAL's fixture AUTHORIZATION_PENDING_RESPONSE (1.7).
        return Err(err(
            ctx,
            400,
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        ));
    };
    if let Some(x) = sh.flows.lock().unwrap().devices.get_mut(dc) {
        x.redeemed = true;
    }
    Ok(issue(call, &g, Platform::PublicClient, now_secs()))
}

/// `GET` on the token endpoint (AADSTS900561, D-ERR).
pub async fn wrong_verb(
    axum::Extension(ctx): axum::Extension<ReqCtx>,
    method: axum::http::Method,
) -> Response {
    let text =
        format!("The endpoint only accepts POST, OPTIONS requests. Received a {method} request.");
    err(&ctx, 400, "invalid_request", 900561, &text)
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
