//! What a tenant's app management policy means for a client's credential (pure). Sources are in
//! docs/entra-facts/lifecycle-and-policies.md §3: the tenant default
//! (`tenantAppManagementPolicy`, restrictions under `applicationRestrictions`) applies unless a
//! custom `appManagementPolicy` is assigned to the application, which replaces it whole (Learn
//! `applicationauthenticationmethodpolicy`: it "doesn't inherit from default policy"). A disabled
//! policy (`isEnabled: false`) or restriction (`state: disabled`) is not evaluated, and a restriction
//! applies only to applications created on or after its `restrictForAppsCreatedAfterDateTime`.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use super::credentials::Rotation;
use crate::api::CredentialType;

/// The policy a rule comes from, to name it in status and messages.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PolicyRef {
    pub id: String,
    pub display_name: String,
}

/// What the policy that applies to an application allows the operator's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialRules {
    /// The enabled policy the rules come from; `None` when none applies (no restriction).
    pub policy: Option<PolicyRef>,
    /// `passwordAddition` not in force: new client secrets may be added.
    pub password_allowed: bool,
    /// `passwordLifetime`: the longest a client secret may live.
    pub max_password_lifetime: Option<Duration>,
    /// `trustedCertificateAuthority` not in force: the operator's self-signed certificates may be
    /// added (a policy that trusts only certificates of a listed authority refuses them).
    pub self_signed_certificate_allowed: bool,
    /// `asymmetricKeyLifetime`: the longest a certificate may live.
    pub max_certificate_lifetime: Option<Duration>,
}

impl Default for CredentialRules {
    fn default() -> Self {
        Self {
            policy: None,
            password_allowed: true,
            max_password_lifetime: None,
            self_signed_certificate_allowed: true,
            max_certificate_lifetime: None,
        }
    }
}

/// Docs: "Service principals with a createdDateTime `null` are treated as having been created on
/// 01/01/2019"; the operator reads an application without one the same way [INF].
const UNKNOWN_CREATION: &str = "2019-01-01T00:00:00Z";

/// The rules for an application created at `created` (`None`: not known; for an application about
/// to be created, pass `now`): the first assigned policy if any (Graph allows one), else the tenant
/// default. An assigned policy replaces the default even while it is disabled [INF: the docs say an
/// assigned policy does not inherit from the default and are silent on a disabled one; the kinder
/// reading is chosen because Entra's refusal is still mapped if it is wrong].
pub fn rules(
    default: Option<&Value>,
    assigned: &[Value],
    created: Option<Timestamp>,
    now: Timestamp,
) -> CredentialRules {
    let created = created.unwrap_or_else(|| UNKNOWN_CREATION.parse().expect("a valid timestamp"));
    let (policy, restrictions, enabled_by_default) = match (assigned.first(), default) {
        (Some(p), _) => (p, custom_restrictions(p), true),
        (None, Some(p)) => (p, p.get("applicationRestrictions"), false),
        (None, None) => return CredentialRules::default(),
    };
    let enabled = policy["isEnabled"].as_bool().unwrap_or(enabled_by_default);
    let Some(restrictions) = restrictions.filter(|_| enabled) else {
        return CredentialRules::default();
    };
    let in_force = |list: &str, ty: &str| -> Vec<&Value> {
        let items = restrictions[list].as_array().map(Vec::as_slice);
        (items.unwrap_or_default().iter())
            .filter(|r| r["restrictionType"].as_str() == Some(ty))
            .filter(|r| applies(r, created))
            .collect()
    };
    let shortest = |list: &str, ty: &str| {
        (in_force(list, ty).iter())
            .filter_map(|r| lifetime(r["maxLifetime"].as_str()?, now))
            .min()
    };
    CredentialRules {
        policy: Some(PolicyRef {
            id: policy["id"].as_str().unwrap_or_default().to_string(),
            display_name: policy["displayName"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        }),
        password_allowed: in_force("passwordCredentials", "passwordAddition").is_empty(),
        max_password_lifetime: shortest("passwordCredentials", "passwordLifetime"),
        self_signed_certificate_allowed: in_force("keyCredentials", "trustedCertificateAuthority")
            .is_empty(),
        max_certificate_lifetime: shortest("keyCredentials", "asymmetricKeyLifetime"),
    }
}

/// A custom policy's restrictions: `restrictions` in v1.0, `applicationRestrictions` in some beta
/// examples (facts §3.4, last note).
fn custom_restrictions(p: &Value) -> Option<&Value> {
    p.get("restrictions")
        .filter(|r| r.is_object())
        .or_else(|| p.get("applicationRestrictions").filter(|r| r.is_object()))
}

/// Whether one restriction is in force for an application created at `created`: `state` absent or
/// `enabled`, and created on or after `restrictForAppsCreatedAfterDateTime` (null: every
/// application).
fn applies(r: &Value, created: Timestamp) -> bool {
    if r["state"]
        .as_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("disabled"))
    {
        return false;
    }
    match r["restrictForAppsCreatedAfterDateTime"].as_str() {
        None => true,
        // A date the operator cannot read is taken as in force: Entra enforces it either way.
        Some(d) => d
            .parse::<Timestamp>()
            .ok()
            .is_none_or(|after| created >= after),
    }
}

