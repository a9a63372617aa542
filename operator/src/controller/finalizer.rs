//! The finalizer around both reconcilers: add it before the first apply, run cleanup on deletion,
//! then remove it.
//!
//! The same protocol as kube-runtime's `finalizer` helper (JSON patches guarded by a `test`, so a
//! concurrent change fails the patch instead of being overwritten), written here for two reasons:
//! kube's helper patches without a field manager, so its writes show up in `managedFields` as
//! `unknown`; and it wraps every reconcile error in its own error type, which every caller then had
//! to unwrap again (metrics, retry timing, conditions). Here the reconcile's own error comes back
//! as it is, and a failed finalizer patch is [`Error::FinalizerPatch`].

use std::sync::Arc;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{Error, FIELD_MANAGER};

/// What the reconciler is asked to do.
pub enum Event<K> {
    /// The object exists and carries the finalizer: converge it.
    Apply(Arc<K>),
    /// The object is being deleted: remove what it owns outside Kubernetes.
    Cleanup(Arc<K>),
}

/// Runs `reconcile` with the finalizer `name` in place (see the module comment).
pub async fn with_finalizer<K, F, Fut>(
    api: &Api<K>,
    name: &str,
    obj: Arc<K>,
    reconcile: F,
) -> Result<Action, Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
    F: FnOnce(Event<K>) -> Fut,
    Fut: std::future::Future<Output = Result<Action, Error>>,
{
    let index = obj.finalizers().iter().position(|f| f == name);
    let deleting = obj.meta().deletion_timestamp.is_some();
    let object = obj.name_any();
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match (index, deleting) {
        (Some(_), false) => reconcile(Event::Apply(obj)).await,
        (Some(i), true) => {
            let action = reconcile(Event::Cleanup(obj)).await?;
            // Guarded by `test`: never remove another controller's finalizer that moved to index i.
            let path = format!("/metadata/finalizers/{i}");
            let ops = json!([{"op": "test", "path": path, "value": name}, {"op": "remove", "path": path}]);
            match api
                .patch(&object, &params, &Patch::Json::<()>(json_patch(ops)))
                .await
            {
                // Gone already (another finalizer was the last, or a second delete): done.
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(action),
                Err(e) => Err(Error::FinalizerPatch(e)),
                Ok(_) => Ok(action),
            }
        }
        (None, false) => {
            // Kubernetes does not deduplicate finalizers: fail (and retry) if the list changed.
            let ops = if obj.finalizers().is_empty() {
                json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                       {"op": "add", "path": "/metadata/finalizers", "value": [name]}])
            } else {
                json!([{"op": "test", "path": "/metadata/finalizers", "value": obj.finalizers()},
                       {"op": "add", "path": "/metadata/finalizers/-", "value": name}])
            };
            api.patch(&object, &params, &Patch::Json::<()>(json_patch(ops)))
                .await
                .map_err(Error::FinalizerPatch)?;
            // The patch is a change the watch delivers: the apply runs on that event.
            Ok(Action::await_change())
        }
        (None, true) => Ok(Action::await_change()),
    }
}

fn json_patch(ops: serde_json::Value) -> json_patch::Patch {
    serde_json::from_value(ops).expect("a well-formed JSON patch")
}
