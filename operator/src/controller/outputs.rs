//! The Secrets and ConfigMaps the operator writes: their labels, whether an existing one is ours to
//! write, and the server-side applies.
//!
//! The operator writes only objects it created for that very resource (its controller
//! ownerReference). An object of that name that belongs to someone else — a user's Secret, another
//! FhirClientApp's — is left untouched and the resource is Stalled: writing into it would mix our
//! keys with theirs, and our ownerReference would have the garbage collector delete it, their data
//! included, when our resource goes.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Error, FIELD_MANAGER};
use crate::desired::naming::MANAGED_BY_LABEL;

/// Label naming the kind of the resource an object was written for.
pub const OWNER_KIND_LABEL: &str = "fhirapps.io/owner-kind";
/// Label naming (a label-safe form of) the resource an object was written for.
pub const OWNER_NAME_LABEL: &str = "fhirapps.io/owner-name";

/// An existing Secret or ConfigMap the operator may not write.
#[derive(Debug, thiserror::Error)]
#[error(
    "{kind} {namespace}/{name} already exists and {owner}, so the operator leaves it untouched; choose another name for it in the spec ({field}), or delete that {kind} if it is no longer used"
)]
pub struct NotOwned {
    /// `Secret` or `ConfigMap`.
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// Who it belongs to, as a clause ("belongs to FhirClientApp ns/other").
    pub owner: String,
    /// The spec field that names it.
    pub field: &'static str,
}

impl NotOwned {
    /// The condition reason: `SecretNotOwned` or `ConfigMapNotOwned`.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            "ConfigMap" => "ConfigMapNotOwned",
            _ => "SecretNotOwned",
        }
    }
}

/// Whether an object carries the operator's managed-by label (one of its outputs).
pub fn is_operator_output(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .is_some_and(|l| l.get(MANAGED_BY_LABEL.0).map(String::as_str) == Some(MANAGED_BY_LABEL.1))
}

/// Whether an existing object is ours to write for `owner` (a reference to the resource, with its
/// uid): its controller is this very resource, or an earlier resource of the same kind and name
/// that the operator wrote it for (deleted and re-created before the garbage collector came by).
pub fn check_owned(
    kind: &'static str,
    field: &'static str,
    existing: &ObjectMeta,
    owner: &OwnerReference,
) -> Result<(), NotOwned> {
    let controller = existing
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    let labelled = is_operator_output(existing);
    let owner_clause = match controller {
        Some(c) if c.uid == owner.uid => return Ok(()),
        Some(c) if c.kind == owner.kind && c.name == owner.name && labelled => return Ok(()),
        Some(c) => format!(
            "belongs to {} {}/{}",
            c.kind,
            existing.namespace.as_deref().unwrap_or_default(),
            c.name
        ),
        None => "was not created by this operator for this resource".to_string(),
    };
    Err(NotOwned {
        kind,
        namespace: existing.namespace.clone().unwrap_or_default(),
        name: existing.name.clone().unwrap_or_default(),
        owner: owner_clause,
        field,
    })
}

/// A label value naming the resource `name`: the name itself when it is a valid label value (at most
/// 63 characters), else its first 54 characters and 8 hex digits of its SHA-256, so a long resource
/// name (valid up to 253) never makes the output object invalid.
pub fn owner_label_value(name: &str) -> String {
    if name.len() <= 63 {
        return name.to_string();
    }
    let hash: String = Sha256::digest(name.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}-{hash}", &name[..54])
}

/// Labels on every object the operator writes.
pub fn managed_labels(owner_kind: &str, owner_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            MANAGED_BY_LABEL.0.to_string(),
            MANAGED_BY_LABEL.1.to_string(),
        ),
        (OWNER_KIND_LABEL.to_string(), owner_kind.to_string()),
        (OWNER_NAME_LABEL.to_string(), owner_label_value(owner_name)),
    ])
}

/// Server-side applies a Secret, unless `current` (the Secret as last read live or from the watch
/// cache of our own Secrets) already holds exactly this: most resyncs change nothing, and an apply
/// would still be an API call. Refuses a `current` that is not ours. Returns the resourceVersion
/// the Secret has afterwards.
pub async fn apply_secret(
    client: &Client,
    current: Option<&Secret>,
    desired: DesiredSecret<'_>,
) -> Result<Option<String>, Error> {
    if let Some(cur) = current {
        check_owned("Secret", desired.field, &cur.metadata, &desired.owner)?;
        if secret_is_current(cur, &desired) {
            return Ok(cur.metadata.resource_version.clone());
        }
    }
    let DesiredSecret {
        namespace: ns,
        name,
        owner,
        labels,
        annotations,
        data,
        field: _,
    } = desired;
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let data: BTreeMap<&String, ByteString> = data
        .iter()
        .map(|(k, v)| (k, ByteString(v.clone().into_bytes())))
        .collect();
    let body = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": { "name": name, "namespace": ns, "labels": labels, "annotations": annotations, "ownerReferences": [owner] },
        "data": data,
    });
    let written = api
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|source| Error::OutputRejected {
            what: format!("Secret {ns}/{name}"),
            source,
        })?;
    Ok(written.metadata.resource_version)
}

