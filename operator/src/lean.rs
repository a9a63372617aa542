//! What the operator's watch caches keep of each object: everything but the metadata it never
//! reads.
//!
//! The reflector stores hold one copy of every FhirClientApp and every output Secret for the life
//! of the process, so their size is the operator's memory per client. A heap profile of the bench
//! (heaptrack, N = 400) put about 24 KB of the ~30 KB a client cost in `metadata.managedFields`:
//! one entry per field manager, each a `fieldsV1` JSON tree of small maps, on the FhirClientApp
//! (spec by the user, status and finalizer by the operator) and on its Secret. `kubectl apply`
//! adds a full copy of the object in the last-applied annotation. The operator reads neither: it
//! writes with server-side apply and JSON patches and compares spec, status, labels, owner
//! references and data, never field ownership.

use kube::Resource;

/// `kubectl apply`'s copy of the whole object as it was last applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what the operator never reads from a watched object before a cache keeps it.
pub fn lean<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;
    use serde_json::json;

    #[test]
    fn drops_field_ownership_and_the_last_applied_copy_and_keeps_the_rest() {
        let mut secret: Secret = serde_json::from_value(json!({
            "metadata": {
                "name": "s", "namespace": "n", "resourceVersion": "7", "uid": "u",
                "labels": {"app.kubernetes.io/managed-by": "fhir-app-operator"},
                "annotations": {LAST_APPLIED: "{\"big\": true}", "fhirapps.io/hash": "h"},
                "ownerReferences": [{"apiVersion": "fhirapps.io/v1alpha1", "kind": "FhirClientApp",
                    "name": "c", "uid": "o", "controller": true}],
                "managedFields": [{"manager": "fhir-app-operator", "operation": "Apply",
                    "fieldsV1": {"f:data": {"f:client-secret": {}}}}],
            },
            "data": {"client-secret": "c2VjcmV0"},
        }))
        .unwrap();
        let before = secret.clone();
        lean(&mut secret);
        assert_eq!(secret.metadata.managed_fields, None);
        let annotations = secret.metadata.annotations.clone().unwrap();
        assert_eq!(annotations.len(), 1);
        assert_eq!(annotations["fhirapps.io/hash"], "h");
        // Everything the operator compares or follows is untouched.
        assert_eq!(secret.data, before.data);
        assert_eq!(secret.metadata.labels, before.metadata.labels);
        assert_eq!(
            secret.metadata.owner_references,
            before.metadata.owner_references
        );
        assert_eq!(
            secret.metadata.resource_version,
            before.metadata.resource_version
        );
        assert_eq!(secret.metadata.uid, before.metadata.uid);
    }
}
