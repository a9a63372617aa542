//! Token-endpoint grants that act for a signed-in user — `authorization_code`, `refresh_token` and
//! the device code — and the delegated access, ID and refresh tokens they return.
//! Facts: interactive-flows.md sections 1.6, 2 and 3.
// Entra's error answers are the `Err` values here, as in graph/.
#![allow(clippy::result_large_err)]
use super::client_auth::{Client, authenticate};
use super::user_tokens::{Call, issue};
use super::{consent, err};
use crate::request::ReqCtx;
use crate::state::sign_in::{self as flows, Grant, Platform};
use crate::state::store::s;
use crate::state::{Shared, now_secs};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
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
    // Checked and marked redeemed under one lock: two requests racing for one code must not both
    // pass the "not yet redeemed" check (Entra: AADSTS54005 for all but the first).
    let k = {
        let mut flows = sh.flows.lock().unwrap();
        let Some(k) = flows
            .codes
            .get_mut(code)
            .filter(|k| k.grant.client_id == c.client_id)
        else {
            return Err(malformed(ctx));
        };
        platform_rules(ctx, c, k.platform, origin, k.pkce.is_some())
            .map_err(|r| cross_origin(r, origin))?;
        check_code(ctx, tid, form, c, k, redirect).map_err(|r| spa(k.platform, r))?;
        k.redeemed = true;
        k.clone()
    };
    Ok(spa(
        k.platform,
        issue(call, &k.grant, k.platform, now_secs()),
    ))
}

/// A SPA's token responses carry CORS headers, errors included.
fn spa(platform: Platform, r: Response) -> Response {
    if platform == Platform::Spa {
        cors(r)
    } else {
        r
    }
}

/// Entra's checks of a code, in order: its tenant, not yet redeemed, not expired, the same
/// redirect URI, the PKCE verifier.
fn check_code(
    ctx: &ReqCtx,
    tid: &str,
    form: &Form,
    c: &Client,
    k: &flows::Code,
    redirect: &str,
) -> Result<(), Response> {
    if k.grant.tenant != tid {
        return Err(err(
            ctx,
            400,
            "invalid_grant",
            700005,
            "Provided Authorization Code is intended to use against other tenant, thus rejected.",
        ));
    }
    if k.redeemed {
        return Err(already_redeemed(ctx));
    }
    if now_secs() - k.issued > flows::CODE_LIFETIME_SECS {
        return Err(err(
            ctx,
            400,
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        ));
    }
    if redirect != k.redirect_uri {
        // The exact code Entra uses here is not recorded; AADSTS50011 names the mismatch (D-ERR InvalidReplyTo).
        return Err(err(
            ctx,
            400,
            "invalid_grant",
            50011,
            &format!(
                "The redirect URI '{redirect}' specified in the request does not match the redirect URI used to request the authorization code for the application '{}'.",
                c.client_id
            ),
        ));
    }
    if let Some((ch, method)) = &k.pkce {
        match form.get("code_verifier") {
            // Which code Entra gives for a missing verifier is not verified (1.6); both are seen in the wild.
            None => {
                return Err(err(
                    ctx,
                    400,
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                ));
            }
            Some(v) if !pkce_ok(ch, method, v) => {
                return Err(err(
                    ctx,
                    400,
                    "invalid_grant",
                    50148,
                    "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.",
                ));
            }
            _ => {}
        }
    }
    Ok(())
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
    // Checked and marked redeemed under one lock, as a code is (two polls racing get one token).
    let mut flows = sh.flows.lock().unwrap();
    let found = flows.devices.get_mut(dc);
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
        return Err(already_redeemed(ctx));
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
    d.redeemed = true;
    drop(flows);
    Ok(issue(call, &g, Platform::PublicClient, now_secs()))
}

/// A code (or device code) used a second time: recorded 400 invalid_grant AADSTS54005.
fn already_redeemed(ctx: &ReqCtx) -> Response {
    err(
        ctx,
        400,
        "invalid_grant",
        54005,
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
    )
}
