//! Users sign in: authorize (sign-in page, consent page, session cookie, prompts, response modes),
//! code redemption with PKCE, refresh tokens, delegated token claims (v1 and v2), admin consent,
//! roles through groups, the device-code flow.
mod common;
use common::signin::*;
use common::verify_with_jwks;
use serde_json::json;

async fn assign_role_to_group(f: &Fixture, group: &str) {
    let st =
        f.c.get(format!("{}/_emulator/state", f.emu.base_url()))
            .send()
            .await
            .unwrap();
    assert_eq!(st.status(), 200);
    // The group was created from the config (UserConfig::groups); find its id through Graph.
    let groups = f.g.get("/groups").await;
    assert_eq!(groups.status, 200, "{}", groups.body);
    let gid = groups.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["displayName"] == group)
        .unwrap()["id"]
        .clone();
    let a =
        f.g.post(
            &format!("/servicePrincipals/{}/appRoleAssignedTo", f.api_sp),
            json!({"principalId": gid, "resourceId": f.api_sp, "appRoleId": f.role_id}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["principalType"], "Group");
}

#[tokio::test]
async fn web_app_user_signs_in_consents_and_redeems_code_with_pkce() {
    let f = fixture(2).await;
    assign_role_to_group(&f, "clinicians").await;
    let mut b = Browser::new(&f.emu);
    let (verifier, challenge) = pkce();
    let scope = format!(
        "{API_URI}/user_impersonation {API_URI}/patient.all.read openid profile offline_access"
    );
    let url = f.web_url(
        &scope,
        &[
            ("state", "st-123"),
            ("nonce", "n-456"),
            ("login_hint", ADA),
            ("client_info", "1"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let page = b.get(&url).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(&format!("value=\"{ADA}\"")),
        "login_hint prefilled"
    );
    assert!(page.body.contains("clinician-portal"));
    let wrong = b.sign_in(&f.tid, &page, ADA, "nope").await;
    assert!(wrong.body.contains("AADSTS50126"), "{}", wrong.body);
    let consent = b.sign_in(&f.tid, &wrong, ADA, PW).await;
    assert!(
        consent.headers.get("set-cookie").is_some(),
        "session cookie set"
    );
    assert!(
        consent.body.contains("user_impersonation") && consent.body.contains("patient.all.read"),
        "{}",
        consent.body
    );
    let done = b.consent(&f.tid, &consent, true, false).await;
    assert_eq!(done.status, 302, "{}", done.body);
    assert!(
        done.location.starts_with(&format!("{WEB_REDIRECT}?")),
        "{}",
        done.location
    );
    let p = done.params();
    assert_eq!(p["state"], "st-123");
    assert!(p.contains_key("session_state"));
    let code = p["code"].clone();
    // The user's consent is now a Principal oAuth2PermissionGrant, visible in Graph.
    let grants = f.g.get("/oauth2PermissionGrants").await;
    let g = grants.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["consentType"] == "Principal")
        .expect("grant")
        .clone();
    assert_eq!(g["scope"], "user_impersonation patient.all.read");

    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", f.web.as_str()),
        ("client_secret", f.web_secret.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", WEB_REDIRECT),
        ("code_verifier", verifier.as_str()),
        ("scope", scope.as_str()),
        ("client_info", "1"),
    ];
    let (st, h, v) = token(&f, false, &form, &[]).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(h["cache-control"], "no-store, no-cache");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(
        v["scope"],
        format!("{API_URI}/user_impersonation {API_URI}/patient.all.read")
    );
    let at = verify_with_jwks(&f.c, &f.emu, v["access_token"].as_str().unwrap()).await;
    assert_eq!(at["ver"], "2.0");
    assert_eq!(at["aud"], f.api_app_id);
    assert_eq!(at["iss"], format!("{}/{}/v2.0", f.emu.base_url(), f.tid));
    assert_eq!(at["scp"], "user_impersonation patient.all.read");
    assert_eq!(at["roles"], json!(["clinician"]), "role through the group");
    assert_eq!(at["azp"], f.web);
    assert_eq!(at["azpacr"], "1");
    assert_eq!(at["preferred_username"], ADA);
    assert_eq!(at["name"], "Ada Lovelace");
    assert_eq!(at["tid"], f.tid);
    assert!(at.get("appid").is_none() && at.get("upn").is_none());
    let idt = verify_with_jwks(&f.c, &f.emu, v["id_token"].as_str().unwrap()).await;
    assert_eq!(idt["aud"], f.web);
    assert_eq!(idt["nonce"], "n-456");
    assert_eq!(idt["oid"], at["oid"]);
    let ci = entra_emulator::crypto::b64_any(v["client_info"].as_str().unwrap()).unwrap();
    let ci: serde_json::Value = serde_json::from_slice(&ci).unwrap();
    assert_eq!(
        (ci["uid"].clone(), ci["utid"].clone()),
        (at["oid"].clone(), json!(f.tid))
    );

    // Single use (recorded: 400 invalid_grant AADSTS54005).
    let (st, _, e) = token(&f, false, &form, &[]).await;
    assert_err(st, &e, 400, "invalid_grant", 54005);

    // Refresh: a new refresh token each time; the old one still works (D-RT).
    let rt1 = v["refresh_token"].as_str().unwrap().to_string();
    let rf = |rt: String| {
        vec![
            ("grant_type", "refresh_token".to_string()),
            ("client_id", f.web.clone()),
            ("client_secret", f.web_secret.clone()),
            ("refresh_token", rt),
        ]
    };
    let to_ref = |v: &Vec<(&'static str, String)>| {
        v.iter().map(|(k, x)| (*k, x.clone())).collect::<Vec<_>>()
    };
    let f1 = to_ref(&rf(rt1.clone()));
    let f1: Vec<(&str, &str)> = f1.iter().map(|(k, x)| (*k, x.as_str())).collect();
    let (st, _, r1) = token(&f, false, &f1, &[]).await;
    assert_eq!(st, 200, "{r1}");
    let rt2 = r1["refresh_token"].as_str().unwrap();
    assert_ne!(rt2, rt1);
    let (st, _, _) = token(&f, false, &f1, &[]).await;
    assert_eq!(st, 200);
    // A refresh token cannot reach scopes nobody consented to (AADSTS65001).
    let mut f2 = f1.clone();
    let admin_scope = format!("{API_URI}/system.all.write");
    f2.push(("scope", &admin_scope));
    let (st, _, e) = token(&f, false, &f2, &[]).await;
    assert_err(st, &e, 400, "invalid_grant", 65001);
    // A forged refresh token.
    let f3: Vec<(&str, &str)> = f1
        .iter()
        .map(|(k, x)| {
            if *k == "refresh_token" {
                (*k, "forged")
            } else {
                (*k, *x)
            }
        })
        .collect();
    let (st, _, e) = token(&f, false, &f3, &[]).await;
    assert_eq!((st, code_of(&e)), (400, 9002313));
    f.emu.shutdown().await;
}

#[tokio::test]
async fn session_cookie_makes_the_next_sign_in_silent_and_prompts_behave() {
    let f = fixture(2).await;
    let mut b = Browser::new(&f.emu);
    let scope = format!("{API_URI}/user_impersonation openid");
    let url = |prompt: &str| {
        let mut p = vec![
            ("client_id", f.web.as_str()),
            ("response_type", "code"),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", scope.as_str()),
            ("state", "s1"),
        ];
        if !prompt.is_empty() {
            p.push(("prompt", prompt));
        }
        authorize_url(&f.tid, &p)
    };
    // No session: prompt=none gives login_required (AADSTS50058), back at the redirect URI.
    let r = b.get(&url("none")).await;
    assert_eq!(r.status, 302);
    let p = r.params();
    assert_eq!(p["error"], "login_required");
    assert!(
        p["error_description"].starts_with("AADSTS50058: "),
        "{}",
        p["error_description"]
    );
    assert!(p["error_description"].contains("\r\nTrace ID: "));
    assert_eq!(
        p["error_uri"],
        "https://login.microsoftonline.com/error?code=50058"
    );
    assert_eq!(p["state"], "s1");
    assert!(
        r.location.contains("%3a+") || r.location.contains("%3a"),
        "Entra's encoding: {}",
        r.location
    );
    // Sign in and consent once.
    let page = b.get(&url("")).await;
    let consent = b.sign_in(&f.tid, &page, ADA, PW).await;
    let done = b.consent(&f.tid, &consent, true, false).await;
    assert!(done.params().contains_key("code"));
    // Signed in: silent.
    let r = b.get(&url("none")).await;
    assert_eq!(r.status, 302);
    assert!(r.params().contains_key("code"), "{}", r.location);
    let r = b.get(&url("")).await;
    assert!(
        r.params().contains_key("code"),
        "no page when signed in and consented"
    );
    // prompt=login asks for the password again; prompt=consent shows consent again.
    let r = b.get(&url("login")).await;
    assert!(r.body.contains("id=\"passwd\""));
    let r = b.get(&url("consent")).await;
    assert!(r.body.contains("id=\"permissions\""));
    let again = b.consent(&f.tid, &r, true, false).await;
    assert!(again.params().contains_key("code"));
    // Another scope not yet consented, silently: consent_required (AADSTS65001).
    let s2 = format!("{API_URI}/patient.all.read");
    let r = b.get(&f.web_url(&s2, &[("prompt", "none")])).await;
    let p = r.params();
    assert_eq!(p["error"], "consent_required");
    assert!(p["error_description"].starts_with("AADSTS65001: "));
    // A forged cookie is no session.
    let mut forged = Browser::new(&f.emu);
    forged.cookies.push("ESTSAUTH=forged-value".into());
    let r = forged.get(&url("none")).await;
    assert_eq!(r.params()["error"], "login_required");
    f.emu.shutdown().await;
}

#[tokio::test]
async fn admin_consents_for_the_organisation_and_admin_scopes_need_an_admin() {
    let f = fixture(2).await;
    let admin_scope = format!("{API_URI}/system.all.write {API_URI}/user_impersonation");
    let url = f.web_url(&admin_scope, &[]);
    // A user cannot consent to an Admin scope (AADSTS90094, on Entra's page).
    let mut eve = Browser::new(&f.emu);
    let page = eve.get(&url).await;
    let r = eve.sign_in(&f.tid, &page, EVE, PW).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("AADSTS90094"), "{}", r.body);
    assert!(r.headers.get("location").is_none());
    // The admin consents for everyone.
    let mut bob = Browser::new(&f.emu);
    let page = bob.get(&url).await;
    let consent = bob.sign_in(&f.tid, &page, BOB, PW).await;
    assert!(
        consent.body.contains("id=\"org\""),
        "admins get the organisation checkbox"
    );
    let done = bob.consent(&f.tid, &consent, true, true).await;
    assert!(done.params().contains_key("code"));
    let grants = f.g.get("/oauth2PermissionGrants").await;
    let all = grants.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["consentType"] == "AllPrincipals")
        .expect("admin grant")
        .clone();
    assert_eq!(all["principalId"], serde_json::Value::Null);
    // Now Eve signs in without any consent page.
    let mut eve = Browser::new(&f.emu);
    let page = eve.get(&url).await;
    let r = eve.sign_in(&f.tid, &page, EVE, PW).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(r.params().contains_key("code"));
    // Cancel on the consent page: access_denied AADSTS65004 at the redirect URI.
    let s2 = format!("{API_URI}/patient.all.read");
    let r = eve.get(&f.web_url(&s2, &[("state", "x")])).await;
    let r = eve.consent(&f.tid, &r, false, false).await;
    let p = r.params();
    assert_eq!(
        (
            p["error"].as_str(),
            &p["error_description"][..13],
            p["state"].as_str()
        ),
        ("access_denied", "AADSTS65004: ", "x")
    );
    f.emu.shutdown().await;
}

