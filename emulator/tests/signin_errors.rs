//! Every AADSTS error of the sign-in: where it shows (Entra's page or the app's redirect URI),
//! its HTTP status, `error` and code; SPA cross-origin rules and CORS; client authentication per
//! platform; hostile input (script injection, duplicated and oversized parameters, forged handles).
mod common;
use common::signin::*;
use serde_json::json;

/// An error shown on Entra's page: 200 HTML, no redirect, the code on the page.
fn assert_page(p: &Page, code: u32) {
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.location.is_empty(), "must not redirect: {}", p.location);
    assert!(
        p.body.contains(&format!("AADSTS{code}: ")),
        "want AADSTS{code}: {}",
        p.body
    );
}

/// An error sent to the redirect URI: `error`, `error_description` with the code, `error_uri`.
fn assert_redirect(p: &Page, redirect: &str, error: &str, code: u32) {
    assert_eq!(p.status, 302, "{}", p.body);
    assert!(p.location.starts_with(redirect), "{}", p.location);
    let q = p.params();
    assert_eq!(q["error"], error, "{q:?}");
    assert!(
        q["error_description"].starts_with(&format!("AADSTS{code}: ")),
        "{q:?}"
    );
    assert_eq!(
        q["error_uri"],
        format!("https://login.microsoftonline.com/error?code={code}")
    );
}

fn code_form<'a>(client: &'a str, code: &'a str, redirect: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("client_id", client),
        ("code", code),
        ("redirect_uri", redirect),
    ]
}

