//! Claims-mapping policies as stored (`claimsMappingPolicy`), which service principal each is
//! assigned to, their `definition`, and the claims a token gets from one. Sources:
//! docs/entra-facts/claims-and-delta.md §A2–A3 (Learn `resources/claimsmappingpolicy`,
//! `claimsmappingpolicy-post-claimsmappingpolicies`, Entra `reference-claims-mapping-policy-type`,
//! `jwt-claims-customization`).
//!
//! A policy shapes the tokens whose audience is the service principal it is assigned to: the
//! resource's access tokens, the client's ID token (Graph `how-to-claims-customization`; AHDS
//! `set-fhir-user-mapping`: "needs to be setup for the FHIR Resource application *and* each SMART
//! client application that will be getting an identity token").
use super::extensions;
use super::store::{Tenant, UserRec, s};
use super::views::GraphObject;
use serde_json::{Map, Value};

/// One `ClaimsSchema` entry, the parts the emulator reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entry {
    pub source: String,
    pub id: String,
    pub extension_id: String,
    pub value: Option<String>,
    pub jwt_claim_type: String,
}

/// A parsed `definition`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapping {
    pub include_basic: bool,
    pub schema: Vec<Entry>,
}

/// The keys a `ClaimsMappingPolicy` object may have (Entra `reference-claims-mapping-policy-type`).
/// Both spellings of the transformations key are taken: the docs write `ClaimsTransformation`,
/// Graph's own list example stores `ClaimsTransformations` (Learn `claimsmappingpolicy-list`), and
/// users report each of the two refused at some time (MicrosoftDocs/azure-docs PR #90732,
/// MicrosoftDocs/entra-docs#121).
const POLICY_KEYS: &[&str] = &[
    "Version",
    "IncludeBasicClaimSet",
    "ClaimsSchema",
    "ClaimsTransformation",
    "ClaimsTransformations",
    "GroupFilter",
    "issuerWithApplicationId",
    "audienceOverride",
];

/// At most 50 schema entries count; later ones "are ignored and not included in the issued
/// token" (Learn `resources/claimsmappingpolicy`).
const MAX_ENTRIES: usize = 50;

fn get_ci<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|x| x.1)
}
fn text_ci(o: &Map<String, Value>, key: &str) -> String {
    get_ci(o, key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Parses a policy's `definition`: a collection of one JSON string holding
/// `{"ClaimsMappingPolicy": {"Version": 1, …}}`. Keys are read case-insensitively (Microsoft's own
/// example writes `"Source": "User"` and `"JWTClaimType"`, Entra `schema-extensions`).
/// `IncludeBasicClaimSet` is a boolean or its text (`"true"` in every example). None: not a
/// definition Graph takes (it answers 400, [`super`]'s caller).
pub fn parse(definition: &Value) -> Option<Mapping> {
    let list = definition.as_array()?;
    let [one] = list.as_slice() else { return None };
    let v: Value = serde_json::from_str(one.as_str()?).ok()?;
    let outer = v.as_object()?;
    if outer.len() != 1 {
        return None;
    }
    let p = get_ci(outer, "ClaimsMappingPolicy")?.as_object()?;
    if p.keys()
        .any(|k| !POLICY_KEYS.iter().any(|x| x.eq_ignore_ascii_case(k)))
    {
        return None;
    }
    let version_ok = match get_ci(p, "Version")? {
        Value::Number(n) => n.as_i64() == Some(1),
        Value::String(s) => s == "1",
        _ => false,
    };
    let include_basic = match get_ci(p, "IncludeBasicClaimSet") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        Some(_) => return None,
    };
    let schema = match get_ci(p, "ClaimsSchema") {
        None => vec![],
        Some(Value::Array(items)) => items
            .iter()
            .map(|e| e.as_object().map(entry))
            .collect::<Option<Vec<_>>>()?,
        Some(_) => return None,
    };
    version_ok.then_some(Mapping {
        include_basic,
        schema,
    })
}

fn entry(o: &Map<String, Value>) -> Entry {
    Entry {
        source: text_ci(o, "Source").to_ascii_lowercase(),
        id: text_ci(o, "ID").to_ascii_lowercase(),
        extension_id: text_ci(o, "ExtensionID"),
        value: get_ci(o, "Value")
            .and_then(Value::as_str)
            .map(str::to_string),
        jwt_claim_type: text_ci(o, "JwtClaimType"),
    }
}

/// Claims no policy may set: the JWT restricted claim set the emulator issues (the full list is
/// in Entra `reference-claims-mapping-policy-type`), anything starting with `xms_` or `extn.`.
/// Names and URIs in it "can't be used for the claim type elements"; what Graph or the token
/// service does with one is not documented, [INF] the token leaves it out.
const RESTRICTED: &[&str] = &[
    "acr",
    "aio",
    "amr",
    "app_displayname",
    "appid",
    "appidacr",
    "at_hash",
    "aud",
    "azp",
    "azpacr",
    "c_hash",
    "email",
    "exp",
    "groups",
    "iat",
    "idp",
    "idtyp",
    "iss",
    "nbf",
    "nonce",
    "oid",
    "preferred_username",
    "rh",
    "roles",
    "scp",
    "sid",
    "sub",
    "tid",
    "unique_name",
    "upn",
    "uti",
    "ver",
    "wids",
];

fn restricted(claim: &str) -> bool {
    let c = claim.to_ascii_lowercase();
    RESTRICTED.contains(&c.as_str()) || c.starts_with("xms_") || c.starts_with("extn.")
}

/// The parties of a token a `Source` can name: the user, the client's and the resource's service
/// principals and the audience's (Entra `reference-claims-mapping-policy-type`, "Source value").
pub struct Parties<'a> {
    pub user: Option<&'a UserRec>,
    pub client_sp: Option<&'a Value>,
    pub resource_sp: Option<&'a Value>,
    pub audience_sp: &'a Value,
}