#[tokio::test]
async fn v1_endpoint_and_v1_access_tokens() {
    let f = fixture(1).await;
    let mut b = Browser::new(&f.emu);
    let url = format!(
        "/{}/oauth2/authorize?{}",
        f.tid,
        serde_urlencoded::to_string([
            ("client_id", f.web.as_str()),
            ("response_type", "code"),
            ("redirect_uri", WEB_REDIRECT),
            ("resource", API_URI),
            ("state", "v1")
        ])
        .unwrap()
    );
    let page = b.get(&url).await;
    let consent = b.sign_in(&f.tid, &page, ADA, PW).await;
    let done = b.consent(&f.tid, &consent, true, false).await;
    let code = done.params()["code"].clone();
    let (st, _, v) = token(
        &f,
        true,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &f.web),
            ("client_secret", &f.web_secret),
            ("code", &code),
            ("redirect_uri", WEB_REDIRECT),
            ("resource", API_URI),
        ],
        &[],
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert!(
        v["expires_in"].is_string() && v["expires_on"].is_string(),
        "v1 numbers are strings: {v}"
    );
    assert_eq!(v["resource"], API_URI);
    assert!(v["refresh_token"].is_string() && v["id_token"].is_string());
    let at = verify_with_jwks(&f.c, &f.emu, v["access_token"].as_str().unwrap()).await;
    assert_eq!(at["ver"], "1.0");
    assert_eq!(at["aud"], API_URI);
    assert_eq!(at["iss"], format!("https://sts.windows.net/{}/", f.tid));
    assert_eq!(
        (at["appid"].as_str(), at["appidacr"].as_str()),
        (Some(f.web.as_str()), Some("1"))
    );
    assert_eq!(
        (at["upn"].as_str(), at["unique_name"].as_str()),
        (Some(ADA), Some(ADA))
    );
    assert_eq!(at["scp"], "user_impersonation patient.all.read");
    let idt = verify_with_jwks(&f.c, &f.emu, v["id_token"].as_str().unwrap()).await;
    assert_eq!(idt["ver"], "1.0");
    f.emu.shutdown().await;
}

