//! Enforcing app management policies where Entra enforces them: a new password (addPassword), new
//! key credentials (create, PATCH, upsert), and newly added identifier URIs (create, PATCH, upsert),
//! each against the restrictions that apply to the object (`state::app_policies`). Sources:
//! docs/entra-facts/lifecycle-and-policies.md §3. Policies "block" only new credentials and
//! updates; existing ones keep working (Learn `applicationauthenticationmethodpolicy`).
use super::errors::{GErr, bad, err};
use crate::state::app_policies::{Applying, Kind};
use crate::state::store::{Tenant, parse_time};
use crate::state::views::GraphObject;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};

/// The object a credential or URI is added to.
pub struct Subject<'a> {
    pub object_id: &'a str,
    pub kind: Kind,
    /// Its `createdDateTime` (None: not recorded).
    pub created: Option<DateTime<Utc>>,
}

impl<'a> Subject<'a> {
    /// The application or service principal `body` (its `id` and `createdDateTime`).
    pub fn of(body: &'a Value, kind: Kind) -> Self {
        Subject {
            object_id: body["id"].as_str().unwrap_or(""),
            kind,
            created: body["createdDateTime"].as_str().and_then(parse_time),
        }
    }

    /// When the restrictions compare against. "Service principals with a createdDateTime null are
    /// treated as having been created on 01/01/2019" (Learn `applicationauthenticationmethodpolicy`);
    /// an application without one is [INF] treated as new.
    fn created_at(&self) -> Option<DateTime<Utc>> {
        match (self.created, self.kind) {
            (Some(c), _) => Some(c),
            (None, Kind::ServicePrincipal) => Utc.with_ymd_and_hms(2019, 1, 1, 0, 0, 0).single(),
            (None, Kind::Application) => None,
        }
    }
}

/// A restriction (password, key or identifier-URI) that is evaluated for this subject: its state
/// is not `disabled` ("If disabled, the restriction isn't evaluated or enforced"; an omitted state
/// is [INF] enabled: the docs' older examples omit it) and the subject was created on or after
/// `restrictForAppsCreatedAfterDateTime`, or that is null ("null … applies to all", Learn
/// `resources/passwordcredentialconfiguration`).
fn in_force(restriction: &Value, subject: &Subject) -> bool {
    if !restriction.is_object() || restriction["state"].as_str() == Some("disabled") {
        return false;
    }
    match restriction["restrictForAppsCreatedAfterDateTime"]
        .as_str()
        .and_then(parse_time)
    {
        None => true,
        Some(after) => subject.created_at().is_none_or(|c| c >= after),
    }
}

/// ISO 8601 duration as Graph's `Edm.Duration` takes it (`P90D`, `P4DT12H30M5S`): days and time;
/// years and months have no fixed length and are not accepted.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let rest = s.strip_prefix('P')?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut total = Duration::zero();
    let mut any = false;
    for (part, units) in [
        (date, &[('D', 86_400.0)][..]),
        (time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)][..]),
    ] {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
                continue;
            }
            let secs = units.iter().find(|(u, _)| *u == c)?.1;
            total += Duration::milliseconds((num.parse::<f64>().ok()? * secs * 1000.0) as i64);
            num.clear();
            any = true;
        }
        if !num.is_empty() {
            return None;
        }
    }
    any.then_some(total)
}

/// The restriction of `kind` among `list`, if it is in force.
fn restriction<'a>(list: &'a [Value], kind: &str, subject: &Subject) -> Option<&'a Value> {
    list.iter()
        .find(|r| r["restrictionType"].as_str() == Some(kind) && in_force(r, subject))
}

/// 400 `CredentialTypeNotAllowedAsPerAppPolicy` "Credential type not allowed as per assigned
/// policy": code and text from Microsoft's Teams Toolkit (`aadErrorCode`,
/// OfficeDev/microsoft-365-agents-toolkit) and scripts matching it. Status [INF] 400 as the
/// lifetime error's; the policy id in the text ([UNK] whether Entra names it) is added as the
/// lifetime error does, so a client can name the policy.
fn type_not_allowed(policy_id: &str) -> GErr {
    err(
        StatusCode::BAD_REQUEST,
        "CredentialTypeNotAllowedAsPerAppPolicy",
        format!("Credential type not allowed as per assigned policy '{policy_id}'."),
    )
}

