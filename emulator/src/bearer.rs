//! The one bearer-token check every resource surface uses (Graph, ARM, the FHIR stand-ins): a
//! token the emulator signed, for an audience the surface accepts, within its lifetime, from a
//! tenant it knows. Each surface words a [`Refusal`] its own way (Graph's
//! `InvalidAuthenticationToken` texts, ARM's error codes).
use crate::crypto::Jwt;
use crate::request::Caller;
use crate::state::{Shared, now_secs};
use http::HeaderMap;
use serde_json::Value;

/// Why a bearer token was refused, in the order the checks run.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// Not a JWT.
    Malformed,
    /// Not signed by the emulator's key.
    Signature,
    /// For another audience (the token's `aud`).
    Audience(String),
    /// Expired (or, where checked, not yet valid).
    Lifetime,
    /// From a tenant the emulator does not hold.
    Tenant,
}

/// The token after `Bearer ` (or `bearer `) in the `Authorization` header, if it has that form.
pub fn token(headers: &HeaderMap) -> Option<&str> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    auth.strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
}

/// What a surface accepts.
pub struct Rules<'a> {
    pub audience_ok: &'a dyn Fn(&str) -> bool,
    /// `nbf` may lie this far in the future (None: `nbf` is not checked).
    pub nbf_skew_secs: Option<i64>,
}

/// Checks `token`; the caller and the token's `exp`.
pub fn check(sh: &Shared, token: &str, rules: &Rules) -> Result<(Caller, i64), Refusal> {
    let jwt = Jwt::parse(token).map_err(|_| Refusal::Malformed)?;
    if jwt.verify(&sh.signing.public).is_err() {
        return Err(Refusal::Signature);
    }
    let aud = jwt.claim_str("aud").unwrap_or("");
    if !(rules.audience_ok)(aud) {
        return Err(Refusal::Audience(aud.to_string()));
    }
    let now = now_secs();
    let exp = jwt.claim_i64("exp").unwrap_or(0);
    let early = rules
        .nbf_skew_secs
        .is_some_and(|skew| jwt.claim_i64("nbf").unwrap_or(0) > now + skew);
    if exp < now || early {
        return Err(Refusal::Lifetime);
    }
    let tenant = jwt.claim_str("tid").unwrap_or("").to_string();
    if !sh.store.lock().unwrap().tenants.contains_key(&tenant) {
        return Err(Refusal::Tenant);
    }
    let roles = jwt.claims["roles"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let caller = Caller {
        tenant,
        oid: jwt.claim_str("oid").unwrap_or("").into(),
        app_id: jwt
            .claim_str("appid")
            .or(jwt.claim_str("azp"))
            .unwrap_or("")
            .into(),
        roles,
    };
    Ok((caller, exp))
}