#[tokio::test]
async fn response_modes_fragment_form_post_and_hybrid_id_token() {
    let f = fixture(2).await;
    let mut b = Browser::new(&f.emu);
    let scope = format!("{API_URI}/user_impersonation openid");
    let base = |extra: &[(&'static str, &'static str)]| {
        let mut p: Vec<(&str, &str)> = vec![
            ("client_id", &f.web),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", &scope),
            ("state", "s"),
        ];
        p.extend_from_slice(extra);
        authorize_url(&f.tid, &p)
    };
    let page = b.get(&base(&[("response_type", "code")])).await;
    let consent = b.sign_in(&f.tid, &page, ADA, PW).await;
    b.consent(&f.tid, &consent, true, false).await;
    let r = b
        .get(&base(&[
            ("response_type", "code"),
            ("response_mode", "fragment"),
        ]))
        .await;
    assert!(
        r.location.starts_with(&format!("{WEB_REDIRECT}#code=")),
        "{}",
        r.location
    );
    let r = b
        .get(&base(&[
            ("response_type", "code"),
            ("response_mode", "form_post"),
        ]))
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains(&format!("action=\"{WEB_REDIRECT}\""))
            && r.body.contains("name=\"code\"")
            && r.body.contains("name=\"state\" value=\"s\""),
        "{}",
        r.body
    );
    // Hybrid: fragment by default, an ID token with the nonce and c_hash.
    let r = b
        .get(&base(&[
            ("response_type", "code id_token"),
            ("nonce", "abc"),
        ]))
        .await;
    assert!(r.location.contains('#'), "{}", r.location);
    let p = r.params();
    let idt = verify_with_jwks(&f.c, &f.emu, &p["id_token"]).await;
    assert_eq!(idt["nonce"], "abc");
    let h = entra_emulator::crypto::sha256(p["code"].as_bytes());
    assert_eq!(idt["c_hash"], entra_emulator::crypto::b64url(&h[..16]));
    f.emu.shutdown().await;
}

