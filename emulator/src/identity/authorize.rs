//! The authorization endpoints, v2.0 `/{tenant}/oauth2/v2.0/authorize` and v1
//! `/{tenant}/oauth2/authorize`: the session cookie, and taking a validated request
//! ([`super::auth_request`]) as far as it goes without the user — the sign-in page, the consent
//! page, or a code for the app ([`super::answer`]). The pages' posts are [`super::forms`].
//! Facts: interactive-flows.md sections 1 and 4.
// Entra's error answers are the `Err` values here, as in graph/.
#![allow(clippy::result_large_err)]
use super::answer::{deliver, fail};
use super::auth_request::{Fail, Params, build, parse_params};
use super::{consent, pages};
use crate::request::{ReqCtx, by};
use crate::state::sign_in::{self as flows, AuthRequest, Code, Grant, Session};
use crate::state::store::{Tenant, s};
use crate::state::views::GraphObject;
use crate::state::{Shared, directory, now_secs};
use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use std::sync::Arc;

pub const SESSION_COOKIE: &str = "ESTSAUTH";

/// The session handle in the request's cookie, if any.
pub fn session_handle(headers: &HeaderMap) -> Option<String> {
    let prefix = format!("{SESSION_COOKIE}=");
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(&prefix).map(str::to_string))
}

/// The signed-in session named by the request's cookie, if any (a forged or stale one is ignored).
pub fn session_of(sh: &Shared, headers: &HeaderMap, tid: &str) -> Option<Session> {
    let h = session_handle(headers)?;
    let f = sh.flows.lock().unwrap();
    f.sessions.get(&h).filter(|x| x.tenant == tid).cloned()
}

/// `GET|POST /{tenant}/oauth2/v2.0/authorize` and `/{tenant}/oauth2/authorize`.
#[allow(clippy::too_many_arguments)] // axum extractors
pub async fn authorize(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    Path(seg): Path<String>,
    method: Method,
    uri: axum::http::Uri,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let v1 = !uri.path().contains("/v2.0/");
    let raw = if method == Method::POST {
        body.to_vec()
    } else {
        q.unwrap_or_default().into_bytes()
    };
    let p = match parse_params(&raw) {
        Ok(p) => p,
        Err(f) => return by(fail(&ctx, None, f), "", ""),
    };
    let req = match build(&sh, &seg, &p, v1) {
        Ok(r) => r,
        Err((f, r)) => return by(fail(&ctx, r.as_ref(), f), "", ""),
    };
    let (tid, cid) = (req.tenant.clone(), req.client_id.clone());
    let session = session_of(&sh, &headers, &tid);
    by(proceed(&sh, &ctx, req, session), &tid, &cid)
}

/// Takes a request as far as it can go without the user: sign-in page, consent page, or the answer.
pub fn proceed(
    sh: &Shared,
    ctx: &ReqCtx,
    mut req: AuthRequest,
    session: Option<Session>,
) -> Response {
    let fresh = matches!(req.prompt.as_str(), "login" | "select_account");
    if req.user_id.is_none()
        && let Some(sess) = session.filter(|_| !fresh)
    {
        req.user_id = Some(sess.user_id);
        req.auth_time = sess.auth_time;
    }
    let Some(user_id) = req.user_id.clone() else {
        return sign_in_page(sh, ctx, req);
    };
    let st = sh.store.lock().unwrap();
    let t = &st.tenants[&req.tenant];
    let Some(user) = directory::user_by_id(t, &user_id).cloned() else {
        drop(st);
        req.user_id = None;
        return proceed(sh, ctx, req, None);
    };
    if let Some(f) = assignment_check(t, &req, &user) {
        drop(st);
        return fail(ctx, Some(&req), f);
    }
    let missing = consent::missing(t, &req.client_sp, &req.requested, &user_id);
    let forced = (req.prompt == "consent" || req.prompt == "admin_consent") && !req.consented;
    if !missing.is_empty() || forced {
        if req.prompt == "none" {
            drop(st);
            // MSAL treats consent_required as "interaction required" (1.4; exact value not recorded).
            let text = format!(
                "The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource.",
                req.client_id, req.client_name
            );
            return fail(
                ctx,
                Some(&req),
                Fail::Redirect("consent_required", 65001, text),
            );
        }
        if missing.iter().any(|m| m.2 == "Admin") && !user.admin {
            drop(st);
            return fail(
                ctx,
                None,
                Fail::Page(90094, "The grant requires admin permission.".into()),
            );
        }
        let perms = permissions(t, &req);
        drop(st);
        let (action, name, upn, admin) = (
            format!("/{}/consent", req.tenant),
            req.client_name.clone(),
            s(&user.body, "userPrincipalName"),
            user.admin,
        );
        let id = park(sh, req);
        return pages::consent(&action, &id, &name, &upn, &perms, admin);
    }
    drop(st);
    finish(sh, req, &user_id)
}

