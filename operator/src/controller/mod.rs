//! Reconcilers: a thin layer that reads, calls the pure functions of `desired/` and applies the
//! result. See docs/architecture.md for the pipeline.

pub mod application;
pub mod client_app;
mod context;
pub mod credentials_hold;
pub mod drift;
mod error;
pub mod finalizer;
mod memo;
pub mod outputs;
pub mod resource_app;
mod restore;
pub mod revoke;
mod status;

pub use context::{Caches, Context, DEFAULT_POLICY_TTL, PolicyRead, resource_app_is_ready};
pub use error::{
    CONDITION_REASONS, EVENT_REASONS, Error, MESSAGE_MAX, kube_message, needs, shorten,
};
pub use outputs::{
    DesiredSecret, OPERATOR_ANNOTATION_PREFIX, apply_config_map, apply_secret, managed_labels,
    secret_is_current,
};
pub use status::{Outcome, Verdict, backoff, finish};

/// Field manager for everything the operator writes.
pub const FIELD_MANAGER: &str = "fhirapps.io/operator";
/// Finalizer on both kinds.
pub const FINALIZER: &str = "fhirapps.io/cleanup";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TenantSpec;
    use crate::config::OperatorConfig;
    use crate::graph::{Credential, GraphError};
    use crate::metrics::Metrics;
    use kube::Client;
    use serde_json::json;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn retries_honour_graphs_retry_after_and_a_stale_finalizer_patch_retries_soon() {
        let throttled = Error::Graph(GraphError::Throttled {
            retry_after: Some(Duration::from_secs(42)),
        });
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(42)));
        let status = |code, causes: serde_json::Value| {
            kube::Error::Api(Box::new(
                serde_json::from_value(
                    json!({"status": "Failure", "code": code, "reason": "Invalid",
                    "message": "test failed", "details": {"causes": causes}}),
                )
                .unwrap(),
            ))
        };
        let stale = Error::FinalizerPatch(status(422, json!([])));
        assert_eq!(stale.retry_after(), Some(Duration::from_secs(1)));
        assert_eq!(
            stale.category(),
            "KubeApi",
            "counted under its real category"
        );
        let forbidden = Error::FinalizerPatch(status(403, json!([])));
        assert_eq!(forbidden.retry_after(), None);
        // An admission policy refusing the patch is not a stale copy: no fast retry.
        let refused = Error::FinalizerPatch(status(422, json!([{"message": "denied request"}])));
        assert_eq!(refused.retry_after(), None);
        let other = Error::InvalidSpec("x".into());
        assert_eq!(other.retry_after(), None);
    }

    #[tokio::test]
    async fn another_tenant_without_a_credentials_secret_keeps_one_graph_client_and_its_token() {
        crate::init_crypto();
        let kube =
            Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
        let cred = Credential::Secret {
            client_id: "op".into(),
            secret: "s".into(),
        };
        let config = OperatorConfig::new(
            "00000000-0000-0000-0000-00000000000a",
            cred,
            "https://graph.example",
            "https://login.example",
        );
        let ctx = Context::new(kube, config, Arc::new(Metrics::default())).unwrap();
        let other = TenantSpec {
            tenant_id: Some("00000000-0000-0000-0000-00000000000b".into()),
            credentials_secret_ref: None,
        };
        let a = ctx.graph_for("ns", Some(&other)).await.unwrap();
        let b = ctx.graph_for("ns", Some(&other)).await.unwrap();
        assert_eq!(a.tenant_id(), "00000000-0000-0000-0000-00000000000b");
        assert!(
            a.shares_token_cache(&b),
            "a new client per reconcile requests a new token every time"
        );
    }

    #[test]
    fn a_full_directory_says_how_to_free_it_in_this_cloud() {
        let quota = Error::Graph(GraphError::DirectoryQuotaExceeded {
            message: "The directory object quota limit for the Tenant has been exceeded.".into(),
        })
        .in_cloud("https://graph.microsoft.com/v1.0");
        assert_eq!(quota.category(), "DirectoryQuotaExceeded");
        let m = quota.summary();
        assert!(!m.ends_with("..."), "whole: {} bytes", m.len());
        for want in [
            "30 days",
            "deletionPolicy: Purge",
            "https://graph.microsoft.com/v1.0/directory/deletedItems/<id>",
            "of the tenant",
        ] {
            assert!(m.contains(want), "{want} in {m}");
        }
    }

    #[test]
    fn condition_messages_are_short_sentences_without_debug_dumps() {
        let status: kube::core::Status = serde_json::from_value(json!({"status": "Failure", "code": 422,
            "reason": "Invalid", "message": "Secret \"x\" is invalid: metadata.labels: Invalid value"}))
        .unwrap();
        let e = Error::OutputRejected {
            what: "Secret ns/x".into(),
            source: kube::Error::Api(Box::new(status)),
        };
        let m = e.summary();
        assert_eq!(
            m,
            "the API server refused to write Secret ns/x: Secret \"x\" is invalid: metadata.labels: Invalid value (422 Invalid)"
        );
        assert!(
            e.is_permanent(),
            "an invalid write fails the same way again"
        );
        let long = Error::InvalidSpec("é".repeat(2000));
        let m = long.summary();
        assert!(m.len() <= MESSAGE_MAX && m.ends_with("..."), "{}", m.len());
    }
}
