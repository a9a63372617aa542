//! A resource created again while Entra still holds its deleted application: Entra keeps a deleted
//! application's `uniqueName` for 30 days and refuses a new one with it (400 "Another object with the
//! same value for property uniqueName already exists."; docs/entra-facts/lifecycle-and-policies.md
//! §1.5). When that application is ours for the same resource (its owner tag), it is restored with
//! its service principal, so the client ID and audience given to partners keep working; every
//! credential it had before the deletion is removed (the output Secret gets a new one). When it is
//! not, the resource is Stalled naming it and how to purge or restore it.

use serde_json::{Value, json};

use super::application::{READ_DELETED, WRITE_APPS};
use super::{Error, needs};
use crate::desired::naming::{ResourceIdentity, owned_by};
use crate::graph::types::parse_application;
use crate::graph::{GraphClient, GraphError};

/// Whether a create was refused because a (deleted) application holds the uniqueName. Graph words
/// it as 400 `Request_BadRequest` and some clients report `ObjectConflict`; the Graph client reads
/// both as a conflict, and the message names the property.
pub fn unique_name_held(e: &GraphError) -> bool {
    matches!(
        e,
        GraphError::Conflict { message, .. } | GraphError::BadRequest { message, .. }
            if message.contains("property uniqueName already exists")
    )
}

/// Whether a create was refused because an application holds one of its identifier URIs. A
/// deleted application keeps its identifier URIs too (facts §1.5), and Graph does not say which of
/// the two unique properties it checks first: a re-created resource may meet its own deleted
/// application through either refusal, so both lead to [`restore_held_name`].
pub fn identifier_uri_held(e: &GraphError) -> bool {
    matches!(
        e,
        GraphError::Conflict { message, .. } | GraphError::BadRequest { message, .. }
            if message.contains("property identifierUris already exists")
    )
}

/// The deleted application holding `unique_name`, restored with its service principal and without
/// its old credentials, when it is ours for `id` (or `adopt` says to take it over). `refused` is the
/// create's error, returned as it is when no deleted application holds the name (it may have been
/// purged meanwhile: the retry then creates it).
pub async fn restore_held_name(
    graph: &GraphClient,
    unique_name: &str,
    id: &ResourceIdentity<'_>,
    adopt: bool,
    refused: GraphError,
) -> Result<Value, Error> {
    let held = graph
        .find_deleted_application(unique_name)
        .await
        .map_err(needs("read the deleted applications", READ_DELETED))?;
    let Some(deleted) = held else {
        return Err(refused.into());
    };
    if !owned_by(&deleted.tags, id) && !adopt {
        return Err(Error::UniqueNameHeldByDeletedApp {
            unique_name: unique_name.to_string(),
            object_id: deleted.id.clone(),
            app_id: deleted.app_id,
            url: graph.deleted_item_url(&deleted.id),
        });
    }
    let restored = graph
        .restore_deleted(&deleted.id)
        .await
        .map_err(needs("restore the deleted application", WRITE_APPS))?;
    let restored = without_old_credentials(graph, restored).await?;
    restore_service_principal(graph, &deleted.app_id).await?;
    tracing::info!(unique_name, app_id = %deleted.app_id, "restored the deleted application holding the uniqueName");
    Ok(restored)
}

/// Removes every password and certificate the restored application carries: none was issued to the
/// resource as it is now, and a restored Secret-less credential must not stay valid.
async fn without_old_credentials(graph: &GraphClient, mut app: Value) -> Result<Value, Error> {
    let parsed = parse_application("restoreDeletedItem", &app)?;
    for p in &parsed.password_credentials {
        graph
            .remove_password(&parsed.id, &p.key_id)
            .await
            .map_err(needs("remove a client secret", WRITE_APPS))?;
    }
    if !parsed.key_credentials.is_empty() {
        graph
            .patch_application(&parsed.id, &json!({"keyCredentials": []}))
            .await
            .map_err(needs("remove client certificates", WRITE_APPS))?;
    }
    app["passwordCredentials"] = json!([]);
    app["keyCredentials"] = json!([]);
    Ok(app)
}

/// Restoring an application does not restore its service principal (Learn
/// `directory-deleteditems-restore`); it is restored too, with its assignments and consents. One
/// created meanwhile (409) or none left is fine: the register step finds or creates it.
async fn restore_service_principal(graph: &GraphClient, app_id: &str) -> Result<(), Error> {
    let deleted = graph
        .find_deleted_service_principal(app_id)
        .await
        .map_err(needs("read the deleted service principals", READ_DELETED))?;
    let Some(sp) = deleted else { return Ok(()) };
    match graph.restore_deleted(&sp.id).await {
        Ok(_) | Err(GraphError::Conflict { .. }) => Ok(()),
        Err(e) => Err(needs("restore the deleted service principal", WRITE_APPS)(
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_unique_name_is_told_apart_from_other_refusals() {
        let held = "Another object with the same value for property uniqueName already exists.";
        let conflict = |m: &str| GraphError::Conflict {
            code: "Request_BadRequest".into(),
            message: m.into(),
        };
        assert!(unique_name_held(&conflict(held)));
        assert!(!unique_name_held(&conflict(
            "Another object with the same value for property identifierUris already exists."
        )));
        assert!(identifier_uri_held(&conflict(
            "Another object with the same value for property identifierUris already exists."
        )));
        assert!(!identifier_uri_held(&conflict(held)));
        assert!(!unique_name_held(&GraphError::NotFound {
            code: "Request_ResourceNotFound".into(),
            message: held.into(),
        }));
    }
}
