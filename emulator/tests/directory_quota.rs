//! The directory's object quota: per tenant (soft-deleted objects counted until purged) and, where
//! the tenant applies it to applications, per creator (docs/entra-facts/lifecycle-and-policies.md §2).
mod common;
use common::*;
use serde_json::json;

const TENANT_FULL: &str = "The directory object quota limit for the Tenant has been exceeded. Please ask your administrator to increase the quota limit or delete objects to reduce the used quota.";
const PRINCIPAL_FULL: &str = "The directory object quota limit for the Principal has been exceeded. Please ask your administrator to increase the quota limit or delete objects to reduce the used quota.";

/// Deleted (with its service principal), the application still counts: the next create is
/// refused. Purged, it frees its place at once: the next create succeeds.
async fn deleted_counts_until_purged(g: &Graph, id: &str) {
    let create = || g.post("/applications", json!({"displayName": "after"}));
    assert_eq!(g.delete(&format!("/applications/{id}")).await.status, 204);
    assert_eq!(err_code(&create().await), "Directory_QuotaExceeded");
    let purge = g.delete(&format!("/directory/deletedItems/{id}")).await;
    assert_eq!(purge.status, 204);
    let r = create().await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn tenant_quota_counts_deleted_objects_until_they_are_purged() {
    let mut cfg = config();
    // The fresh tenant holds 5 objects (the bootstrap app and its service principal, and the
    // Graph, ARM and Healthcare service principals): room for 2 more.
    cfg.tenants[0].directory_quota = Some(7);
    let (emu, c) = start(cfg).await;
    let op = Graph::new(&c, &emu, &operator_token(&c, &emu).await);
    let admin = Graph::new(&c, &emu, &emu.admin_token(&emu.tenant_id()));
    let (id, _) = app_with_service_principal(&op, "first").await;
    let r = op
        .post("/applications", json!({"displayName": "second"}))
        .await;
    assert_eq!(
        refusal(&r),
        (403, "Directory_QuotaExceeded".into(), TENANT_FULL.into())
    );
    let r = admin
        .post("/applications", json!({"displayName": "second"}))
        .await;
    assert_eq!(r.status, 403, "the tenant's quota binds administrators too");
    deleted_counts_until_purged(&op, &id).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn creator_quota_applies_to_an_owned_by_caller_only_when_the_tenant_says_so() {
    let mut cfg = config();
    cfg.tenants[0].creator_quota = Some(2);
    let (emu, c) = start(cfg).await;
    let op = Graph::new(&c, &emu, &operator_token(&c, &emu).await);
    // By default app-only callers are not capped (state::quota explains the choice).
    for i in 0..3 {
        let r = op
            .post("/applications", json!({"displayName": format!("a{i}")}))
            .await;
        assert_eq!(r.status, 201);
    }
    emu.shutdown().await;

    let mut cfg = config();
    cfg.tenants[0].creator_quota = Some(2);
    cfg.tenants[0].creator_quota_applies_to_apps = true;
    let (emu, c) = start(cfg).await;
    let op = Graph::new(&c, &emu, &operator_token(&c, &emu).await);
    let admin = Graph::new(&c, &emu, &emu.admin_token(&emu.tenant_id()));
    let (id, _) = app_with_service_principal(&op, "mine").await;
    let r = op
        .post("/applications", json!({"displayName": "one too many"}))
        .await;
    assert_eq!(
        refusal(&r),
        (403, "Directory_QuotaExceeded".into(), PRINCIPAL_FULL.into())
    );
    // A caller with a tenant-wide write permission is not capped.
    let r = admin
        .post("/applications", json!({"displayName": "admin's"}))
        .await;
    assert_eq!(r.status, 201);
    deleted_counts_until_purged(&op, &id).await;
    emu.shutdown().await;
}