async fn age(f: &Fixture, secs: i64) {
    let r =
        f.c.post(format!("{}/_emulator/sign-in/age", f.emu.base_url()))
            .json(&json!({"seconds": secs}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn errors_shown_on_entras_page_never_reach_the_app() {
    let f = fixture(2).await;
    let mut b = Browser::new(&f.emu);
    let scope = format!("{API_URI}/user_impersonation");
    let q = |client: &str, redirect: &str| {
        vec![
            ("client_id", client.to_string()),
            ("response_type", "code".into()),
            ("redirect_uri", redirect.to_string()),
            ("scope", scope.clone()),
        ]
    };
    let url = |tenant: &str, p: &[(&str, String)]| {
        format!(
            "/{tenant}/oauth2/v2.0/authorize?{}",
            serde_urlencoded::to_string(p).unwrap()
        )
    };
    assert_page(
        &b.get(&url("no-such-tenant.example", &q(&f.web, WEB_REDIRECT)))
            .await,
        90002,
    );
    assert_page(
        &b.get(&url(&f.tid, &q(&common::uuid(), WEB_REDIRECT))).await,
        700016,
    );
    // Redirect URIs match exactly and case-sensitively, per platform.
    assert_page(
        &b.get(&url(
            &f.tid,
            &q(&f.web, "https://portal.contoso.example/SIGNIN-OIDC"),
        ))
        .await,
        50011,
    );
    assert_page(
        &b.get(&url(&f.tid, &q(&f.web, "https://evil.example/signin-oidc")))
            .await,
        50011,
    );
    assert_page(&b.get(&url(&f.tid, &q(&f.spa, WEB_REDIRECT))).await, 50011);
    assert_page(&b.get(&url(&f.tid, &q(&f.web, "not a uri"))).await, 90102);
    let mut no_redirect = q(&f.web, "");
    no_redirect.retain(|(k, _)| *k != "redirect_uri");
    assert_page(&b.get(&url(&f.tid, &no_redirect)).await, 900971);
    let mut no_client = q(&f.web, WEB_REDIRECT);
    no_client.remove(0);
    assert_page(&b.get(&url(&f.tid, &no_client)).await, 900144);
    let mut dup = q(&f.web, WEB_REDIRECT);
    dup.push(("client_id", f.spa.clone()));
    assert_page(&b.get(&url(&f.tid, &dup)).await, 9000411);
    // A single-tenant app at /common.
    assert_page(
        &b.get(&url("common", &q(&f.web, WEB_REDIRECT))).await,
        50194,
    );
    // A forged sign-in form handle.
    let r = b
        .post(
            &format!("/{}/login", f.tid),
            &[("req", "forged"), ("login", ADA), ("passwd", PW)],
        )
        .await;
    assert_page(&r, 50089);
    // Loopback: the port is ignored (RFC 8252), the path is not.
    let r = b
        .get(&url(&f.tid, &q(&f.native, "http://localhost:51234")))
        .await;
    assert!(r.body.contains("id=\"passwd\""), "{}", r.body);
    assert_page(
        &b.get(&url(&f.tid, &q(&f.native, "http://localhost:51234/other")))
            .await,
        50011,
    );
    f.emu.shutdown().await;
}

#[tokio::test]
async fn errors_returned_to_the_redirect_uri() {
    let f = fixture(2).await;
    let mut b = Browser::new(&f.emu);
    let scope = format!("{API_URI}/user_impersonation");
    let with = |extra: &[(&str, &str)], drop: &str| {
        let mut p: Vec<(&str, &str)> = vec![
            ("client_id", &f.web),
            ("response_type", "code"),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", &scope),
            ("state", "keep-me"),
        ];
        p.retain(|(k, _)| *k != drop);
        for (k, v) in extra {
            p.retain(|(x, _)| x != k);
            p.push((k, v));
        }
        authorize_url(&f.tid, &p)
    };
    let cases: Vec<(String, &str, u32)> = vec![
        (with(&[], "response_type"), "invalid_request", 900144),
        (with(&[], "scope"), "invalid_request", 900144),
        (
            with(&[("response_type", "token")], ""),
            "unsupported_response_type",
            700051,
        ),
        (
            with(&[("response_mode", "pigeon")], ""),
            "invalid_request",
            70007,
        ),
        (
            with(&[("prompt", "sometimes")], ""),
            "invalid_request",
            90023,
        ),
        (
            with(&[("scope", &format!("{API_URI}/no.such.scope"))], ""),
            "invalid_client",
            650053,
        ),
        (
            with(&[("scope", "https://nowhere.example/api/x")], ""),
            "invalid_resource",
            500011,
        ),
        (
            with(
                &[(
                    "scope",
                    &format!("{API_URI}/.default {API_URI}/user_impersonation"),
                )],
                "",
            ),
            "invalid_scope",
            70011,
        ),
        (
            with(
                &[
                    ("code_challenge", "x".repeat(43).as_str()),
                    ("code_challenge_method", "S512"),
                ],
                "",
            ),
            "invalid_request",
            50149,
        ),
        (
            with(
                &[
                    ("code_challenge", "short"),
                    ("code_challenge_method", "S256"),
                ],
                "",
            ),
            "invalid_request",
            50147,
        ),
        (
            with(&[("resource", API_URI)], ""),
            "invalid_request",
            901002,
        ),
    ];
    for (url, error, code) in cases {
        let r = b.get(&url).await;
        assert_redirect(&r, WEB_REDIRECT, error, code);
        assert_eq!(r.params()["state"], "keep-me");
    }
    // The SPA has no implicit ID-token setting: hybrid is refused (AADSTS700054).
    let r = b
        .get(&authorize_url(
            &f.tid,
            &[
                ("client_id", &f.spa),
                ("response_type", "code id_token"),
                ("redirect_uri", SPA_REDIRECT),
                ("scope", "openid"),
                ("nonce", "n"),
            ],
        ))
        .await;
    assert_redirect(&r, SPA_REDIRECT, "unsupported_response_type", 700054);
    // An error in a fragment-mode request comes back in the fragment.
    let r = b
        .get(&with(
            &[("response_type", "token"), ("response_mode", "fragment")],
            "",
        ))
        .await;
    assert!(
        r.location.starts_with(&format!("{WEB_REDIRECT}#error=")),
        "{}",
        r.location
    );
    f.emu.shutdown().await;
}

#[tokio::test]
async fn assignment_required_blocks_unassigned_users_and_apps() {
    let f = fixture(2).await;
    let p =
        f.g.patch(
            &format!("/servicePrincipals/{}", f.api_sp),
            json!({"appRoleAssignmentRequired": true}),
        )
        .await;
    assert_eq!(p.status, 204, "{}", p.body);
    let mut b = Browser::new(&f.emu);
    let scope = format!("{API_URI}/user_impersonation");
    let page = b.get(&f.web_url(&scope, &[])).await;
    let r = b.sign_in(&f.tid, &page, ADA, PW).await;
    assert_page(&r, 50105);
    assert!(r.body.contains(ADA));
    // Assigned through her group, she gets in.
    let groups = f.g.get("/groups").await;
    let gid = groups.body["value"][0]["id"].clone();
    let members =
        f.g.get(&format!("/groups/{}/members", gid.as_str().unwrap()))
            .await;
    assert_eq!(members.body["value"][0]["userPrincipalName"], ADA);
    let a =
        f.g.post(
            &format!("/servicePrincipals/{}/appRoleAssignedTo", f.api_sp),
            json!({"principalId": gid, "resourceId": f.api_sp, "appRoleId": f.role_id}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let r = b.get(&f.web_url(&scope, &[])).await;
    assert!(r.body.contains("id=\"permissions\""), "{}", r.body);
    // An app without an assignment gets no app-only token either (AADSTS501051).
    let (st, _, e) = token(
        &f,
        false,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &f.web),
            ("client_secret", &f.web_secret),
            ("scope", &format!("{API_URI}/.default")),
        ],
        &[],
    )
    .await;
    assert_err(st, &e, 400, "invalid_grant", 501051);
    f.emu.shutdown().await;
}

/// Extra form fields, then the expected status, `error` and code.
type Check = (Vec<(&'static str, String)>, u16, &'static str, i64);

#[tokio::test]
async fn code_redemption_errors() {
    let f = fixture(2).await;
    let mut b = Browser::new(&f.emu);
    let (verifier, challenge) = pkce();
    let p = code_for(
        &f,
        &mut b,
        &f.web,
        WEB_REDIRECT,
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let code = p["code"].as_str();
    let send = |extra: Vec<(&'static str, String)>, code: String| {
        let f = &f;
        async move {
            let mut form: Vec<(String, String)> = code_form(&f.web, &code, WEB_REDIRECT)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            for (k, v) in extra {
                form.retain(|(x, _)| x != k);
                if !v.is_empty() {
                    form.push((k.to_string(), v));
                }
            }
            let form: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            token(f, false, &form, &[]).await
        }
    };
    let cs = || ("client_secret", f.web_secret.clone());
    let checks: Vec<Check> = vec![
        (vec![], 401, "invalid_client", 7000218),
        (
            vec![
                cs(),
                (
                    "code_verifier",
                    "wrong-verifier-wrong-verifier-wrong-verifier".into(),
                ),
            ],
            400,
            "invalid_grant",
            50148,
        ),
        (vec![cs()], 400, "invalid_grant", 501481),
        (
            vec![
                cs(),
                ("code_verifier", verifier.clone()),
                ("redirect_uri", "http://localhost/callback".into()),
            ],
            400,
            "invalid_grant",
            50011,
        ),
        (
            vec![
                cs(),
                ("code_verifier", verifier.clone()),
                ("redirect_uri", String::new()),
            ],
            400,
            "invalid_request",
            900144,
        ),
        (
            vec![
                cs(),
                ("code_verifier", verifier.clone()),
                ("code", "forged".into()),
            ],
            400,
            "invalid_grant",
            9002313,
        ),
    ];
    for (extra, status, error, want) in checks {
        let (st, _, e) = send(extra, code.to_string()).await;
        assert_eq!(
            (st, e["error"].as_str().unwrap_or(""), code_of(&e)),
            (status, error, want),
            "{e}"
        );
    }
    // Cross-origin redemption of a web code (AADSTS9002326): readable by the page, as msal-browser
    // reports the AADSTS text (Azure-Samples/ms-identity-javascript-angular-tutorial#37).
    let mut form = code_form(&f.web, code, WEB_REDIRECT);
    form.extend([
        ("client_secret", f.web_secret.as_str()),
        ("code_verifier", verifier.as_str()),
    ]);
    let (st, h, e) = token(
        &f,
        false,
        &form,
        &[("Origin", "https://portal.contoso.example")],
    )
    .await;
    assert_err(st, &e, 400, "invalid_request", 9002326);
    assert_eq!(h.get("access-control-allow-origin").unwrap(), "*");
    // Expired after ten minutes (AADSTS70008), then the right request is refused.
    age(&f, 601).await;
    let (st, _, e) = token(&f, false, &form, &[]).await;
    assert_err(st, &e, 400, "invalid_grant", 70008);
    // Other grants: GET on the token endpoint, an unsupported grant type.
    let r =
        f.c.get(format!(
            "{}{}/oauth2/v2.0/token",
            f.emu.authority_host(),
            f.tid
        ))
        .send()
        .await
        .unwrap();
    let (st, e): (u16, serde_json::Value) = (r.status().as_u16(), r.json().await.unwrap());
    assert_eq!((st, code_of(&e)), (400, 900561));
    let (st, _, e) = token(
        &f,
        false,
        &[
            ("grant_type", "password"),
            ("client_id", &f.native),
            ("username", ADA),
            ("password", PW),
        ],
        &[],
    )
    .await;
    assert_err(st, &e, 400, "unsupported_grant_type", 70003);
    f.emu.shutdown().await;
}

#[tokio::test]
async fn public_clients_and_spas_follow_their_platform_rules() {
    let f = fixture(2).await;
    let mut b = Browser::new(&f.emu);
    // Mobile/desktop: public, so a secret is refused (AADSTS700025); without one it works.
    let p = code_for(&f, &mut b, &f.native, "http://localhost:40111", &[]).await;
    let mut form = code_form(&f.native, &p["code"], "http://localhost:40111");
    let mut with_secret = form.clone();
    with_secret.push(("client_secret", "anything"));
    let (st, _, e) = token(&f, false, &with_secret, &[]).await;
    // The secret is checked first: the native app has none, so it is invalid (7000215).
    assert_eq!((st, code_of(&e)), (401, 7000215));
    form.push(("scope", "openid"));
    let (st, _, v) = token(&f, false, &form, &[]).await;
    assert_eq!(st, 200, "{v}");

    // SPA: PKCE required, cross-origin only, CORS headers, 24 h refresh tokens.
    let (verifier, challenge) = pkce();
    let p = code_for(
        &f,
        &mut b,
        &f.spa,
        SPA_REDIRECT,
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let mut form = code_form(&f.spa, &p["code"], SPA_REDIRECT);
    form.push(("code_verifier", &verifier));
    let origin = [("Origin", "http://localhost:3000")];
    let (st, _, e) = token(&f, false, &form, &[]).await;
    assert_err(st, &e, 400, "invalid_request", 9002327);
    let mut secret_form = form.clone();
    secret_form.push(("client_secret", f.web_secret.as_str()));
    let (st, _, e) = token(&f, false, &secret_form, &origin).await;
    assert_eq!(
        (st, e["error"].as_str().unwrap()),
        (401, "invalid_client"),
        "{e}"
    );
    let (st, h, v) = token(&f, false, &form, &origin).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(h["access-control-allow-origin"], "*");
    let rt = v["refresh_token"].as_str().unwrap().to_string();
    let rform = [
        ("grant_type", "refresh_token"),
        ("client_id", f.spa.as_str()),
        ("refresh_token", rt.as_str()),
    ];
    let (st, _, _) = token(&f, false, &rform, &origin).await;
    assert_eq!(st, 200);
    age(&f, 86_401).await;
    let (st, h, e) = token(&f, false, &rform, &origin).await;
    assert_err(st, &e, 400, "invalid_grant", 700084);
    assert_eq!(
        h["access-control-allow-origin"], "*",
        "a SPA can read its error"
    );
    // A SPA code without PKCE (AADSTS9002325).
    let p = code_for(&f, &mut b, &f.spa, SPA_REDIRECT, &[]).await;
    let (st, _, e) = token(
        &f,
        false,
        &code_form(&f.spa, &p["code"], SPA_REDIRECT),
        &origin,
    )
    .await;
    assert_err(st, &e, 400, "invalid_request", 9002325);
    // The preflight.
    let r =
        f.c.request(
            reqwest::Method::OPTIONS,
            format!("{}{}/oauth2/v2.0/token", f.emu.authority_host(), f.tid),
        )
        .header("Origin", "http://localhost:3000")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type,x-anchormailbox",
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(
        r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("x-anchormailbox")
    );
    assert!(
        r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    f.emu.shutdown().await;
}

#[tokio::test]
async fn public_client_must_not_authenticate_and_web_refresh_tokens_expire() {
    let f = fixture(2).await;
    // The web app: its refresh token lives 90 days (then AADSTS700082).
    let mut b = Browser::new(&f.emu);
    let p = code_for(&f, &mut b, &f.web, WEB_REDIRECT, &[]).await;
    let mut form = code_form(&f.web, &p["code"], WEB_REDIRECT);
    form.push(("client_secret", &f.web_secret));
    let (st, _, v) = token(&f, false, &form, &[]).await;
    assert_eq!(st, 200, "{v}");
    let rt = v["refresh_token"].as_str().unwrap();
    let rform = [
        ("grant_type", "refresh_token"),
        ("client_id", f.web.as_str()),
        ("client_secret", f.web_secret.as_str()),
        ("refresh_token", rt),
    ];
    age(&f, 91 * 86_400).await;
    let (st, _, e) = token(&f, false, &rform, &[]).await;
    assert_err(st, &e, 400, "invalid_grant", 700082);
    // A public client presenting a valid credential: give the native app a secret, then use it.
    let apps =
        f.g.get(&format!("/applications(appId='{}')", f.native))
            .await;
    let pw =
        f.g.post(
            &format!(
                "/applications/{}/addPassword",
                apps.body["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(pw.status, 200, "{}", pw.body);
    let p = code_for(&f, &mut b, &f.native, NATIVE_REDIRECT, &[]).await;
    let mut form = code_form(&f.native, &p["code"], NATIVE_REDIRECT);
    form.push(("client_secret", pw.body["secretText"].as_str().unwrap()));
    let (st, _, e) = token(&f, false, &form, &[]).await;
    assert_err(st, &e, 401, "invalid_client", 700025);
    f.emu.shutdown().await;
}

#[tokio::test]
async fn hostile_input_is_escaped_refused_and_never_logged() {
    let f = fixture(2).await;
    let mut b = Browser::new(&f.emu);
    let scope = format!("{API_URI}/user_impersonation");
    let evil = "\"><script>alert(1)</script><img src=x onerror=alert(2)>";
    let r = b
        .get(&f.web_url(&scope, &[("state", evil), ("login_hint", evil)]))
        .await;
    assert_eq!(r.status, 200);
    assert!(
        !r.body.contains("<script>alert") && !r.body.contains("<img src=x"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("&lt;script&gt;alert(1)"),
        "login_hint shown escaped"
    );
    // Wrong password page reflects the user name escaped too.
    let again = b.sign_in(&f.tid, &r, evil, "x").await;
    assert!(!again.body.contains("<script>alert"), "{}", again.body);
    let consent = b.sign_in(&f.tid, &again, ADA, PW).await;
    let done = b.consent(&f.tid, &consent, true, false).await;
    // Entra strips HTML from state (D-RU).
    let st = &done.params()["state"];
    assert!(!st.contains('<') && st.starts_with("\">"), "{st}");
    // form_post with a hostile state: escaped in the page.
    let r = b
        .get(&f.web_url(&scope, &[("state", evil), ("response_mode", "form_post")]))
        .await;
    assert!(
        !r.body.contains("<img") && !r.body.contains("<script>alert"),
        "{}",
        r.body
    );
    // Oversized state and parameters are an error or an answer, never a 500.
    let big = "s".repeat(12_000);
    let r = b.get(&f.web_url(&scope, &[("state", &big)])).await;
    assert!(r.status < 500, "{}", r.status);
    // A token request in JSON instead of a form: Entra's missing-parameter error.
    let r =
        f.c.post(format!(
            "{}{}/oauth2/v2.0/token",
            f.emu.authority_host(),
            f.tid
        ))
        .json(&json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    let (st, e): (u16, serde_json::Value) = (r.status().as_u16(), r.json().await.unwrap());
    assert_eq!((st, code_of(&e)), (400, 900144));
    // A form that is not a form.
    let r = b
        .http
        .post(format!("{}/{}/login", f.emu.base_url(), f.tid))
        .body("%%%&&&==")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Nothing secret in the call log.
    let calls =
        f.c.get(format!("{}/_emulator/calls", f.emu.base_url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    assert!(
        !calls.contains(PW) && !calls.contains(&done.params()["code"]),
        "call log leaks"
    );
    let state =
        f.c.get(format!("{}/_emulator/state", f.emu.base_url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    assert!(
        !state.contains(PW) && !state.contains("password_sha256"),
        "state leaks a password"
    );
    assert!(state.contains(ADA), "the admin state lists the users");
    f.emu.shutdown().await;
}

#[tokio::test]
async fn a_code_is_redeemed_only_at_its_tenant_and_plain_pkce_works() {
    let f = fixture(2).await;
    // A multi-tenant web app, provisioned in a second tenant that has its own user.
    let tb = common::uuid();
    let r =
        f.c.post(format!("{}/_emulator/tenants", f.emu.base_url()))
            .json(
                &json!({"tenant_id": tb, "verified_domains": ["fabrikam.example"], "apps": [],
            "users": [{"user_principal_name": "zoe@fabrikam.example", "password": PW}]}),
            )
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 201);
    let obj =
        f.g.get(&format!("/applications(appId='{}')", f.web))
            .await
            .body["id"]
            .as_str()
            .unwrap()
            .to_string();
    let p =
        f.g.patch(
            &format!("/applications/{obj}"),
            json!({"signInAudience": "AzureADMultipleOrgs"}),
        )
        .await;
    assert_eq!(p.status, 204, "{}", p.body);
    let gb = common::Graph::new(&f.c, &f.emu, &f.emu.admin_token(&tb));
    assert_eq!(
        gb.post("/servicePrincipals", json!({"appId": f.web}))
            .await
            .status,
        201
    );
    let mut b = Browser::new(&f.emu);
    let page = b
        .get(&authorize_url(
            &tb,
            &[
                ("client_id", &f.web),
                ("response_type", "code"),
                ("redirect_uri", WEB_REDIRECT),
                ("scope", "openid"),
            ],
        ))
        .await;
    let r = b.sign_in(&tb, &page, "zoe@fabrikam.example", PW).await;
    let r = if r.status == 200 {
        b.consent(&tb, &r, true, false).await
    } else {
        r
    };
    let code = r.params()["code"].clone();
    let mut form = code_form(&f.web, &code, WEB_REDIRECT);
    form.push(("client_secret", &f.web_secret));
    // At the home tenant instead of the one that issued it (AADSTS700005).
    let (st, _, e) = token(&f, false, &form, &[]).await;
    assert_err(st, &e, 400, "invalid_grant", 700005);
    // At its own tenant it works, for the user of that tenant.
    let r =
        f.c.post(format!("{}{tb}/oauth2/v2.0/token", f.emu.authority_host()))
            .form(&form)
            .send()
            .await
            .unwrap();
    let (st, v): (u16, serde_json::Value) = (r.status().as_u16(), r.json().await.unwrap());
    assert_eq!(st, 200, "{v}");
    let at = common::verify_with_jwks(&f.c, &f.emu, v["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (at["tid"].as_str(), at["upn"].as_str()),
        (Some(tb.as_str()), Some("zoe@fabrikam.example"))
    );

    // PKCE with the plain method: the verifier is the challenge.
    let (plain, wrong) = ("p".repeat(50), "q".repeat(50));
    let p = code_for(
        &f,
        &mut b,
        &f.web,
        WEB_REDIRECT,
        &[
            ("code_challenge", &plain),
            ("code_challenge_method", "plain"),
        ],
    )
    .await;
    let mut form = code_form(&f.web, &p["code"], WEB_REDIRECT);
    form.extend([
        ("client_secret", f.web_secret.as_str()),
        ("code_verifier", wrong.as_str()),
    ]);
    let (st, _, e) = token(&f, false, &form, &[]).await;
    assert_err(st, &e, 400, "invalid_grant", 50148);
    form.pop();
    form.push(("code_verifier", &plain));
    let (st, _, v) = token(&f, false, &form, &[]).await;
    assert_eq!(st, 200, "{v}");
    f.emu.shutdown().await;
}

#[tokio::test]
async fn device_code_errors_and_sign_in_page_errors() {
    let f = fixture(2).await;
    let scope = format!("{API_URI}/user_impersonation");
    let start_device = || async {
        let (_, d) = devicecode(&f, &f.native, &scope).await;
        (
            d["device_code"].as_str().unwrap().to_string(),
            d["user_code"].as_str().unwrap().to_string(),
        )
    };
    let poll = |dc: String| {
        let f = &f;
        async move {
            let form = [
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", f.native.as_str()),
                ("device_code", dc.as_str()),
            ];
            let (st, _, e) = token(f, false, &form, &[]).await;
            (st, e)
        }
    };
    let (st, e) = poll("no-such-device-code".into()).await;
    assert_err(st, &e, 400, "bad_verification_code", 9002313);
    // The user cancels the consent page: authorization_declined.
    let (dc, uc) = start_device().await;
    let mut b = Browser::new(&f.emu);
    let page = b.post("/devicelogin", &[("otc", &uc)]).await;
    // An unknown user on the sign-in page (AADSTS50034), then the right one.
    let unknown = b.sign_in(&f.tid, &page, "nobody@contoso.example", PW).await;
    assert!(
        unknown.body.contains("AADSTS50034") && unknown.body.contains("id=\"passwd\""),
        "{}",
        unknown.body
    );
    let consent = b.sign_in(&f.tid, &unknown, ADA, PW).await;
    let cancelled = b.consent(&f.tid, &consent, false, false).await;
    assert_page(&cancelled, 65004);
    let (st, e) = poll(dc).await;
    assert_err(st, &e, 400, "authorization_declined", 70000);
    // Fifteen minutes later the device code has expired (AADSTS70020).
    let (dc, _) = start_device().await;
    age(&f, 901).await;
    let (st, e) = poll(dc).await;
    assert_err(st, &e, 400, "expired_token", 70020);
    // v1: a resource that is not in the tenant (AADSTS50001, back to the app).
    let url = format!(
        "/{}/oauth2/authorize?{}",
        f.tid,
        serde_urlencoded::to_string([
            ("client_id", f.web.as_str()),
            ("response_type", "code"),
            ("redirect_uri", WEB_REDIRECT),
            ("resource", "https://nowhere.example")
        ])
        .unwrap()
    );
    assert_redirect(&b.get(&url).await, WEB_REDIRECT, "invalid_resource", 50001);
    f.emu.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_an_answer_never_a_500() {
    let f = fixture(2).await;
    let mut b = Browser::new(&f.emu);
    let t = f.tid.clone();
    let gets = [
        format!("/{t}/oauth2/v2.0/authorize?%ZZ=%"),
        format!("/{t}/oauth2/v2.0/authorize?client_id=%FF%FE&redirect_uri=%00"),
        format!(
            "/{t}/oauth2/v2.0/authorize?client_id={}&redirect_uri=https%3A%2F%2Fportal.contoso.example%2Fsignin-oidc%0d%0aSet-Cookie%3a+x%3dy&response_type=code&scope=openid",
            f.web
        ),
        format!(
            "/{t}/oauth2/v2.0/authorize?client_id={}&redirect_uri={}&response_type=code&scope=openid&prompt=none&state=%0d%0a",
            f.web, WEB_REDIRECT
        ),
        format!(
            "/{t}/oauth2/v2.0/authorize?client_id={}&redirect_uri={}&response_type=code&scope=openid&code_challenge=",
            f.web, WEB_REDIRECT
        ),
        format!(
            "/{t}/oauth2/authorize?client_id={}&redirect_uri={}&response_type=code&resource=",
            f.web, WEB_REDIRECT
        ),
        "/common/oauth2/v2.0/authorize?client_id=00000000-0000-0000-0000-000000000000".into(),
        format!("/{t}/oauth2/v2.0/logout"),
        "/nowhere/oauth2/v2.0/logout?post_logout_redirect_uri=x".into(),
        "/devicelogin".into(),
        "/oidc/userinfo".into(),
    ];
    for g in &gets {
        let r = b.get(g).await;
        assert!(r.status < 500, "{g}: {} {}", r.status, r.body);
    }
    let posts: [(String, &[(&str, &str)]); 8] = [
        (format!("/{t}/login"), &[]),
        (
            format!("/{t}/login"),
            &[("req", ""), ("login", ""), ("passwd", "")],
        ),
        (format!("/{t}/consent"), &[("req", "x"), ("accept", "true")]),
        ("/devicelogin".into(), &[]),
        (format!("/{t}/oauth2/v2.0/devicecode"), &[]),
        (
            format!("/{t}/oauth2/v2.0/token"),
            &[("grant_type", "authorization_code")],
        ),
        (
            format!("/{t}/oauth2/v2.0/token"),
            &[("grant_type", "refresh_token"), ("client_id", "not-a-guid")],
        ),
        (
            format!("/{t}/oauth2/v2.0/authorize"),
            &[("client_id", "x"), ("client_id", "y")],
        ),
    ];
    for (p, form) in &posts {
        let r = b.post(p, form).await;
        assert!(r.status < 500, "{p}: {} {}", r.status, r.body);
    }
    // CR/LF in the redirect URI never reaches a header.
    let r = b.get(&gets[2]).await;
    assert!(r.headers.get("x").is_none() && r.location.is_empty());
    f.emu.shutdown().await;
}