#[tokio::test]
async fn device_code_flow_pending_until_the_user_completes_the_code_page() {
    let f = fixture(2).await;
    let scope = format!("{API_URI}/user_impersonation offline_access");
    let (st, d) = devicecode(&f, &f.native, &scope).await;
    assert_eq!(st, 200);
    assert_eq!(
        (d["expires_in"].as_i64(), d["interval"].as_i64()),
        (Some(900), Some(5))
    );
    let dc = d["device_code"].as_str().unwrap();
    let uc = d["user_code"].as_str().unwrap();
    assert!(d["message"].as_str().unwrap().contains(uc));
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", f.native.as_str()),
        ("device_code", dc),
    ];
    let (st, _, e) = token(&f, false, &poll, &[]).await;
    assert_err(st, &e, 400, "authorization_pending", 70016);
    let mut b = Browser::new(&f.emu);
    let page = b.get("/devicelogin").await;
    assert!(page.body.contains("id=\"otc\""));
    let bad = b.post("/devicelogin", &[("otc", "WRONGCODE")]).await;
    assert!(bad.body.contains("didn&#39;t work"));
    let signin = b.post("/devicelogin", &[("otc", &uc.to_lowercase())]).await;
    let consent = b.sign_in(&f.tid, &signin, ADA, PW).await;
    let done = b.consent(&f.tid, &consent, true, false).await;
    assert!(done.body.contains("id=\"done\""), "{}", done.body);
    // msal-node polls with the short grant type `device_code`.
    let short = [
        ("grant_type", "device_code"),
        ("client_id", f.native.as_str()),
        ("device_code", dc),
    ];
    let (st, _, v) = token(&f, false, &short, &[]).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["refresh_token"].is_string());
    let at = verify_with_jwks(&f.c, &f.emu, v["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (at["azp"].as_str(), at["azpacr"].as_str()),
        (Some(f.native.as_str()), Some("0"))
    );
    let (st, _, e) = token(&f, false, &poll, &[]).await;
    assert_eq!((st, code_of(&e)), (400, 54005));
    // A web app (no "Allow public client flows") must authenticate.
    let (_, d) = devicecode(&f, &f.web, &scope).await;
    let (st, _, e) = token(
        &f,
        false,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", &f.web),
            ("device_code", d["device_code"].as_str().unwrap()),
        ],
        &[],
    )
    .await;
    assert_err(st, &e, 401, "invalid_client", 7000218);
    f.emu.shutdown().await;
}