/// An ISO 8601 duration (`P90D`, `P4DT12H30M5S`, `P1Y`) as the time it spans from `now` (calendar
/// units counted in UTC).
pub fn lifetime(iso: &str, now: Timestamp) -> Option<Duration> {
    let span: jiff::Span = iso.parse().ok()?;
    let end = now
        .to_zoned(jiff::tz::TimeZone::UTC)
        .checked_add(span)
        .ok()?;
    Duration::try_from(end.timestamp().duration_since(now)).ok()
}

/// The refusal of a credential kind the policy does not allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotAllowed {
    pub policy: PolicyRef,
    /// What the restriction says, for the message.
    pub restriction: &'static str,
    /// The credential types the policy leaves to this client.
    pub allowed: Vec<&'static str>,
}

impl CredentialRules {
    /// Whether the operator may add a credential of `kind`; a refusal names what is allowed.
    pub fn check(&self, kind: CredentialType) -> Result<(), NotAllowed> {
        let restriction = match kind {
            CredentialType::ClientSecret if !self.password_allowed => {
                "passwordAddition: no new client secrets"
            }
            CredentialType::Certificate if !self.self_signed_certificate_allowed => {
                "trustedCertificateAuthority: only certificates of a trusted authority, and the operator issues self-signed ones"
            }
            _ => return Ok(()),
        };
        Err(NotAllowed {
            policy: self.policy.clone().unwrap_or_default(),
            restriction,
            allowed: self.allowed(),
        })
    }

    /// The credential types this client may use under the policy. Federated credentials
    /// (WorkloadIdentity) are not among what app management policies restrict in v1.0.
    pub fn allowed(&self) -> Vec<&'static str> {
        let mut a = Vec::new();
        if self.self_signed_certificate_allowed {
            a.push("Certificate");
        }
        if self.password_allowed {
            a.push("ClientSecret");
        }
        a.push("WorkloadIdentity");
        a
    }

    /// The policy's longest lifetime for a credential of `kind`, if it caps it.
    pub fn max_lifetime(&self, kind: CredentialType) -> Option<Duration> {
        match kind {
            CredentialType::ClientSecret => self.max_password_lifetime,
            CredentialType::Certificate => self.max_certificate_lifetime,
            _ => None,
        }
    }
}

/// The rotation under a lifetime cap `max`: validity at most the cap less a margin (the
/// certificate's start is back-dated a minute, and the operator's clock may run ahead of Entra's),
/// and `renewBefore`, when it no longer fits, a third of the validity (renewal at two thirds of the
/// life, as cert-manager does by default). The cap is kept, so a credential issued before it that
/// outlives it is replaced ([`outlives_cap`]).
pub fn cap_rotation(rot: Rotation, max: Option<Duration>) -> Rotation {
    let Some(max) = max else { return rot };
    let margin = (max / 10).min(Duration::from_secs(3600));
    let validity = rot.validity.min(max.saturating_sub(margin));
    let renew_before = if rot.renew_before < validity {
        rot.renew_before
    } else {
        validity / 3
    };
    Rotation {
        validity,
        renew_before,
        overlap: rot.overlap,
        max_lifetime: Some(max),
    }
}

