//! `POST /applications/{id}/addKey`: a new certificate added with proof that the caller holds the
//! private key of one of the application's valid certificates (Learn `application-addkey`), checked
//! against the application's app management policy like any new key credential.
use super::credentials::normalise_key_credentials;
use super::errors::{GErr, R, denied, err, invalid_value};
use super::lookup::find_app;
use super::odata::entity;
use super::pattern::Params;
use super::policy_rules::{self, Subject};
use super::req::Req;
use crate::crypto::{self, Jwt};
use crate::state::app_policies::Kind;
use crate::state::store::{self, AppRec, Tenant};
use crate::state::views::GraphObject;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// The proof's audience: "Audience needs to be 00000002-0000-0000-c000-000000000000" (Learn
/// `application-addkey`).
const PROOF_AUDIENCE: &str = "00000002-0000-0000-c000-000000000000";
/// "The token lifespan should not exceed 10 minutes" (exp − nbf).
const PROOF_LIFESPAN_SECS: i64 = 600;

/// 200 with the new key credential (`key` hidden, as Graph shows key credentials). The caller may
/// change the application (Application.ReadWrite.All, OwnedBy as an owner), or is the application
/// itself: "applications can use this API … to roll its own keys" without a permission (Learn).
pub fn add_key(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let i = find_app(r, t, p.id("app"), false)?;
    let app = &t.apps[i];
    if !r.can_write(&app.owners) && !r.caller.app_id.eq_ignore_ascii_case(app.app_id()) {
        return Err(denied());
    }
    let new = match &r.body["keyCredential"] {
        Value::Object(_) => r.body["keyCredential"].clone(),
        _ => return Err(invalid_value("keyCredential", "Application")),
    };
    check_proof(app, r.body["proof"].as_str(), r.now)?;
    let mut rec = app.clone();
    let mut keys: Vec<Value> = store::app_public_view(app)["keyCredentials"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    keys.push(new);
    normalise_key_credentials(&mut rec, &Value::Array(keys), r.now)?;
    let subject = Subject::of(&app.body, Kind::Application);
    policy_rules::check_new_keys(
        t,
        &subject,
        &rec.body["keyCredentials"],
        &app.body["keyCredentials"],
    )?;
    let added = rec.body["keyCredentials"]
        .as_array()
        .and_then(|l| l.last().cloned())
        .unwrap_or_default();
    t.apps[i] = rec;
    super::delta::app_touched(r, t, i, &["keyCredentials"]);
    Ok(entity(r, "microsoft.graph.keyCredential", &added))
}

/// The proof: signed by one of the application's certificates that has not expired, `aud` the
/// value above, `iss` the application's object id (the docs' sample signs with `objectId`), now
/// between `nbf` and `exp`, at most 10 minutes apart. Without a valid certificate "[applications]
/// won't be able to use this service action". A missing proof is refused as
/// microsoftgraph/msgraph-sdk-powershell#779 saw it (403 "Insufficient privileges to complete the
/// operation."); a proof that does not verify as microsoftgraph/microsoft-graph-docs#10686 and
/// #14626 saw it (401 `Authentication_MissingOrMalformed` "Access Token missing or malformed.").
/// Which answer each other failure gets is not recorded; [INF] the latter.
fn check_proof(app: &AppRec, proof: Option<&str>, now: DateTime<Utc>) -> Result<(), GErr> {
    let Some(proof) = proof.filter(|p| !p.is_empty()) else {
        return Err(denied());
    };
    let malformed = || {
        err(
            StatusCode::UNAUTHORIZED,
            "Authentication_MissingOrMalformed",
            "Access Token missing or malformed.",
        )
    };
    let jwt = Jwt::parse(proof).map_err(|_| malformed())?;
    let signed_by_valid_cert = app.cert_keys.iter().any(|(key_id, der_b64)| {
        let valid = app
            .key_credentials()
            .any(|c| c.key_id == *key_id && c.end.is_none_or(|e| e > now));
        valid
            && crypto::b64_any(der_b64)
                .and_then(|der| crypto::cert_public_key(&der).ok())
                .is_some_and(|pk| jwt.verify(&pk).is_ok())
    });
    let (nbf, exp) = (jwt.claim_i64("nbf"), jwt.claim_i64("exp"));
    let timely = match (nbf, exp) {
        (Some(nbf), Some(exp)) => {
            let t = now.timestamp();
            nbf - 300 <= t && t <= exp && exp - nbf <= PROOF_LIFESPAN_SECS
        }
        _ => false,
    };
    let claims_ok = jwt.claim_str("aud") == Some(PROOF_AUDIENCE)
        && jwt
            .claim_str("iss")
            .is_some_and(|iss| iss.eq_ignore_ascii_case(app.id()));
    if signed_by_valid_cert && timely && claims_ok {
        Ok(())
    } else {
        Err(malformed())
    }
}
