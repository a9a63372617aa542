//! Drift found through Graph delta queries (issue 26 item 2): one watcher per tenant the operator
//! uses polls `/applications/delta` and `/servicePrincipals/delta` ([`watcher`]); an entry for an
//! object a FhirClientApp or FhirResourceApp owns ([`index`]) forgets that owner's reconcile memo
//! and triggers its reconcile, which reads Graph and heals what changed. So a quiet tenant costs two
//! Graph reads per poll, whatever the number of clients, and the full re-read of every object
//! (`--resync`) becomes a rare safety net.
//!
//! While a tenant is not watched — the watcher is disabled, has not finished its first round, Graph
//! refuses delta (403) or rounds keep failing — its objects are re-read every `--resync-unwatched`
//! (5 minutes, the pace before delta) so drift is never left unwatched; [`Drift::resync_for`] says
//! which pace applies.

pub mod index;
pub mod round;
mod watcher;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::channel::mpsc::UnboundedSender;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::watch;

pub use index::{Index, Owner, OwnerKind, Part, TenantSource};
pub use watcher::run;

use crate::api::{AppStatus, FhirClientApp, FhirResourceApp, TenantSpec};
use crate::config::OperatorConfig;
use crate::graph::delta::DeltaKind;

/// Where a delta entry's owners are sent: the controllers' `reconcile_on` streams.
pub struct Triggers {
    pub clients: UnboundedSender<ObjectRef<FhirClientApp>>,
    pub resources: UnboundedSender<ObjectRef<FhirResourceApp>>,
}

/// How a tenant's watcher stands.
#[derive(Clone, Copy, Debug, Default)]
struct Health {
    /// When the last round of both collections ended well.
    last_ok: Option<Instant>,
    /// Graph refused delta (403): this tenant is re-read at the unwatched pace.
    forbidden: bool,
}

/// The drift watchers' shared state: the index, each tenant's health, the triggers.
pub struct Drift {
    poll: Option<Duration>,
    resync: Duration,
    unwatched: Duration,
    index: Mutex<Index>,
    health: Mutex<HashMap<String, Health>>,
    triggers: Option<Triggers>,
    /// Set once the operator's own tenant's first round has ended (well or not), see
    /// [`Drift::own_tenant_first_round`].
    own_first_round: watch::Sender<bool>,
}

impl Drift {
    pub fn new(config: &OperatorConfig) -> Self {
        Self {
            poll: config.delta_poll,
            resync: config.resync,
            unwatched: config.resync_unwatched,
            index: Mutex::default(),
            health: Mutex::default(),
            triggers: None,
            own_first_round: watch::Sender::new(false),
        }
    }