/// The user properties a `Source: user` `ID` reads that the emulator's users hold (the rest of
/// the documented IDs have no value here, so no claim).
fn user_property(id: &str) -> Option<&'static str> {
    Some(match id {
        "displayname" => "displayName",
        "givenname" => "givenName",
        "surname" => "surname",
        "mail" => "mail",
        "userprincipalname" => "userPrincipalName",
        "objectid" => "id",
        "jobtitle" => "jobTitle",
        "mobilephone" => "mobilePhone",
        "officelocation" => "officeLocation",
        "preferredlanguage" => "preferredLanguage",
        _ => return None,
    })
}

/// An entry's value, if the source has one. No value: no claim (Entra emits no empty claims; a
/// user without a value for the extension gets no claim, [INF] docs/entra-facts §A3).
fn entry_value(t: &Tenant, e: &Entry, who: &Parties) -> Option<Value> {
    if let Some(v) = &e.value {
        return Some(Value::String(v.clone()));
    }
    let sp = match e.source.as_str() {
        "user" => {
            let u = who.user?;
            if !e.extension_id.is_empty() {
                return extensions::claim_value(t, u, &e.extension_id).cloned();
            }
            let v = &u.body[user_property(&e.id)?];
            return (!v.is_null()).then(|| v.clone());
        }
        "application" => who.client_sp?,
        "resource" => who.resource_sp?,
        "audience" => who.audience_sp,
        // `company` (tenantcountry) has no value here; `transformation` is not emulated.
        _ => return None,
    };
    match e.id.as_str() {
        "displayname" => Some(Value::String(sp.display_name().to_string())),
        "objectid" => Some(Value::String(s(sp, "id"))),
        "tags" => sp["tags"].as_array()?.first().cloned(),
        _ => None,
    }
}

/// What a policy does to one token.
#[derive(Debug, PartialEq)]
pub struct Mapped {
    pub claims: Map<String, Value>,
    pub include_basic: bool,
}

/// The claims the mapping emits for these parties.
pub fn claims_for(t: &Tenant, m: &Mapping, who: &Parties) -> Mapped {
    let mut claims = Map::new();
    for e in m.schema.iter().take(MAX_ENTRIES) {
        if e.jwt_claim_type.is_empty() || restricted(&e.jwt_claim_type) {
            continue;
        }
        if let Some(v) = entry_value(t, e, who) {
            claims.insert(e.jwt_claim_type.clone(), v);
        }
    }
    Mapped {
        claims,
        include_basic: m.include_basic,
    }
}

/// Puts a mapping on a token's claims. Without the basic claim set the emulator's one basic,
/// unrestricted claim (`name`) goes, unless the schema emits it (Entra
/// `reference-claims-mapping-policy-type`, "Claim sets").
pub fn apply(token: &mut Value, m: &Mapped) {
    if let Some(o) = token.as_object_mut() {
        if !m.include_basic {
            o.remove("name");
        }
        for (k, v) in &m.claims {
            o.insert(k.clone(), v.clone());
        }
    }
}