async fn userinfo(f: &Fixture, token: &str) -> (u16, serde_json::Value) {
    let url = format!("{}/oidc/userinfo", f.emu.base_url());
    let r = f.c.get(url).bearer_auth(token).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

#[tokio::test]
async fn logout_ends_the_session_and_userinfo_answers_for_graph_tokens() {
    let f = fixture(2).await;
    let mut b = Browser::new(&f.emu);
    // Sign-in only (openid profile): a Graph token with User.Read, consented with the sign-in.
    let page = b.get(&f.web_url("openid profile", &[])).await;
    let r = b.sign_in(&f.tid, &page, ADA, PW).await;
    let r = if r.status == 200 {
        b.consent(&f.tid, &r, true, false).await
    } else {
        r
    };
    let code = r.params()["code"].clone();
    let (st, v) = redeem_web(&f, &code).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["scope"], "https://graph.microsoft.com/User.Read");
    let at = v["access_token"].as_str().unwrap();
    let (st, ui) = userinfo(&f, at).await;
    assert_eq!(st, 200);
    assert_eq!(
        (ui["name"].as_str(), ui["email"].as_str()),
        (Some("Ada Lovelace"), Some(ADA))
    );
    assert_eq!(userinfo(&f, "x.y.z").await.0, 401);
    // Discovery advertises these endpoints.
    let d = common::openid_configuration(&f.c, &f.emu).await;
    assert_eq!(
        d["userinfo_endpoint"],
        format!("{}/oidc/userinfo", f.emu.base_url())
    );
    assert_eq!(
        d["response_types_supported"],
        json!(["code", "code id_token"])
    );
    // Logout: back to a registered URI, and the next silent sign-in needs a user again.
    let out = b
        .get(&format!(
            "/{}/oauth2/v2.0/logout?{}",
            f.tid,
            serde_urlencoded::to_string([("post_logout_redirect_uri", WEB_REDIRECT)]).unwrap()
        ))
        .await;
    assert_eq!((out.status, out.location.as_str()), (302, WEB_REDIRECT));
    let r = b
        .get(&f.web_url("openid profile", &[("prompt", "none")]))
        .await;
    assert_eq!(r.params()["error"], "login_required");
    let out = b
        .get(&format!(
            "/{}/oauth2/v2.0/logout?post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F",
            f.tid
        ))
        .await;
    assert!(
        out.status == 200 && out.body.contains("id=\"signedout\""),
        "unregistered target: no redirect"
    );
    f.emu.shutdown().await;
}

#[tokio::test]
async fn default_scope_stands_for_the_registered_permissions() {
    let f = fixture(2).await;
    let mut b = Browser::new(&f.emu);
    let scope = format!("{API_URI}/.default openid");
    let page = b.get(&f.web_url(&scope, &[])).await;
    let consent = b.sign_in(&f.tid, &page, ADA, PW).await;
    // The consent page lists what the registration requires (requiredResourceAccess).
    assert!(
        consent.body.contains("patient.all.read") && !consent.body.contains("system.all.write"),
        "{}",
        consent.body
    );
    let done = b.consent(&f.tid, &consent, true, false).await;
    let code = done.params()["code"].clone();
    let (st, v) = redeem_web(&f, &code).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["scope"],
        format!("{API_URI}/user_impersonation {API_URI}/patient.all.read {API_URI}/.default")
    );
    assert!(
        v.get("refresh_token").is_none(),
        "no offline_access, no refresh token on v2"
    );
    let at = verify_with_jwks(&f.c, &f.emu, v["access_token"].as_str().unwrap()).await;
    assert_eq!(at["scp"], "user_impersonation patient.all.read");
    f.emu.shutdown().await;
}