/// Whether a credential ending at `end` lives longer from `now` than the policy's cap allows (issued
/// before the policy; Entra keeps it, the operator replaces it at the next reconcile).
pub fn outlives_cap(end: Option<Timestamp>, rot: &Rotation, now: Timestamp) -> bool {
    let Some(max) = rot.max_lifetime else {
        return false;
    };
    let limit = jiff::SignedDuration::try_from(max).unwrap_or(jiff::SignedDuration::MAX);
    // An unknown end is left alone: replacing it on every reconcile would be a loop.
    end.is_some_and(|e| now.checked_add(limit).is_ok_and(|l| e > l))
}

/// The policy id Entra names in a refusal ("… as per assigned policy '538f1913-…'.", facts §3.4):
/// the last quoted word of the message.
pub fn policy_id_in(message: &str) -> Option<String> {
    let end = message.rfind('\'')?;
    let start = message[..end].rfind('\'')? + 1;
    let id = &message[start..end];
    (!id.is_empty() && !id.contains(' ')).then(|| id.to_string())
}

/// A duration as ISO 8601 (`P90D`, `PT36H`), as the policy writes it, for the status.
pub fn iso(d: Duration) -> String {
    let secs = d.as_secs();
    if secs.is_multiple_of(86_400) {
        format!("P{}D", secs / 86_400)
    } else {
        format!("PT{secs}S")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: &str = "2026-06-01T00:00:00Z";
    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }
    fn days(n: u64) -> Duration {
        Duration::from_secs(n * 86_400)
    }
    fn default_policy(enabled: bool, passwords: Value, keys: Value) -> Value {
        json!({"id": "00000000-0000-0000-0000-000000000000",
            "displayName": "Default app management tenant policy", "isEnabled": enabled,
            "applicationRestrictions": {"passwordCredentials": passwords, "keyCredentials": keys}})
    }

    #[test]
    fn the_enabled_default_blocks_passwords_and_names_what_is_left() {
        let block = json!([{"restrictionType": "passwordAddition", "maxLifetime": null,
            "restrictForAppsCreatedAfterDateTime": null}]);
        let p = default_policy(true, block.clone(), json!([]));
        let r = rules(Some(&p), &[], Some(ts(NOW)), ts(NOW));
        let refusal = r.check(CredentialType::ClientSecret).unwrap_err();
        assert_eq!(refusal.policy.id, "00000000-0000-0000-0000-000000000000");
        assert_eq!(refusal.allowed, ["Certificate", "WorkloadIdentity"]);
        assert!(r.check(CredentialType::Certificate).is_ok());
        // Disabled (the documented default) or absent: nothing is restricted.
        let off = default_policy(false, block.clone(), json!([]));
        assert_eq!(
            rules(Some(&off), &[], None, ts(NOW)),
            CredentialRules::default()
        );
        let mut no_flag = default_policy(true, block, json!([]));
        no_flag.as_object_mut().unwrap().remove("isEnabled");
        assert!(rules(Some(&no_flag), &[], None, ts(NOW)).password_allowed);
        assert_eq!(rules(None, &[], None, ts(NOW)), CredentialRules::default());
    }

    #[test]
    fn caps_come_from_iso_durations_and_a_disabled_restriction_is_skipped() {
        let p = default_policy(
            true,
            json!([{"restrictionType": "passwordLifetime", "maxLifetime": "P90D"},
                   {"restrictionType": "passwordAddition", "state": "disabled"}]),
            json!([{"restrictionType": "asymmetricKeyLifetime", "maxLifetime": "P1Y"}]),
        );
        let r = rules(Some(&p), &[], None, ts(NOW));
        assert!(r.password_allowed);
        assert_eq!(r.max_lifetime(CredentialType::ClientSecret), Some(days(90)));
        assert_eq!(r.max_lifetime(CredentialType::Certificate), Some(days(365)));
        assert_eq!(r.max_lifetime(CredentialType::WorkloadIdentity), None);
        assert_eq!(
            lifetime("P4DT12H30M5S", ts(NOW)),
            Some(Duration::from_secs(4 * 86_400 + 12 * 3600 + 30 * 60 + 5))
        );
        assert_eq!(lifetime("ninety days", ts(NOW)), None);
    }

    #[test]
    fn a_restriction_applies_only_to_apps_created_after_its_date() {
        let p = default_policy(
            true,
            json!([{"restrictionType": "passwordAddition",
                "restrictForAppsCreatedAfterDateTime": "2026-01-01T00:00:00Z"}]),
            json!([]),
        );
        let old = rules(Some(&p), &[], Some(ts("2025-12-31T00:00:00Z")), ts(NOW));
        assert!(old.password_allowed);
        let new = rules(Some(&p), &[], Some(ts(NOW)), ts(NOW));
        assert!(!new.password_allowed);
        // Unknown creation: taken as 2019-01-01, like a service principal without one.
        assert!(rules(Some(&p), &[], None, ts(NOW)).password_allowed);
    }

    #[test]
    fn an_assigned_policy_replaces_the_default() {
        let default = default_policy(
            true,
            json!([{"restrictionType": "passwordAddition"}]),
            json!([]),
        );
        let custom = json!({"id": "c1", "displayName": "Exempt FHIR clients", "isEnabled": true,
            "restrictions": {"passwordCredentials": [
                {"restrictionType": "passwordLifetime", "maxLifetime": "P30D"}], "keyCredentials": []}});
        let r = rules(Some(&default), std::slice::from_ref(&custom), None, ts(NOW));
        assert!(r.password_allowed, "the default's block does not apply");
        assert_eq!(r.max_password_lifetime, Some(days(30)));
        assert_eq!(r.policy.unwrap().display_name, "Exempt FHIR clients");
        // Disabled, it still replaces the default (nothing applies).
        let mut off = custom;
        off["isEnabled"] = json!(false);
        let r = rules(Some(&default), &[off], None, ts(NOW));
        assert_eq!(r, CredentialRules::default());
        // The beta field name.
        let beta = json!({"id": "b", "displayName": "b", "applicationRestrictions": {
            "keyCredentials": [{"restrictionType": "trustedCertificateAuthority"}]}});
        let r = rules(None, &[beta], None, ts(NOW));
        assert!(r.check(CredentialType::Certificate).is_err());
        assert_eq!(r.allowed(), ["ClientSecret", "WorkloadIdentity"]);
    }

    #[test]
    fn the_rotation_fits_inside_the_cap_with_its_overlap() {
        let rot = Rotation::default();
        assert_eq!(cap_rotation(rot, None), rot);
        let capped = cap_rotation(rot, Some(days(90)));
        assert_eq!(capped.validity, days(90) - Duration::from_secs(3600));
        assert_eq!(capped.renew_before, rot.renew_before, "30 days still fit");
        assert_eq!(capped.overlap, rot.overlap);
        let short = cap_rotation(rot, Some(days(7)));
        assert_eq!(short.validity, days(7) - Duration::from_secs(3600));
        assert_eq!(short.renew_before, short.validity / 3);
        assert!(short.overlap < short.renew_before);
        // A spec validity under the cap is kept.
        let mine = Rotation {
            validity: days(10),
            ..rot
        };
        assert_eq!(cap_rotation(mine, Some(days(90))).validity, days(10));
        assert_eq!(iso(days(90)), "P90D");
        assert_eq!(iso(Duration::from_secs(90)), "PT90S");
    }

    #[test]
    fn the_policy_id_is_read_from_entras_refusal() {
        let m = "Credential lifetime exceeds the max value allowed as per assigned policy '538f1913-366a-440a-95a0-e195cb55b282'.";
        assert_eq!(
            policy_id_in(m).as_deref(),
            Some("538f1913-366a-440a-95a0-e195cb55b282")
        );
        assert_eq!(
            policy_id_in("Credential type not allowed as per assigned policy"),
            None
        );
    }

    #[test]
    fn a_credential_issued_before_the_cap_is_replaced() {
        let capped = cap_rotation(Rotation::default(), Some(days(90)));
        let now = ts(NOW);
        assert!(outlives_cap(Some(ts("2027-06-01T00:00:00Z")), &capped, now));
        assert!(!outlives_cap(
            Some(ts("2026-08-01T00:00:00Z")),
            &capped,
            now
        ));
        assert!(!outlives_cap(
            Some(ts("2027-06-01T00:00:00Z")),
            &Rotation::default(),
            now
        ));
        assert!(
            !outlives_cap(None, &capped, now),
            "no loop on an unknown end"
        );
    }
}