/// Why a token for an audience with a policy is refused.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Refused {
    /// The audience application neither accepts mapped claims nor has its own signing key
    /// (AADSTS50146). Service principals' signing keys are not kept by the emulator (a PATCH of
    /// `keyCredentials` is ignored), so `acceptMappedClaims` is the one way.
    MissingSigningKey,
    /// `acceptMappedClaims` with an audience that is neither the application's GUID nor on a
    /// verified domain (AADSTS501461).
    AudienceNotVerified,
}

/// The mapping for a token whose audience is `who.audience_sp`, its `aud` claim being `aud`: None
/// without a policy; refused when the audience application does not accept mapped claims
/// (Entra `jwt-claims-customization`, "Security considerations"), or accepts them for an audience
/// that is neither its appId nor on a verified domain of the tenant (same page, "Update the
/// application manifest").
pub fn for_token(t: &Tenant, who: &Parties, aud: &str) -> Result<Option<Mapped>, Refused> {
    let Some(policy) = t.claims_policies.for_sp(who.audience_sp.id()) else {
        return Ok(None);
    };
    let app_id = who.audience_sp.app_id();
    let accepts = t
        .app_idx_by_app_id(app_id)
        .is_some_and(|i| t.apps[i].body["api"]["acceptMappedClaims"] == Value::Bool(true));
    if !accepts {
        return Err(Refused::MissingSigningKey);
    }
    if !audience_ok(t, app_id, aud) {
        return Err(Refused::AudienceNotVerified);
    }
    let Some(m) = parse(&policy["definition"]) else {
        return Ok(None);
    };
    Ok(Some(claims_for(t, &m, who)))
}

/// "a token audience matching the application GUID or an audience within the tenant's verified
/// domains": the appId, `api://{appId}` ([INF]: the URI is the GUID's; whether Entra counts it is
/// not documented), or a URI whose host is a verified domain or under one (AHDS's
/// `https://<app>.<primary domain>`).
fn audience_ok(t: &Tenant, app_id: &str, aud: &str) -> bool {
    let aud = aud.trim_end_matches('/');
    if aud.eq_ignore_ascii_case(app_id)
        || aud
            .strip_prefix("api://")
            .is_some_and(|x| x.split('/').next() == Some(app_id))
    {
        return true;
    }
    let host = aud
        .split_once("://")
        .map(|x| x.1)
        .unwrap_or("")
        .split(['/', ':'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    t.domains
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const AHDS: &str = r#"{"ClaimsMappingPolicy":{"Version":1,"IncludeBasicClaimSet":"true","ClaimsSchema":[{"Source":"user","ExtensionID":"extension_abc_fhirUser","JwtClaimType":"fhirUser"}]}}"#;

    #[test]
    fn definitions_parse_as_graph_takes_them() {
        let m = parse(&json!([AHDS])).unwrap();
        assert!(m.include_basic);
        assert_eq!(m.schema[0].extension_id, "extension_abc_fhirUser");
        assert_eq!(m.schema[0].jwt_claim_type, "fhirUser");
        let ms = r#"{"ClaimsMappingPolicy":{"Version":1,"IncludeBasicClaimSet":"false","ClaimsSchema":[{"Source":"User","ExtensionID":"extension_x_test","JWTClaimType":"http://schemas.contoso.com/identity/claims/exampleclaim"}]}}"#;
        let m = parse(&json!([ms])).unwrap();
        assert!(!m.include_basic);
        assert_eq!(
            (
                m.schema[0].source.as_str(),
                m.schema[0].jwt_claim_type.len()
            ),
            ("user", 55)
        );
        for bad in [
            json!(AHDS),
            json!([AHDS, AHDS]),
            json!(["{\"ClaimsMappingPolicy\":{\"Version\":2}}"]),
            json!(["{\"ClaimsMappingPolicy\":{\"Version\":1,\"Bogus\":1}}"]),
            json!(["not json"]),
            json!(["{\"Other\":{}}"]),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn audiences_acceptmappedclaims_takes() {
        let t = Tenant::new("t", vec!["contoso.example".into()], false);
        assert!(audience_ok(&t, "a-1", "a-1"));
        assert!(audience_ok(&t, "a-1", "api://a-1"));
        assert!(audience_ok(&t, "a-1", "https://contoso.example/fhir"));
        assert!(audience_ok(&t, "a-1", "https://fhir.contoso.example"));
        assert!(!audience_ok(&t, "a-1", "https://evilcontoso.example"));
        assert!(!audience_ok(&t, "a-1", "api://fhir"));
        assert!(!restricted("fhirUser") && restricted("xms_cc") && restricted("AUD"));
    }
}
