//! The watcher tasks: one per tenant with owners, each polling both collections every
//! `--delta-poll`, following `@odata.nextLink` to the round's `@odata.deltaLink` and keeping it for
//! the next round. The decisions are [`super::round`]'s; this is the thin layer that calls Graph.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::round::{self, Failure};
use super::{Owner, TenantSource};
use crate::controller::Context;
use crate::graph::delta::{DeltaEntry, DeltaKind};
use crate::graph::{GraphClient, GraphError};

/// How often the supervisor looks for a tenant that got its first owner.
const DISCOVER_EVERY: Duration = Duration::from_secs(2);
/// Most pages one round follows (a Graph that keeps linking cannot hold the watcher forever).
const MAX_PAGES: usize = 10_000;

/// Runs a watcher for every tenant with owners until `stop`; nothing when delta is disabled.
pub async fn run(ctx: Arc<Context>, mut stop: watch::Receiver<bool>) {
    let Some(poll) = ctx
        .config
        .delta_poll
        .filter(|_| ctx.drift.triggers.is_some())
    else {
        tracing::info!(
            "Graph delta watcher disabled: every object is re-read every --resync-unwatched"
        );
        return;
    };
    let mut tasks = JoinSet::new();
    // The operator's own tenant is watched from the start, owners or not: the controllers wait for
    // its first round (`Drift::own_tenant_first_round`), so what they read is covered by delta from
    // their first read on and no owner is read twice. Other tenants are watched once they have owners.
    let own = ctx.config.tenant_id.clone();
    let mut running = HashSet::from([own.clone()]);
    tasks.spawn(watch_tenant(ctx.clone(), own, poll, stop.clone()));
    loop {
        for (tenant, _) in ctx.drift.index().tenants() {
            if running.insert(tenant.clone()) {
                tasks.spawn(watch_tenant(ctx.clone(), tenant, poll, stop.clone()));
            }
        }
        tokio::select! {
            Some(Ok(tenant)) = tasks.join_next() => { running.remove(&tenant); }
            _ = tokio::time::sleep(DISCOVER_EVERY) => {}
            _ = stop.wait_for(|s| *s) => {
                tasks.abort_all();
                return;
            }
        }
    }
}

/// Where each collection's rounds stand in one tenant.
#[derive(Default)]
struct Cursor {
    links: HashMap<DeltaKind, String>,
    /// Collections whose link went stale: once a new round starts, every owner is re-read.
    rebaseline: BTreeSet<DeltaKind>,
}

/// One tenant's watcher, until the tenant has no owner left (returns its id) or `stop`; the
/// operator's own tenant's runs until `stop`.
async fn watch_tenant(
    ctx: Arc<Context>,
    tenant: String,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
) -> String {
    let own = tenant == ctx.config.tenant_id;
    let mut cursor = Cursor::default();
    let mut was_watching = false;
    let mut started = false;
    loop {
        let source = match ctx.drift.index().source_of(&tenant) {
            Some(source) => source,
            None if own => TenantSource::default(),
            None => {
                ctx.drift.health().remove(&tenant);
                return tenant;
            }
        };
        one_round(&ctx, &tenant, &source, &mut cursor).await;
        if !started && DeltaKind::ALL.iter().all(|k| cursor.links.contains_key(k)) {
            // The round's starting point (`$deltatoken=latest`) is some moment before its answer
            // came: an owner that read Graph before now may have missed a change made before that
            // point, so it reads once more.
            started = true;
            let owners = ctx
                .drift
                .index()
                .read_before(&tenant, std::time::Instant::now());
            requeue(&ctx, &tenant, &owners, "baseline");
        }
        if own {
            ctx.drift.own_first_round_ended();
        }
        let watching = ctx.drift.watching(&tenant);
        ctx.metrics.set_delta_watching(&tenant, watching);
        if was_watching && !watching {
            // The owners were told to come back only after the long resync: bring them to the
            // unwatched pace now, so drift is not left unseen while delta fails.
            let owners = ctx.drift.index().owners_in(&tenant);
            tracing::warn!(
                tenant,
                owners = owners.len(),
                "Graph delta is failing for this tenant; re-reading its objects every --resync-unwatched until it works again"
            );
            requeue(&ctx, &tenant, &owners, "unwatched");
        } else if watching && !was_watching {
            tracing::info!(
                tenant,
                "watching the tenant's applications and service principals through Graph delta"
            );
        }
        was_watching = watching;
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = stop.wait_for(|s| *s) => return tenant,
        }
    }
}

/// A round of both collections; the tenant counts as watched again when both end well.
async fn one_round(ctx: &Context, tenant: &str, source: &TenantSource, cursor: &mut Cursor) {
    let graph = match ctx.graph_for(&source.namespace, source.spec.as_ref()).await {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(tenant, error = %e, "no Graph client for the delta watcher");
            for kind in DeltaKind::ALL {
                ctx.metrics.delta_round(tenant, kind.label(), "error");
            }
            return;
        }
    };
    let mut all_ok = true;
    for kind in DeltaKind::ALL {
        all_ok &= collection_round(ctx, &graph, tenant, kind, cursor).await;
    }
    if all_ok {
        ctx.drift.set_health(tenant, |h| {
            h.last_ok = Some(std::time::Instant::now());
            h.forbidden = false;
        });
        ctx.metrics
            .set_delta_last_success(tenant, jiff::Timestamp::now().as_second());
    }
}