/// 400 `CredentialInvalidLifetimeAsPerAppPolicy` with `details[InvalidKeyEndDate]`, the body
/// Azure/azure-cli#28522 recorded for addPassword (also OfficeDev/microsoft-365-agents-toolkit#10998,
/// Azure/azure-cli#28040). [INF] the same for a certificate over `asymmetricKeyLifetime`.
fn lifetime_exceeded(policy_id: &str) -> GErr {
    let message = format!(
        "Credential lifetime exceeds the max value allowed as per assigned policy '{policy_id}'."
    );
    let mut e = bad(message.clone());
    e.code = "CredentialInvalidLifetimeAsPerAppPolicy".into();
    e.details =
        Some(json!([{"code": "InvalidKeyEndDate", "message": message, "target": "EndDate"}]));
    e
}

/// `end - start` over the restriction's `maxLifetime` ([INF]: the cap is on the validity period;
/// "A 1-year secret was refused, a 7-day one accepted").
fn too_long(r: &Value, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    r["maxLifetime"]
        .as_str()
        .and_then(parse_duration)
        .is_some_and(|max| end - start > max)
}

/// The restrictions on `subject`, if its policy is enabled.
fn applying(t: &Tenant, subject: &Subject) -> Option<Applying> {
    t.app_policies.applying(subject.object_id, subject.kind)
}

