//! The sign-in and consent pages' form posts: `POST /{tenant}/login` and `POST /{tenant}/consent`,
//! each continuing the pending authorization request it names.
// Entra's error answers are the `Err` values here, as in graph/.
#![allow(clippy::result_large_err)]
use super::answer::fail;
use super::auth_request::Fail;
use super::authorize::{SESSION_COOKIE, park, proceed};
use super::{consent, pages};
use crate::request::{ReqCtx, by};
use crate::state::sign_in::{self as flows, AuthRequest, Session};
use crate::state::store::s;
use crate::state::{Shared, directory, now_secs};
use axum::Extension;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::Response;
use std::sync::Arc;

/// The posted form of a sign-in or consent page and the request it continues.
fn form_and_pending(
    sh: &Shared,
    ctx: &ReqCtx,
    body: &[u8],
) -> Result<(std::collections::HashMap<String, String>, AuthRequest), Response> {
    let form: std::collections::HashMap<String, String> =
        serde_urlencoded::from_bytes(body).unwrap_or_default();
    let got = form
        .get("req")
        .and_then(|id| sh.flows.lock().unwrap().pending.remove(id));
    match got.filter(|p| now_secs() - p.created < flows::PENDING_LIFETIME_SECS) {
        Some(req) => Ok((form, req)),
        None => {
            let text =
                "Flow token expired - Authentication Failed. Have the user try signing-in again.";
            Err(by(fail(ctx, None, Fail::Page(50089, text.into())), "", ""))
        }
    }
}

/// `POST /{tenant}/login`: the sign-in form (`login`, `passwd`).
pub async fn login(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    body: axum::body::Bytes,
) -> Response {
    let (form, mut req) = match form_and_pending(&sh, &ctx, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (upn, pw) = (
        form.get("login").cloned().unwrap_or_default(),
        form.get("passwd").cloned().unwrap_or_default(),
    );
    let checked = {
        let st = sh.store.lock().unwrap();
        let t = &st.tenants[&req.tenant];
        match directory::user_by_upn(t, &upn) {
            None => Err(format!(
                "AADSTS50034: The user account {upn} does not exist in the {} directory. To sign into this application, the account must be added to the directory.",
                t.publisher_domain()
            )),
            Some(u) if !directory::password_ok(u, &pw) => Err(
                "AADSTS50126: Error validating credentials due to invalid username or password."
                    .to_string(),
            ),
            Some(u) => Ok(s(&u.body, "id")),
        }
    };
    let (tid, cid) = (req.tenant.clone(), req.client_id.clone());
    let user_id = match checked {
        Ok(u) => u,
        Err(msg) => {
            let (action, name) = (format!("/{}/login", req.tenant), req.client_name.clone());
            let id = park(&sh, req);
            return by(
                pages::sign_in(&action, &id, &name, &upn, Some(&msg)),
                &tid,
                &cid,
            );
        }
    };
    let now = now_secs();
    req.user_id = Some(user_id.clone());
    req.auth_time = now;
    req.prompt = if req.prompt == "login" || req.prompt == "select_account" {
        String::new()
    } else {
        req.prompt
    };
    let handle = flows::handle();
    sh.flows.lock().unwrap().sessions.insert(
        handle.clone(),
        Session {
            tenant: tid.clone(),
            user_id,
            auth_time: now,
        },
    );
    let mut r = proceed(&sh, &ctx, req, None);
    let cookie = format!("{SESSION_COOKIE}={handle}; path=/; secure; HttpOnly; SameSite=None");
    r.headers_mut()
        .append("Set-Cookie", HeaderValue::from_str(&cookie).unwrap());
    by(r, &tid, &cid)
}

/// `POST /{tenant}/consent`: Accept (`accept=true`, admins may add `org=true`) or Cancel.
pub async fn consent(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    body: axum::body::Bytes,
) -> Response {
    let (form, mut req) = match form_and_pending(&sh, &ctx, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (tid, cid) = (req.tenant.clone(), req.client_id.clone());
    let Some(user_id) = req.user_id.clone() else {
        return by(
            fail(
                &ctx,
                None,
                Fail::Page(
                    50058,
                    "A silent sign-in request was sent but no user is signed in.".into(),
                ),
            ),
            &tid,
            &cid,
        );
    };
    if form.get("accept").map(String::as_str) != Some("true") {
        let f = Fail::Redirect(
            "access_denied",
            65004,
            "User declined to consent to access the app.".into(),
        );
        if let Some(dc) = &req.device
            && let Some(d) = sh.flows.lock().unwrap().devices.get_mut(dc)
        {
            d.declined = true;
        }
        return by(fail(&ctx, Some(&req), f), &tid, &cid);
    }
    {
        let mut st = sh.store.lock().unwrap();
        let t = st.tenants.get_mut(&tid).unwrap();
        let admin = directory::user_by_id(t, &user_id).is_some_and(|u| u.admin);
        let for_org = admin && form.get("org").map(String::as_str) == Some("true");
        let csp = s(&req.client_sp, "id");
        for r in &req.requested.resources {
            consent::record(
                t,
                &csp,
                &r.sp_id,
                if for_org { None } else { Some(&user_id) },
                &r.values,
            );
        }
        sh.persist(st);
    }
    req.consented = true;
    by(proceed(&sh, &ctx, req, None), &tid, &cid)
}
