//! Deterministic names and IDs: Graph `uniqueName`, ownership tags, role/scope IDs, output names.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Tag on every application this operator creates.
pub const MANAGED_TAG: &str = "fhirapps.io/managed-by=fhir-app-operator";
/// Prefix of the tag naming the owning Kubernetes resource.
pub const OWNER_TAG_PREFIX: &str = "fhirapps.io/owner=";
/// Label on every Secret/ConfigMap the operator writes (and the only ones it watches).
pub const MANAGED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "fhir-app-operator");
/// Label selector for the objects the operator writes.
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=fhir-app-operator";
/// Prefix of the displayName of password credentials the operator adds (followed by the Secret name).
pub const CREDENTIAL_NAME_PREFIX: &str = "fhir-app-operator:";

/// Longest `uniqueName` we generate. Graph documents no limit for `uniqueName`; we stay well below
/// the 120 characters Graph allows for similar keys and use only `[a-z0-9-]`.
pub const UNIQUE_NAME_MAX: usize = 64;

/// Which kind of resource an application belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppKind {
    Resource,
    Client,
}

impl AppKind {
    fn short(self) -> &'static str {
        match self {
            Self::Resource => "r",
            Self::Client => "c",
        }
    }
    pub fn kind(self) -> &'static str {
        match self {
            Self::Resource => "FhirResourceApp",
            Self::Client => "FhirClientApp",
        }
    }
}

/// The identity of a Kubernetes resource as the operator sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceIdentity<'a> {
    pub cluster: &'a str,
    pub kind: AppKind,
    pub namespace: &'a str,
    pub name: &'a str,
}

impl ResourceIdentity<'_> {
    fn key(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.cluster,
            self.kind.kind(),
            self.namespace,
            self.name
        )
    }

    /// Graph `uniqueName`: `fao-<r|c>-<ns>-<name>-<hash>`, readable prefix plus a hash of the full identity
    /// (cluster, kind, namespace, name), at most [`UNIQUE_NAME_MAX`] characters of `[a-z0-9-]`.
    pub fn unique_name(&self) -> String {
        let hash = hex(&Sha256::digest(self.key().as_bytes())[..8]);
        let part = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .take(15)
                .collect::<String>()
                .trim_matches('-')
                .to_string()
        };
        format!(
            "fao-{}-{}-{}-{}",
            self.kind.short(),
            part(self.namespace),
            part(self.name),
            hash
        )
    }

    /// Tags marking the app as ours and naming its owner.
    pub fn tags(&self) -> Vec<String> {
        vec![
            MANAGED_TAG.to_string(),
            format!("{OWNER_TAG_PREFIX}{}", self.key()),
        ]
    }

    /// Stable ID of an app role or scope: UUIDv5 of the resource identity, the kind of entry and its value,
    /// so a re-created application gets the same IDs.
    pub fn entitlement_id(&self, what: &str, value: &str) -> Uuid {
        let ns = Uuid::new_v5(
            &Uuid::NAMESPACE_URL,
            format!("https://fhirapps.io/{}", self.key()).as_bytes(),
        );
        Uuid::new_v5(&ns, format!("{what}:{value}").as_bytes())
    }
}

/// Whether an application's tags mark it as created by this operator for `identity`.
pub fn owned_by(tags: &[String], identity: &ResourceIdentity<'_>) -> bool {
    tags.iter()
        .any(|t| *t == format!("{OWNER_TAG_PREFIX}{}", identity.key()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Default output Secret name of a client.
pub fn client_secret_name(name: &str) -> String {
    format!("{name}-fhir-client")
}

/// Default output ConfigMap name of a resource app.
pub fn resource_config_map_name(name: &str) -> String {
    format!("{name}-fhir-auth")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id<'a>(ns: &'a str, name: &'a str) -> ResourceIdentity<'a> {
        ResourceIdentity {
            cluster: "c1",
            kind: AppKind::Client,
            namespace: ns,
            name,
        }
    }

    #[test]
    fn unique_name_is_deterministic_short_and_distinct() {
        let a = id("team-a", "portal").unique_name();
        assert_eq!(a, id("team-a", "portal").unique_name());
        assert!(a.starts_with("fao-c-team-a-portal-"), "{a}");
        assert_ne!(a, id("team-b", "portal").unique_name());
        assert_ne!(
            a,
            ResourceIdentity {
                cluster: "c2",
                ..id("team-a", "portal")
            }
            .unique_name(),
            "another cluster must not collide"
        );
        let long = id(&"n".repeat(63), &"x".repeat(253)).unique_name();
        assert!(long.len() <= UNIQUE_NAME_MAX, "{}", long.len());
        assert!(
            long.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }

    #[test]
    fn entitlement_ids_are_stable_per_resource_and_value() {
        let a = id("ns", "fhir");
        assert_eq!(
            a.entitlement_id("role", "globalReader"),
            a.entitlement_id("role", "globalReader")
        );
        assert_ne!(
            a.entitlement_id("role", "globalReader"),
            a.entitlement_id("role", "globalWriter")
        );
        assert_ne!(
            a.entitlement_id("role", "globalReader"),
            id("ns2", "fhir").entitlement_id("role", "globalReader")
        );
        assert_eq!(a.entitlement_id("role", "x").get_version_num(), 5);
    }

    #[test]
    fn ownership_is_recognised_only_for_the_same_resource() {
        let a = id("ns", "one");
        assert!(owned_by(&a.tags(), &a));
        assert!(!owned_by(&id("ns", "two").tags(), &a));
        assert!(!owned_by(&[], &a));
    }
}