/// One collection's round, started over once if its link went stale; whether it ended well.
async fn collection_round(
    ctx: &Context,
    graph: &GraphClient,
    tenant: &str,
    kind: DeltaKind,
    cursor: &mut Cursor,
) -> bool {
    for _ in 0..2 {
        let link = cursor.links.get(&kind).cloned();
        let baseline = link.is_none();
        // A first round's entries are only its starting point; a later round's are acted on page by
        // page, so a round naming thousands of objects never sits in memory whole.
        let mut changes = 0;
        let on_page = |entries: Vec<DeltaEntry>| {
            if !baseline {
                changes += entries.len();
                named(ctx, tenant, kind, &entries);
            }
        };
        match follow(graph, kind, link, on_page).await {
            Ok(next) => {
                cursor.links.insert(kind, next);
                ended(ctx, tenant, kind, baseline, changes, cursor);
                return true;
            }
            Err((e, following)) => {
                let f = round::failure(&e, following);
                ctx.metrics.delta_round(tenant, kind.label(), f.label());
                match f {
                    Failure::Stale => {
                        tracing::info!(tenant, kind = kind.label(), error = %e, "the delta link is stale; starting a new round");
                        cursor.links.remove(&kind);
                        cursor.rebaseline.insert(kind);
                    }
                    Failure::Forbidden => {
                        forbidden(ctx, tenant, kind, &e);
                        return false;
                    }
                    Failure::Other => {
                        tracing::warn!(tenant, kind = kind.label(), error = %e, "a Graph delta round failed; trying again at the next poll");
                        return false;
                    }
                }
            }
        }
    }
    false
}

/// What a round that ended well does: a first round only starts the tracking (re-reading every
/// owner if it replaces a stale link); a later one counts what it named (its pages were acted on as
/// they came, [`named`]).
fn ended(
    ctx: &Context,
    tenant: &str,
    kind: DeltaKind,
    baseline: bool,
    changes: usize,
    cursor: &mut Cursor,
) {
    let outcome = if baseline { "baseline" } else { "ok" };
    ctx.metrics.delta_round(tenant, kind.label(), outcome);
    if baseline {
        if cursor.rebaseline.remove(&kind) {
            let owners = ctx.drift.index().owners_in(tenant);
            requeue(ctx, tenant, &owners, "stale");
        }
        return;
    }
    ctx.metrics
        .delta_changes(tenant, kind.label(), changes as u64);
}

/// Re-reads the owners of what one page of a round names. A round that fails after some pages
/// starts again from its old link at the next poll, naming them again: the owners' reconciles
/// find nothing left to do, and an entry that shows the operator's own write triggers nothing.
fn named(ctx: &Context, tenant: &str, kind: DeltaKind, entries: &[DeltaEntry]) {
    if entries.is_empty() {
        return;
    }
    tracing::debug!(
        tenant,
        kind = kind.label(),
        entries = entries.len(),
        "a delta page named objects"
    );
    let owners = round::owners_to_reconcile(&ctx.drift.index(), tenant, kind, entries);
    if !owners.is_empty() {
        tracing::debug!(tenant, kind = kind.label(), owners = ?owners, "Graph delta names owned objects");
        requeue(ctx, tenant, &owners, "change");
    }
}

/// A 403: logged once per change of state, and the tenant goes to the unwatched pace.
fn forbidden(ctx: &Context, tenant: &str, kind: DeltaKind, e: &GraphError) {
    let mut first = false;
    ctx.drift.set_health(tenant, |h| {
        first = !h.forbidden;
        h.forbidden = true;
    });
    if first {
        tracing::warn!(
            tenant,
            kind = kind.label(),
            error = %e,
            "Graph refuses delta queries to the operator (it needs Application.ReadWrite.OwnedBy or Application.Read.All, see docs/permissions.md); re-reading every object every --resync-unwatched instead"
        );
    }
}

/// Follows a round to its deltaLink, handing each page's entries to `on_page` as it comes; the
/// deltaLink, or the error and whether it came from a link Graph gave. A round without a link
/// starts from now (`$deltatoken=latest`), or, if Graph refuses that, lists everything once (the
/// entries are then only the starting point).
async fn follow(
    graph: &GraphClient,
    kind: DeltaKind,
    link: Option<String>,
    mut on_page: impl FnMut(Vec<DeltaEntry>),
) -> Result<String, (GraphError, bool)> {
    let mut following = link.is_some();
    let mut url = link.unwrap_or_else(|| kind.initial_path(true));
    for _ in 0..MAX_PAGES {
        let page = match graph.delta_page(kind, &url).await {
            Ok(p) => p,
            Err(GraphError::BadRequest { .. }) if !following && url.ends_with("=latest") => {
                url = kind.initial_path(false);
                continue;
            }
            Err(e) => return Err((e, following)),
        };
        on_page(page.value);
        if let Some(d) = page.delta_link {
            return Ok(d);
        }
        following = true;
        url = page.next_link.unwrap_or_default();
    }
    let e = GraphError::Decode(format!("{}: more than {MAX_PAGES} pages", kind.label()));
    Err((e, following))
}

/// Marks the owners so that their next reconcile reads Graph (whatever their memo says, also when
/// one is running now) and triggers their reconciles.
fn requeue(ctx: &Context, tenant: &str, owners: &[Owner], reason: &str) {
    ctx.drift.index().mark_dirty(owners);
    ctx.drift.trigger(owners);
    ctx.metrics
        .delta_requeues(tenant, reason, owners.len() as u64);
}