/// An output Secret as the operator wants it.
pub struct DesiredSecret<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub owner: OwnerReference,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub data: BTreeMap<String, String>,
    /// The spec field that names the Secret (for the message when it is not ours).
    pub field: &'static str,
}

/// Whether applying `desired` would change nothing in `current`: the same data, our labels and
/// annotations present with the same values, none of our annotations left over from an earlier
/// write (apply would remove them), and this resource as the controlling owner.
pub fn secret_is_current(current: &Secret, desired: &DesiredSecret<'_>) -> bool {
    let data_now: BTreeMap<&String, &[u8]> = current
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k, v.0.as_slice()))
        .collect();
    let data_wanted: BTreeMap<&String, &[u8]> = desired
        .data
        .iter()
        .map(|(k, v)| (k, v.as_bytes()))
        .collect();
    let empty = BTreeMap::new();
    let annotations = current.metadata.annotations.as_ref().unwrap_or(&empty);
    let stale_annotation = annotations
        .keys()
        .any(|k| k.starts_with(OPERATOR_ANNOTATION_PREFIX) && !desired.annotations.contains_key(k));
    current.metadata.deletion_timestamp.is_none()
        && data_now == data_wanted
        && metadata_is_current(&current.metadata, &desired.owner, &desired.labels)
        && contains(annotations, &desired.annotations)
        && !stale_annotation
}

/// Whether the object's controller reference is the object with `uid`: written for that very
/// resource, not an earlier one of the same name.
pub fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    (meta.owner_references.iter().flatten()).any(|o| o.controller == Some(true) && o.uid == uid)
}

/// Whether `have` holds every entry of `want` (others may hold more).
fn contains(have: &BTreeMap<String, String>, want: &BTreeMap<String, String>) -> bool {
    want.iter().all(|(k, v)| have.get(k) == Some(v))
}

/// Whether an object's metadata already carries what an apply would write besides its data: our
/// `labels` (others' labels may be there too) and `owner` as its controller.
fn metadata_is_current(
    meta: &ObjectMeta,
    owner: &OwnerReference,
    labels: &BTreeMap<String, String>,
) -> bool {
    let controlled = controlled_by(meta, &owner.uid) && {
        let refs = meta.owner_references.iter().flatten();
        refs.filter(|o| o.uid == owner.uid)
            .all(|o| o.kind == owner.kind)
    };
    controlled && contains(meta.labels.as_ref().unwrap_or(&BTreeMap::new()), labels)
}

/// Prefix of the annotations the operator writes on output Secrets.
pub const OPERATOR_ANNOTATION_PREFIX: &str = "fhirapps.io/";

/// The ConfigMap `name` as it is now (live: there is no ConfigMap cache), refused if it exists and
/// is not ours.
pub async fn current_config_map(
    client: &Client,
    ns: &str,
    name: &str,
    owner: &OwnerReference,
) -> Result<Option<ConfigMap>, Error> {
    let cur = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await?;
    if let Some(c) = &cur {
        check_owned("ConfigMap", "spec.output.configMapName", &c.metadata, owner)?;
    }
    Ok(cur)
}