/// A new password credential (`addPassword` on an application or a service principal):
/// `passwordAddition` blocks it, `passwordLifetime` caps its validity. `customPasswordAddition`
/// blocks only secret text the client supplies, which addPassword never takes.
pub fn check_password(
    t: &Tenant,
    subject: &Subject,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(), GErr> {
    let Some(a) = applying(t, subject) else {
        return Ok(());
    };
    if restriction(&a.password_credentials, "passwordAddition", subject).is_some() {
        return Err(type_not_allowed(&a.policy_id));
    }
    if let Some(r) = restriction(&a.password_credentials, "passwordLifetime", subject)
        && too_long(r, start, end)
    {
        return Err(lifetime_exceeded(&a.policy_id));
    }
    Ok(())
}

/// A new password on a service principal (`POST /servicePrincipals/{id}/addPassword`), against
/// `servicePrincipalRestrictions` or its assigned policy, before the secret is added.
pub fn check_sp_password(
    t: &Tenant,
    sp: &Value,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(), GErr> {
    check_password(t, &Subject::of(sp, Kind::ServicePrincipal), start, end)
}

/// Key credentials in `new` whose keyId `old` does not have: certificates against
/// `asymmetricKeyLifetime` (in `keyCredentials`), symmetric keys against `symmetricKeyAddition`
/// and `symmetricKeyLifetime` (in `passwordCredentials`, Learn `resources/passwordcredentialconfiguration`).
pub fn check_new_keys(t: &Tenant, subject: &Subject, new: &Value, old: &Value) -> Result<(), GErr> {
    let Some(a) = applying(t, subject) else {
        return Ok(());
    };
    let old_ids: Vec<&str> = old
        .as_array()
        .map(|l| l.iter().filter_map(|k| k["keyId"].as_str()).collect())
        .unwrap_or_default();
    for k in new.as_array().into_iter().flatten() {
        if old_ids.contains(&k["keyId"].as_str().unwrap_or("")) {
            continue;
        }
        let at = |f: &str| k[f].as_str().and_then(parse_time);
        let (Some(start), Some(end)) = (at("startDateTime"), at("endDateTime")) else {
            continue;
        };
        if k["type"].as_str() == Some("Symmetric") {
            if restriction(&a.password_credentials, "symmetricKeyAddition", subject).is_some() {
                return Err(type_not_allowed(&a.policy_id));
            }
            if let Some(r) = restriction(&a.password_credentials, "symmetricKeyLifetime", subject)
                && too_long(r, start, end)
            {
                return Err(lifetime_exceeded(&a.policy_id));
            }
        } else if let Some(r) = restriction(&a.key_credentials, "asymmetricKeyLifetime", subject)
            && too_long(r, start, end)
        {
            return Err(lifetime_exceeded(&a.policy_id));
        }
    }
    Ok(())
}

/// The application's identifier URIs against `identifierUris` of its policy: only URIs `old` does
/// not have ("newly added URIs"; "Existing identifier URIs already configured on the Entra app won't
/// be affected", Learn `identifier-uri-restrictions`), unless the update moves the app from v2 to
/// v1 tokens: then every URI, as "once the app has been updated to the v2.0 token format, it won't
/// be able to switch back to v1.0 tokens if it has custom identifier URIs configured, unless it's
/// been granted an exemption" (same page's troubleshooting text, microsoft/entra-apps-identifier-uri-protection).
pub fn check_identifier_uris(
    t: &Tenant,
    subject: &Subject,
    app: &Value,
    old: Option<&Value>,
) -> Result<(), GErr> {
    let Some(a) = applying(t, subject) else {
        return Ok(());
    };
    let v2 = |v: &Value| v["api"]["requestedAccessTokenVersion"].as_i64() == Some(2);
    let leaving_v2 = old.is_some_and(v2) && !v2(app);
    let old_uris: Vec<String> = old
        .map(|o| o.identifier_uris().map(norm).collect())
        .unwrap_or_default();
    let checked: Vec<&str> = app
        .identifier_uris()
        .filter(|u| leaving_v2 || !old_uris.contains(&norm(u)))
        .collect();
    if checked.is_empty() {
        return Ok(());
    }
    let saml = t
        .sps
        .iter()
        .find(|sp| sp.app_id() == app.app_id())
        .is_some_and(|sp| sp.body["preferredSingleSignOnMode"].as_str() == Some("saml"));
    let ctx = UriContext {
        app_id: app.app_id().to_ascii_lowercase(),
        tenant_id: t.id.to_ascii_lowercase(),
        domains: &t.domains,
    };
    for (name, allowed, refusal) in [
        (
            "uriAdditionWithoutUniqueTenantIdentifier",
            has_unique_tenant_identifier as fn(&UriContext, &str) -> bool,
            without_tenant_identifier as fn(&str) -> GErr,
        ),
        ("nonDefaultUriAddition", is_default_uri, non_default),
    ] {
        let r = &a.identifier_uris[name];
        let exempt = (v2(app) && r["excludeAppsReceivingV2Tokens"] == json!(true))
            || (saml && r["excludeSaml"] == json!(true));
        if !in_force(r, subject) || exempt {
            continue;
        }
        if let Some(u) = checked.iter().find(|u| !allowed(&ctx, u)) {
            return Err(refusal(u));
        }
    }
    Ok(())
}

/// An application as a create, PATCH or upsert would store it (`old`: before; None on create):
/// its new identifier URIs and its new key credentials.
pub fn check_app(t: &Tenant, app: &Value, old: Option<&Value>) -> Result<(), GErr> {
    let subject = Subject::of(app, Kind::Application);
    check_identifier_uris(t, &subject, app, old)?;
    let no_keys = json!([]);
    let old_keys = old.map_or(&no_keys, |o| &o["keyCredentials"]);
    check_new_keys(t, &subject, &app["keyCredentials"], old_keys)
}

fn norm(u: &str) -> String {
    u.trim_end_matches('/').to_ascii_lowercase()
}

struct UriContext<'a> {
    app_id: String,
    tenant_id: String,
    domains: &'a [String],
}

/// The secure patterns of Learn `identifier-uri-restrictions` (include
/// `entra-identifier-uri-patterns`) and `resources/identifieruriconfiguration`: `api://{appId}`,
/// `api://{appId}/string`, `api://{tenantId}/string`, `{scheme}://string/{tenantId|appId}`,
/// `https://{verified or initial domain}/path`, `{scheme}://{sub}.{verified domain}[/path]`.
/// A bare verified domain without a path is in neither list, so it is refused.
fn has_unique_tenant_identifier(c: &UriContext, uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    let Some((_, rest)) = lower.split_once("://") else {
        return false;
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = host.split(':').next().unwrap_or(host);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let is_id = |x: &str| x == c.app_id || x == c.tenant_id;
    host == c.app_id
        || (host == c.tenant_id && !segments.is_empty())
        || segments.iter().any(|s| is_id(s))
        || c.domains.iter().any(|d| {
            let d = d.to_ascii_lowercase();
            (host == d && !segments.is_empty()) || host.ends_with(&format!(".{d}"))
        })
}

/// `api://{appId}` or `api://{tenantId}/{appId}` (Learn `resources/identifieruriconfiguration`).
fn is_default_uri(c: &UriContext, uri: &str) -> bool {
    let u = norm(uri);
    u == format!("api://{}", c.app_id) || u == format!("api://{}/{}", c.tenant_id, c.app_id)
}

/// The text is Learn's (`identifier-uri-restrictions`, "Policy behavior"); the code
/// `InvalidUniqueTenantIdentifierAsPerAppPolicy` is what clients meet (several public Terraform,
/// Bicep and script files, 2025–2026, quote it with that text). Status [INF] 400, as every other
/// `…AsPerAppPolicy` refusal recorded.
fn without_tenant_identifier(uri: &str) -> GErr {
    err(
        StatusCode::BAD_REQUEST,
        "InvalidUniqueTenantIdentifierAsPerAppPolicy",
        format!(
            "Failed to add identifier URI {uri}. All newly added URIs must contain a tenant verified domain, tenant ID, or app ID, as per the default tenant policy of your organization. See https://aka.ms/identifier-uri-addition-error for more information on this error."
        ),
    )
}

/// The text is microsoft/entra-apps-identifier-uri-protection's (`EnableAlternateRestriction.md`,
/// the troubleshooting page). No public source names its code: `InvalidNonDefaultUriAsPerAppPolicy`
/// is [INF], built as its sibling's is; status [INF] 400.
fn non_default(uri: &str) -> GErr {
    err(
        StatusCode::BAD_REQUEST,
        "InvalidNonDefaultUriAsPerAppPolicy",
        format!(
            "The newly added URI {uri} must comply with the format 'api://{{appId}}' or 'api://{{tenantId}}/{{appId}}' as per the default app management policy of your organization. If the requestedAccessTokenVersion is set to 2, this restriction may not apply. See https://aka.ms/identifier-uri-addition-error for more information on this error."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_principal_passwords_follow_service_principal_restrictions() {
        let mut t = Tenant::new("72f988bf-0000-4000-8000-000000000001", vec![], false);
        let sp = t.sps[0].body.clone();
        let now = Utc::now();
        assert!(check_sp_password(&t, &sp, now, now + Duration::days(730)).is_ok());
        t.app_policies.default["servicePrincipalRestrictions"]["passwordCredentials"] =
            json!([{"restrictionType": "passwordLifetime", "maxLifetime": "P90D"}]);
        let e = check_sp_password(&t, &sp, now, now + Duration::days(730)).unwrap_err();
        assert_eq!(e.code, "CredentialInvalidLifetimeAsPerAppPolicy");
        assert!(check_sp_password(&t, &sp, now, now + Duration::days(90)).is_ok());
        t.app_policies.default["applicationRestrictions"]["passwordCredentials"] =
            json!([{"restrictionType": "passwordAddition"}]);
        assert!(
            check_sp_password(&t, &sp, now, now + Duration::days(90)).is_ok(),
            "applicationRestrictions are the applications'"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("P90D"), Some(Duration::days(90)));
        assert_eq!(
            parse_duration("P4DT12H30M5S"),
            Some(Duration::seconds(4 * 86400 + 12 * 3600 + 30 * 60 + 5))
        );
        assert_eq!(parse_duration("PT1.5S"), Some(Duration::milliseconds(1500)));
        for bad in ["P1Y", "90D", "P", "P9", "PT5X"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn secure_identifier_uri_patterns() {
        let domains = vec![
            "contoso.onmicrosoft.com".to_string(),
            "contoso.example".into(),
        ];
        let c = UriContext {
            app_id: "00001111-aaaa-2222-bbbb-3333cccc4444".into(),
            tenant_id: "aaaabbbb-0000-cccc-1111-dddd2222eeee".into(),
            domains: &domains,
        };
        for ok in [
            "api://00001111-aaaa-2222-bbbb-3333cccc4444",
            "api://aaaabbbb-0000-cccc-1111-dddd2222eeee/00001111-aaaa-2222-bbbb-3333cccc4444",
            "api://aaaabbbb-0000-cccc-1111-dddd2222eeee/api",
            "api://productapi/00001111-aaaa-2222-bbbb-3333cccc4444",
            "https://contoso.onmicrosoft.com/productsapi",
            "https://contoso.example/productsapi",
            "https://fhir.contoso.example",
            "https://FHIR.contoso.example/r4",
            "api://contoso.example/productsapi",
        ] {
            assert!(has_unique_tenant_identifier(&c, ok), "{ok}");
        }
        for refused in [
            "api://productapi",
            "api://aaaabbbb-0000-cccc-1111-dddd2222eeee",
            "https://contoso.example",
            "https://fhir.other.example/contoso.example",
            "https://evilcontoso.example/x",
        ] {
            assert!(!has_unique_tenant_identifier(&c, refused), "{refused}");
        }
        assert!(is_default_uri(
            &c,
            "api://00001111-aaaa-2222-bbbb-3333cccc4444/"
        ));
        assert!(!is_default_uri(
            &c,
            "api://aaaabbbb-0000-cccc-1111-dddd2222eeee/api"
        ));
    }
}
