//! An application's federatedIdentityCredentials: list, create, get, update (or create with
//! `Prefer: create-if-missing`), delete. An item is found by id or by name.
use super::errors::{GErr, R, bad, denied, err, invalid_value, not_found};
use super::lookup::find_app;
use super::odata::{
    check_writable, created, deep_merge, entity, list_response, no_content, with_location,
};
use super::pattern::Params;
use super::req::Req;
use crate::state::random_guid;
use crate::state::store::{AppRec, Tenant, s};
use crate::state::views::GraphObject;
use axum::http::StatusCode;
use serde_json::{Value, json};

const FIC_FIELDS: &[&str] = &[
    "name",
    "issuer",
    "subject",
    "description",
    "audiences",
    "id",
    "claimsMatchingExpression",
];
const MAX_FICS: usize = 20;

/// `{app}` of the route, and the `@odata.context` fragment of its credentials.
fn app(r: &Req, t: &Tenant, p: &Params) -> Result<(usize, String), GErr> {
    let i = find_app(r, t, p.id("app"), false)?;
    let frag = format!(
        "applications('{}')/federatedIdentityCredentials",
        s(&t.apps[i].body, "id")
    );
    Ok((i, frag))
}

fn writable_app(r: &Req, t: &Tenant, p: &Params) -> Result<(usize, String), GErr> {
    let (i, frag) = app(r, t, p)?;
    if !r.can_write(&t.apps[i].owners) {
        return Err(denied());
    }
    Ok((i, frag))
}

fn find(app: &AppRec, k: &str) -> Option<usize> {
    app.fics
        .iter()
        .position(|f| f.id() == k || s(f, "name") == k)
}

pub fn list(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let (i, frag) = app(r, t, p)?;
    if !r.can_read() {
        return Err(denied());
    }
    let items = t.apps[i].fics.clone();
    list_response(
        r,
        &frag,
        items,
        &["name", "issuer", "subject", "audiences", "id"],
    )
}

pub fn create(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let (i, frag) = writable_app(r, t, p)?;
    check_writable(&r.body, FIC_FIELDS, "FederatedIdentityCredential")?;
    let f = add(&mut t.apps[i], &r.body)?;
    let resp = created(r, &format!("{frag}/$entity"), &f);
    let location = format!(
        "{}/v2/{}/federatedIdentityCredentials/{}",
        r.sh.base_url,
        t.id,
        s(&f, "id")
    );
    Ok(with_location(resp, &location))
}

/// Validates `body` as a new credential of `app` and adds it under a new id.
fn add(app: &mut AppRec, body: &Value) -> Result<Value, GErr> {
    fic_valid(body)?;
    if app.fics.len() >= MAX_FICS {
        return Err(bad(format!(
            "The maximum number of federated identity credentials ({MAX_FICS}) for this application has been reached."
        )));
    }
    check_unique(app, body, None)?;
    let f = fic_entity(body, &random_guid());
    app.fics.push(f.clone());
    Ok(f)
}

pub fn get(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let (i, frag) = app(r, t, p)?;
    if !r.can_read() {
        return Err(denied());
    }
    let k = p.id("fic").value();
    let app = &t.apps[i];
    let j = find(app, k).ok_or_else(|| not_found(k))?;
    Ok(entity(r, &format!("{frag}/$entity"), &app.fics[j]))
}

/// PATCH: changes the credential (its name stays); none of that name is created with
/// `Prefer: create-if-missing`.
pub fn update(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let (i, frag) = writable_app(r, t, p)?;
    check_writable(&r.body, FIC_FIELDS, "FederatedIdentityCredential")?;
    let k = p.id("fic").value();
    let app = &mut t.apps[i];
    match find(app, k) {
        Some(j) => {
            let mut f = app.fics[j].clone();
            if let Some(n) = r.body.get("name").and_then(Value::as_str)
                && n != s(&f, "name")
            {
                return Err(bad("Property 'name' is read-only and cannot be changed."));
            }
            deep_merge(&mut f, &r.body);
            let f = fic_entity(&f, &s(&app.fics[j], "id"));
            fic_valid(&f)?;
            check_unique(app, &f, Some(j))?;
            app.fics[j] = f;
            Ok(no_content())
        }
        None if r.prefer_create() => {
            let mut body = r.body.clone();
            body["name"] = json!(k);
            let f = add(app, &body)?;
            Ok(created(r, &format!("{frag}/$entity"), &f))
        }
        None => Err(not_found(k)),
    }
}

pub fn delete(r: &Req, t: &mut Tenant, p: &Params) -> R {
    let (i, _) = writable_app(r, t, p)?;
    let k = p.id("fic").value();
    let app = &mut t.apps[i];
    let j = find(app, k).ok_or_else(|| not_found(k))?;
    app.fics.remove(j);
    Ok(no_content())
}

/// name (letters, digits, `-`, `_`), issuer, subject, exactly one audience, description.
fn fic_valid(f: &Value) -> Result<(), GErr> {
    let name = f["name"].as_str().unwrap_or("");
    if name.is_empty()
        || name.chars().count() > 120
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid_value("name", "FederatedIdentityCredential"));
    }
    let issuer = f["issuer"].as_str().unwrap_or("");
    if issuer.is_empty() || issuer.chars().count() > 600 {
        return Err(invalid_value("issuer", "FederatedIdentityCredential"));
    }
    let subject = f["subject"].as_str().unwrap_or("");
    if subject.is_empty() || subject.chars().count() > 600 {
        return Err(invalid_value("subject", "FederatedIdentityCredential"));
    }
    let auds = f["audiences"].as_array().cloned().unwrap_or_default();
    if auds.len() != 1
        || auds[0]
            .as_str()
            .is_none_or(|a| a.is_empty() || a.chars().count() > 600)
    {
        return Err(bad(
            "Invalid value specified for property 'audiences' of resource 'FederatedIdentityCredential'. Exactly one audience is required.",
        ));
    }
    if f["description"]
        .as_str()
        .is_some_and(|d| d.chars().count() > 600)
    {
        return Err(invalid_value("description", "FederatedIdentityCredential"));
    }
    Ok(())
}

/// No other credential (but the one at `skip`) has the name, or the issuer and subject.
fn check_unique(app: &AppRec, f: &Value, skip: Option<usize>) -> Result<(), GErr> {
    for (j, x) in app.fics.iter().enumerate() {
        if Some(j) == skip {
            continue;
        }
        if s(x, "name").eq_ignore_ascii_case(f["name"].as_str().unwrap_or("")) {
            return Err(err(
                StatusCode::CONFLICT,
                "Request_MultipleObjectsWithSameKeyValue",
                format!(
                    "FederatedIdentityCredential with name {} already exists.",
                    s(f, "name")
                ),
            ));
        }
        if s(x, "issuer") == s(f, "issuer") && s(x, "subject") == s(f, "subject") {
            return Err(bad(format!(
                "FederatedIdentityCredential with issuer '{}' and subject '{}' already exists on this application.",
                s(f, "issuer"),
                s(f, "subject")
            )));
        }
    }
    Ok(())
}

fn fic_entity(body: &Value, id: &str) -> Value {
    json!({"id": id, "name": body["name"], "issuer": body["issuer"], "subject": body["subject"],
           "description": body.get("description").cloned().unwrap_or(Value::Null), "audiences": body["audiences"]})
}