/// Server-side applies a ConfigMap the operator owns, unless `current` (read by
/// [`current_config_map`]) already holds exactly this. Refuses a `current` that is not ours.
pub async fn apply_config_map(
    client: &Client,
    current: Option<&ConfigMap>,
    name: &str,
    ns: &str,
    owner: OwnerReference,
    labels: BTreeMap<String, String>,
    data: BTreeMap<String, String>,
) -> Result<(), Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    if let Some(cur) = current {
        check_owned(
            "ConfigMap",
            "spec.output.configMapName",
            &cur.metadata,
            &owner,
        )?;
        if cur.data.as_ref() == Some(&data) && metadata_is_current(&cur.metadata, &owner, &labels) {
            return Ok(());
        }
    }
    let body = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": name, "namespace": ns, "labels": labels, "ownerReferences": [owner] },
        "data": data,
    });
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| Error::OutputRejected {
        what: format!("ConfigMap {ns}/{name}"),
        source,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn owner(uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: "fhirapps.io/v1alpha1".into(),
            kind: "FhirClientApp".into(),
            name: "web".into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn desired() -> DesiredSecret<'static> {
        DesiredSecret {
            namespace: "ns",
            name: "web-credentials",
            owner: owner("u1"),
            labels: managed_labels("FhirClientApp", "web"),
            annotations: BTreeMap::from([("fhirapps.io/key-id".into(), "k1".into())]),
            data: BTreeMap::from([("AZURE_CLIENT_ID".into(), "app".into())]),
            field: "secretName",
        }
    }

    /// The Secret as the API server returns it after applying `desired()` (plus what others add).
    fn as_written() -> Secret {
        let d = desired();
        let mut labels = d.labels.clone();
        labels.insert("team".into(), "blue".into());
        let mut annotations = d.annotations.clone();
        annotations.insert("argocd.argoproj.io/compare-options".into(), "x".into());
        Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(d.name.into()),
                namespace: Some(d.namespace.into()),
                resource_version: Some("42".into()),
                labels: Some(labels),
                annotations: Some(annotations),
                owner_references: Some(vec![d.owner.clone()]),
                ..Default::default()
            },
            data: Some(
                d.data
                    .iter()
                    .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
                    .collect(),
            ),
            type_: Some("Opaque".into()),
            ..Default::default()
        }
    }

    #[test]
    fn an_unchanged_secret_needs_no_write_even_with_others_labels_and_annotations() {
        assert!(secret_is_current(&as_written(), &desired()));
    }

    #[test]
    fn any_difference_that_apply_would_fix_needs_a_write() {
        let d = desired();
        let mut s = as_written();
        s.data
            .as_mut()
            .unwrap()
            .insert("AZURE_CLIENT_ID".into(), ByteString(b"edited".to_vec()));
        assert!(!secret_is_current(&s, &d), "edited value");

        let mut s = as_written();
        s.data.as_mut().unwrap().remove("AZURE_CLIENT_ID");
        assert!(!secret_is_current(&s, &d), "deleted key");

        let mut s = as_written();
        s.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("fhirapps.io/previous-key-id".into(), "k0".into());
        assert!(
            !secret_is_current(&s, &d),
            "an annotation of ours the new write drops"
        );

        let mut s = as_written();
        s.metadata
            .labels
            .as_mut()
            .unwrap()
            .remove("fhirapps.io/owner-name");
        assert!(!secret_is_current(&s, &d), "label removed");

        let mut s = as_written();
        s.metadata.owner_references = Some(vec![owner("another-uid")]);
        assert!(
            !secret_is_current(&s, &d),
            "owned by a previous object of that name"
        );

        let mut s = as_written();
        s.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::now()));
        assert!(!secret_is_current(&s, &d), "being deleted");
    }

    fn meta(owner: Option<OwnerReference>, labelled: bool) -> ObjectMeta {
        ObjectMeta {
            name: Some("web-credentials".into()),
            namespace: Some("ns".into()),
            owner_references: owner.map(|o| vec![o]),
            labels: labelled.then(|| managed_labels("FhirClientApp", "web")),
            ..Default::default()
        }
    }

    #[test]
    fn only_objects_written_for_this_resource_are_ours() {
        let me = owner("u1");
        assert!(check_owned("Secret", "secretName", &meta(Some(owner("u1")), true), &me).is_ok());
        // Written for an earlier FhirClientApp of this name, not yet garbage-collected.
        assert!(check_owned("Secret", "secretName", &meta(Some(owner("u0")), true), &me).is_ok());
        let users = check_owned("Secret", "secretName", &meta(None, false), &me).unwrap_err();
        assert_eq!(users.reason(), "SecretNotOwned");
        assert!(
            users.to_string().contains(
                "Secret ns/web-credentials already exists and was not created by this operator"
            ),
            "{users}"
        );
        let mut other = owner("u2");
        other.name = "other".into();
        let theirs =
            check_owned("Secret", "secretName", &meta(Some(other), true), &me).unwrap_err();
        assert!(
            theirs
                .to_string()
                .contains("belongs to FhirClientApp ns/other"),
            "{theirs}"
        );
        // Our labels alone (copied by hand) do not make someone's object ours.
        assert!(check_owned("ConfigMap", "output.configMapName", &meta(None, true), &me).is_err());
    }

    #[test]
    fn owner_labels_stay_valid_for_long_names() {
        let long = "c70-".to_string() + &"d".repeat(66);
        let v = owner_label_value(&long);
        assert_eq!(v.len(), 63);
        assert!(v.starts_with(&long[..54]));
        assert_ne!(
            owner_label_value(&(long.clone() + "x")),
            v,
            "distinct names, distinct values"
        );
        assert_eq!(owner_label_value("web"), "web");
    }
}
