//! The device-code flow: `POST /{tenant}/oauth2/v2.0/devicecode` (and v1 `/oauth2/devicecode`)
//! hands out a device code and a user code; the user enters the user code on `/devicelogin`,
//! signs in and consents there; the device polls the token endpoint meanwhile
//! (`authorization_pending` until then). Shape recorded in TestDeviceCodeCredential_Live.
use super::authorize;
use super::{aadsts_error, consent, pages, resolve_tenant};
use crate::request::{ReqCtx, by};
use crate::state::sign_in::{self as flows, AuthRequest, DeviceCode, Mode, Platform, Requested};
use crate::state::store::s;
use crate::state::{Shared, now_secs};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Nine characters from an alphabet without look-alikes, as Entra's user codes look.
fn user_code() -> String {
    const A: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut r = rand::thread_rng();
    (0..9).map(|_| A[r.gen_range(0..A.len())] as char).collect()
}

/// The client's registration, its service principal and the scopes asked for; or an Entra error
/// (status, `error`, code, text).
type Resolved =
    Result<(serde_json::Value, serde_json::Value, Requested), (u16, &'static str, u32, String)>;

fn resolve(sh: &Shared, tid: &str, client_id: &str, scope: &str, v1: bool) -> Resolved {
    let st = sh.store.lock().unwrap();
    let t = &st.tenants[tid];
    let (Some(ai), Some(si)) = (
        t.app_idx_by_app_id(client_id),
        t.sp_idx_by_app_id(client_id),
    ) else {
        return Err((
            400,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                t.publisher_domain()
            ),
        ));
    };
    let app = t.apps[ai].body.clone();
    let req = if v1 {
        consent::resolve_v1(t, &app, Some(scope).filter(|x| !x.is_empty()))
    } else {
        consent::resolve_v2(t, &app, scope)
    }
    .map_err(|(code, e, text)| (400, e, code, text))?;
    Ok((app, t.sps[si].body.clone(), req))
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`, `/{tenant}/oauth2/devicecode`.
pub async fn devicecode(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    Path(seg): Path<String>,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> Response {
    let v1 = !uri.path().contains("/v2.0/");
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let bad = |st: u16, e: &str, code: u32, text: &str| {
        aadsts_error(&ctx, StatusCode::from_u16(st).unwrap(), e, code, text)
    };
    let tid = { resolve_tenant(&sh.store.lock().unwrap(), &seg) };
    let Some(tid) = tid else {
        return by(
            bad(
                400,
                "invalid_request",
                90002,
                &format!("Tenant '{seg}' not found."),
            ),
            "",
            "",
        );
    };
    let Some(client_id) = form.get("client_id").map(|c| c.to_ascii_lowercase()) else {
        return by(
            bad(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            ),
            &tid,
            "",
        );
    };
    let scope = form
        .get(if v1 { "resource" } else { "scope" })
        .cloned()
        .unwrap_or_default();
    if !v1 && scope.trim().is_empty() {
        return by(
            bad(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            ),
            &tid,
            &client_id,
        );
    }
    if let Err((st, e, code, text)) = resolve(&sh, &tid, &client_id, &scope, v1) {
        return by(bad(st, e, code, &text), &tid, &client_id);
    }
    let body = hand_out(&sh, &tid, &client_id, scope, v1);
    let mut r = (StatusCode::OK, axum::Json(body)).into_response();
    super::login_headers(&mut r);
    by(r, &tid, &client_id)
}

/// Keeps a new device code and its user code; the answer's body (v1 spells it the older way).
fn hand_out(sh: &Shared, tid: &str, client_id: &str, scope: String, v1: bool) -> serde_json::Value {
    let (dc, uc) = (flows::handle(), user_code());
    {
        let mut f = sh.flows.lock().unwrap();
        f.sweep();
        f.devices.insert(
            dc.clone(),
            DeviceCode {
                tenant: tid.to_string(),
                client_id: client_id.to_string(),
                user_code: uc.clone(),
                scope,
                v1,
                issued: now_secs(),
                grant: None,
                declined: false,
                redeemed: false,
            },
        );
    }
    let page = format!("{}/devicelogin", sh.base_url);
    let message = format!(
        "To sign in, use a web browser to open the page {page} and enter the code {uc} to authenticate."
    );
    if v1 {
        json!({"user_code": uc, "device_code": dc, "verification_url": page, "expires_in": flows::DEVICE_CODE_LIFETIME_SECS.to_string(), "interval": "5", "message": message})
    } else {
        json!({"user_code": uc, "device_code": dc, "verification_uri": page, "expires_in": flows::DEVICE_CODE_LIFETIME_SECS, "interval": 5, "message": message})
    }
}

fn code_didnt_work() -> Response {
    let msg = "That code didn't work. Check the code and try again.";
    by(pages::device_code("/devicelogin", Some(msg)), "", "")
}

/// `GET /devicelogin`: the code page.
pub async fn page() -> Response {
    by(pages::device_code("/devicelogin", None), "", "")
}

/// `POST /devicelogin` (`otc`): starts the sign-in for that device.
pub async fn enter(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let code = form
        .get("otc")
        .map(|c| c.trim().to_ascii_uppercase())
        .unwrap_or_default();
    let found = {
        let f = sh.flows.lock().unwrap();
        f.devices
            .iter()
            .find(|(_, d)| {
                d.user_code == code
                    && d.grant.is_none()
                    && !d.declined
                    && now_secs() - d.issued <= flows::DEVICE_CODE_LIFETIME_SECS
            })
            .map(|(k, d)| (k.clone(), d.clone()))
    };
    let Some((dc, d)) = found else {
        return code_didnt_work();
    };
    let Ok((app, sp, requested)) = resolve(&sh, &d.tenant, &d.client_id, &d.scope, d.v1) else {
        return code_didnt_work();
    };
    let req = AuthRequest {
        created: now_secs(),
        tenant: d.tenant.clone(),
        v1: d.v1,
        client_id: d.client_id.clone(),
        client_name: s(&app, "displayName"),
        client_sp: sp,
        redirect_uri: String::new(),
        platform: Platform::PublicClient,
        mode: Mode::Query,
        id_token: false,
        state: None,
        nonce: None,
        login_hint: String::new(),
        prompt: String::new(),
        pkce: None,
        requested,
        client_info: false,
        user_id: None,
        auth_time: 0,
        consented: false,
        device: Some(dc),
    };
    let session = authorize::session_of(&sh, &headers, &d.tenant);
    by(
        authorize::proceed(&sh, &ctx, req, session),
        &d.tenant,
        &d.client_id,
    )
}