#[tokio::test]
async fn a_role_assigned_to_the_user_directly_is_in_the_token() {
    let f = fixture(2).await;
    let bob = f.g.get(&format!("/users/{BOB}")).await;
    assert_eq!(bob.status, 200, "{}", bob.body);
    let bob_id = bob.body["id"].as_str().unwrap().to_string();
    let a =
        f.g.post(
            &format!("/servicePrincipals/{}/appRoleAssignedTo", f.api_sp),
            json!({"principalId": bob_id, "resourceId": f.api_sp, "appRoleId": f.role_id}),
        )
        .await;
    assert_eq!(
        (a.status, a.body["principalType"].as_str()),
        (201, Some("User")),
        "{}",
        a.body
    );
    let mine =
        f.g.get(&format!("/users/{bob_id}/appRoleAssignments"))
            .await;
    assert_eq!(
        mine.body["value"].as_array().map(Vec::len),
        Some(1),
        "{}",
        mine.body
    );
    let users = f.g.get("/users").await;
    assert_eq!(users.body["value"].as_array().map(Vec::len), Some(3));
    let mut b = Browser::new(&f.emu);
    let scope = format!("{API_URI}/user_impersonation");
    let page = b.get(&f.web_url(&scope, &[])).await;
    let consent = b.sign_in(&f.tid, &page, BOB, PW).await;
    let done = b.consent(&f.tid, &consent, true, false).await;
    let code = done.params()["code"].clone();
    let (st, v) = redeem_web(&f, &code).await;
    assert_eq!(st, 200, "{v}");
    let at = verify_with_jwks(&f.c, &f.emu, v["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (at["roles"].clone(), at["oid"].as_str()),
        (json!(["clinician"]), Some(bob_id.as_str()))
    );
    // Ada holds no assignment (her group neither, here): no roles claim.
    let mut b = Browser::new(&f.emu);
    let p = code_for(&f, &mut b, &f.web, WEB_REDIRECT, &[]).await;
    let (_, v) = redeem_web(&f, &p["code"]).await;
    let at = verify_with_jwks(&f.c, &f.emu, v["access_token"].as_str().unwrap()).await;
    assert!(at.get("roles").is_none(), "{at}");
    f.emu.shutdown().await;
}

/// A code is redeemed once, also when requests race for it (issue 23 item 7: the entry was copied,
/// checked and marked redeemed later under a new lock, so two concurrent requests both got tokens).
/// Entra: AADSTS54005 for every redemption but the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_is_redeemed_once_even_by_concurrent_requests() {
    let f = fixture(2).await;
    let mut b = Browser::new(&f.emu);
    let (verifier, challenge) = pkce();
    let scope = format!("{API_URI}/user_impersonation openid offline_access");
    let params = [
        ("login_hint", ADA),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let page = b.get(&f.web_url(&scope, &params)).await;
    let consent = b.sign_in(&f.tid, &page, ADA, PW).await;
    let done = b.consent(&f.tid, &consent, true, false).await;
    let code = done.params()["code"].clone();
    let form: Vec<(String, String)> = [
        ("grant_type", "authorization_code"),
        ("client_id", f.web.as_str()),
        ("client_secret", f.web_secret.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", WEB_REDIRECT),
        ("code_verifier", verifier.as_str()),
        ("scope", scope.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let url = format!("{}{}/oauth2/v2.0/token", f.emu.authority_host(), f.tid);
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(16));
    let racers: Vec<_> = (0..16)
        .map(|_| {
            let (c, url, form, start) = (f.c.clone(), url.clone(), form.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let r = c.post(url).form(&form).send().await.unwrap();
                let st = r.status().as_u16();
                (st, r.json::<serde_json::Value>().await.unwrap_or_default())
            })
        })
        .collect();
    let mut ok = 0;
    for r in racers {
        let (st, v) = r.await.unwrap();
        if st == 200 {
            ok += 1;
        } else {
            assert_err(st, &v, 400, "invalid_grant", 54005);
        }
    }
    assert_eq!(
        ok, 1,
        "exactly one of 16 concurrent redemptions gets tokens"
    );
}