    /// Reconciles are triggered through these from now on; without them (a bare Context in unit
    /// tests) no watcher runs and every tenant stays at the unwatched pace.
    pub fn with_triggers(mut self, triggers: Triggers) -> Self {
        self.triggers = Some(triggers);
        self
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn health(&self) -> std::sync::MutexGuard<'_, HashMap<String, Health>> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the Graph objects `owner` holds, from the status its reconcile wrote: the
    /// application (object ID and application ID) and the service principal.
    pub fn track(
        &self,
        owner: Owner,
        namespace: &str,
        tenant: Option<&TenantSpec>,
        status: &AppStatus,
    ) {
        let Some(tenant_id) = status.tenant_id.as_deref() else {
            return;
        };
        let ids = [
            status.application_object_id.as_deref().unwrap_or_default(),
            status.client_id.as_deref().unwrap_or_default(),
            status
                .service_principal_object_id
                .as_deref()
                .unwrap_or_default(),
        ];
        if ids.iter().all(|i| i.is_empty()) {
            return self.untrack(&owner);
        }
        let source = TenantSource {
            namespace: namespace.to_string(),
            spec: tenant.cloned(),
        };
        let key = status.credential.as_ref().and_then(|c| c.key_id.as_deref());
        let mut index = self.index();
        index.expect_key(&owner, key);
        index.track(owner, tenant_id, source, &ids);
    }

    /// Records what `owner`'s reconcile converges its application or service principal to (before
    /// it writes, so that the echo of the write finds it), see [`index::Expected`].
    pub fn expect(&self, owner: &Owner, part: Part, body: &serde_json::Value) {
        let kind = match part {
            Part::Application => DeltaKind::Applications,
            Part::ServicePrincipal => DeltaKind::ServicePrincipals,
        };
        let selected: Vec<&str> = kind.selected().collect();
        self.index().expect(owner, part, body, &selected);
    }

    /// Records whether `owner`'s application keeps `api.acceptMappedClaims` on (the fhirUser claim).
    pub fn expect_mapped_claims(&self, owner: &Owner, on: bool) {
        self.index().expect_mapped_claims(owner, on);
    }

    /// Forgets `owner` (its object is deleted).
    pub fn untrack(&self, owner: &Owner) {
        self.index().forget(owner);
    }

    /// Called by a reconcile before it uses its memo: whether delta named `owner` since its last
    /// full reconcile (the memo must not be trusted then). Clears the mark.
    pub fn take_dirty(&self, owner: &Owner) -> bool {
        self.index().take_dirty(owner)
    }

    /// `owner`'s full reconcile begins reading Graph now: a tenant whose first round starts later
    /// re-reads it once (what changed in between is in no round).
    pub fn reading(&self, owner: &Owner) {
        self.index().reading(owner, Instant::now());
    }

    /// Waits (at most `within`) until the operator's own tenant's first delta round has ended. The
    /// controllers start after it: a reconcile that reads Graph before a tenant's first round ends
    /// may miss a change made before the round's starting point, so it is read again once the
    /// round ends; reading after it costs nothing more. Returns at once when no watcher runs.
    pub async fn own_tenant_first_round(&self, within: Duration) {
        if self.poll.is_none() || self.triggers.is_none() {
            return;
        }
        let mut rx = self.own_first_round.subscribe();
        if tokio::time::timeout(within, rx.wait_for(|ended| *ended))
            .await
            .is_err()
        {
            tracing::warn!(
                waited_secs = within.as_secs(),
                "the own tenant's first Graph delta round has not ended; starting the controllers anyway"
            );
        }
    }

    fn own_first_round_ended(&self) {
        self.own_first_round.send_replace(true);
    }

    /// Whether `tenant`'s watcher reports now: its rounds end well (see [`round::watching`]).
    pub fn watching(&self, tenant: &str) -> bool {
        let health = self.health().get(tenant).copied().unwrap_or_default();
        self.triggers.is_some()
            && round::watching(self.poll, health.last_ok, health.forbidden, Instant::now())
    }

    /// How long an object of `tenant` may go without a full re-read: the long safety-net resync
    /// while the tenant is watched, the pace before delta otherwise.
    pub fn resync_for(&self, tenant: &str) -> Duration {
        if self.watching(tenant) {
            self.resync
        } else {
            self.resync.min(self.unwatched)
        }
    }

    fn set_health(&self, tenant: &str, f: impl FnOnce(&mut Health)) {
        f(self.health().entry(tenant.to_string()).or_default());
    }

    /// Sends each owner to its controller; the caller forgot their memos first.
    fn trigger(&self, owners: &[Owner]) {
        let Some(t) = &self.triggers else { return };
        // A closed channel means the controllers stopped: nothing is left to reconcile.
        for o in owners {
            let ns = o.namespace.as_str();
            let sent = match o.kind {
                OwnerKind::Client => (t.clients)
                    .unbounded_send(ObjectRef::new(&o.name).within(ns))
                    .is_ok(),
                OwnerKind::Resource => (t.resources)
                    .unbounded_send(ObjectRef::new(&o.name).within(ns))
                    .is_ok(),
            };
            if !sent {
                return;
            }
        }
    }
}