/// No user yet: the sign-in page (a silent request, `prompt=none`, fails instead).
fn sign_in_page(sh: &Shared, ctx: &ReqCtx, req: AuthRequest) -> Response {
    if req.prompt == "none" {
        return fail(
            ctx,
            Some(&req),
            Fail::Redirect(
                "login_required",
                50058,
                "A silent sign-in request was sent but no user is signed in.".into(),
            ),
        );
    }
    let (action, hint, name) = (
        format!("/{}/login", req.tenant),
        req.login_hint.clone(),
        req.client_name.clone(),
    );
    let id = park(sh, req);
    pages::sign_in(&action, &id, &name, &hint, None)
}

/// AADSTS50105: the app (or the resource) requires assignment and the user holds none.
fn assignment_check(t: &Tenant, req: &AuthRequest, user: &directory::UserRec) -> Option<Fail> {
    let uid = s(&user.body, "id");
    let mut sps = vec![req.client_sp.clone()];
    sps.extend(
        req.requested
            .resources
            .iter()
            .filter_map(|r| t.sp_idx(&r.sp_id).map(|i| t.sps[i].body.clone())),
    );
    let blocked = sps
        .iter()
        .find(|sp| sp.assignment_required() && !directory::assigned(t, &uid, sp.id()))?;
    Some(Fail::Page(
        50105,
        format!(
            "Your administrator has configured the application {} ('{}') to block users unless they are specifically granted ('assigned') access to the application. The signed in user '{}' is blocked because they are not a direct member of a group with access, nor had access directly assigned by an administrator. Please contact your administrator to assign access to this application.",
            s(blocked, "displayName"),
            s(blocked, "appId"),
            s(&user.body, "userPrincipalName")
        ),
    ))
}

fn permissions(t: &Tenant, req: &AuthRequest) -> Vec<pages::Permission> {
    let mut out = vec![];
    for r in &req.requested.resources {
        let sp = t
            .sp_idx(&r.sp_id)
            .map(|i| t.sps[i].body.clone())
            .unwrap_or_default();
        for v in &r.values {
            let desc = sp["oauth2PermissionScopes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|x| s(x, "value") == *v)
                .map(|x| {
                    let u = s(x, "userConsentDisplayName");
                    if u.is_empty() {
                        s(x, "adminConsentDisplayName")
                    } else {
                        u
                    }
                })
                .unwrap_or_default();
            out.push(pages::Permission {
                resource: r.display_name.clone(),
                value: v.clone(),
                description: desc,
            });
        }
    }
    if req.requested.oidc.iter().any(|x| x == "offline_access") {
        out.push(pages::Permission {
            resource: "Microsoft Graph".into(),
            value: "offline_access".into(),
            description: "Maintain access to data you have given it access to".into(),
        });
    }
    out
}

/// Keeps a request for the next page; returns its handle.
pub(super) fn park(sh: &Shared, req: AuthRequest) -> String {
    let id = flows::handle();
    let mut f = sh.flows.lock().unwrap();
    f.sweep();
    f.pending.insert(id.clone(), req);
    id
}

/// The user is signed in and has consented: a code for the app (or the device's grant).
fn finish(sh: &Shared, req: AuthRequest, user_id: &str) -> Response {
    let first = &req.requested.resources[0];
    let grant = Grant {
        tenant: req.tenant.clone(),
        client_id: req.client_id.clone(),
        user_id: user_id.to_string(),
        resource_sp: first.sp_id.clone(),
        scopes: first.values.clone(),
        requested: first.requested.clone(),
        oidc: req.requested.oidc.clone(),
        v1: req.v1,
        nonce: req.nonce.clone(),
    };
    if let Some(dc) = &req.device {
        if let Some(d) = sh.flows.lock().unwrap().devices.get_mut(dc) {
            d.grant = Some(grant);
        }
        return pages::device_done(&req.client_name);
    }
    let code = flows::handle();
    let mut params: Params = vec![("code".into(), code.clone())];
    if req.id_token {
        let idt = super::user_tokens::id_token(sh, &grant, Some(&code));
        params.push(("id_token".into(), idt));
    }
    if let Some(st) = &req.state {
        params.push(("state".into(), st.clone()));
    }
    if req.client_info {
        params.push((
            "client_info".into(),
            super::user_tokens::client_info(&grant),
        ));
    }
    // session_state: a GUID to be treated as opaque (D-V1; older v2 docs show it too, 1.3).
    params.push(("session_state".into(), crate::state::random_guid()));
    {
        let mut f = sh.flows.lock().unwrap();
        f.sweep();
        f.codes.insert(
            code,
            Code {
                grant,
                redirect_uri: req.redirect_uri.clone(),
                platform: req.platform,
                pkce: req.pkce.clone(),
                issued: now_secs(),
                redeemed: false,
            },
        );
    }
    deliver(&req, params)
}
