//! Which custom object owns which Graph object: filled from each object's status as it reconciles
//! (application object ID, application ID, service principal object ID), read by the drift watcher
//! to turn a delta entry into the owners to reconcile. Pure data; no Graph, no Kubernetes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use crate::api::TenantSpec;

/// The two kinds that own Graph objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OwnerKind {
    Client,
    Resource,
}

/// A FhirClientApp or FhirResourceApp, by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner {
    pub kind: OwnerKind,
    pub namespace: String,
    pub name: String,
}

impl Owner {
    pub fn client(namespace: &str, name: &str) -> Self {
        Self::new(OwnerKind::Client, namespace, name)
    }
    pub fn resource(namespace: &str, name: &str) -> Self {
        Self::new(OwnerKind::Resource, namespace, name)
    }
    fn new(kind: OwnerKind, namespace: &str, name: &str) -> Self {
        Self {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// How the watcher gets a Graph client for a tenant: through an owner's namespace and tenant spec,
/// as its reconcile does (the operator's own credentials, or a tenant credentials Secret).
/// The default (no namespace, no spec) is the operator's own credentials in its own tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantSource {
    pub namespace: String,
    pub spec: Option<TenantSpec>,
}

/// What one owner registered: its tenant and Graph ids. The tenant and source are shared by every
/// owner that has the same (one allocation per namespace, not per owner).
#[derive(Clone, Debug, PartialEq)]
struct Tracked {
    tenant: Arc<str>,
    source: Arc<TenantSource>,
    ids: Vec<String>,
}

/// An owner as the maps hold it: one allocation shared by all of them (an index entry per client
/// in five maps would otherwise copy its namespace and name five times).
type Shared = Arc<Owner>;

/// A tenant and how it is reached, as owners share them.
type SharedSource = (Arc<str>, Arc<TenantSource>);

/// What an owner's reconcile left in Graph, so that a delta entry caused by the operator's own
/// write (a create, a PATCH, a new password) costs no reconcile: the entry is compared with it
/// ([`super::round::drifted`]). Bodies are kept as compact JSON (read only when an entry comes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expected {
    /// The application properties the operator converges (`desired::application`'s body; boxed:
    /// no spare capacity kept for the life of the process).
    pub application: Option<Box<str>>,
    /// The service principal properties it converges (`{}`: none).
    pub service_principal: Option<Box<str>>,
    /// The key ID of the password or certificate the output Secret holds.
    pub key_id: Option<String>,
    /// Whether the fhirUser step set `api.acceptMappedClaims` (issue 25): without it Entra refuses
    /// every token of the app (AADSTS50146), so a flip out of band is drift, though
    /// `desired::application` leaves the property out.
    pub accepts_mapped_claims: bool,
}

/// Which part of [`Expected`] a reconcile step records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Application,
    ServicePrincipal,
}

/// Owners by Graph id, and the tenants they live in.
#[derive(Default, Debug)]
pub struct Index {
    /// Owners by id: almost always one (a Vec, not a set: a set's node costs more memory than the
    /// few owners an id ever has).
    by_id: HashMap<String, Vec<Shared>>,
    owners: HashMap<Shared, Tracked>,
    expected: HashMap<Shared, Expected>,
    /// When each owner's last full reconcile began reading Graph.
    read_from: HashMap<Shared, Instant>,
    /// Owners whose next reconcile must read Graph whatever its memo says (delta named them).
    dirty: HashSet<Shared>,
    /// The tenants and sources that `Tracked` entries share, by namespace.
    sources: HashMap<String, Vec<SharedSource>>,
}

impl Index {
    /// Records (or replaces) what `owner` holds in `tenant`: `ids` are Graph object ids and
    /// application IDs, empty strings ignored.
    pub fn track(&mut self, owner: Owner, tenant: &str, source: TenantSource, ids: &[&str]) {
        self.untrack(&owner);
        let owner = self.shared(&owner);
        let (tenant, source) = self.shared_source(tenant, source);
        let ids: Vec<String> = ids
            .iter()
            .filter(|i| !i.is_empty())
            .map(|i| i.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for id in &ids {
            let owners = self.by_id.entry(id.clone()).or_default();
            if !owners.contains(&owner) {
                owners.push(owner.clone());
            }
        }
        let tracked = Tracked {
            tenant,
            source,
            ids,
        };
        self.owners.insert(owner, tracked);
    }

    /// The one allocation of `owner` the maps share (a new one if no map holds it yet).
    fn shared(&self, owner: &Owner) -> Shared {
        (self.owners.get_key_value(owner).map(|(k, _)| k))
            .or_else(|| self.expected.get_key_value(owner).map(|(k, _)| k))
            .or_else(|| self.read_from.get_key_value(owner).map(|(k, _)| k))
            .cloned()
            .unwrap_or_else(|| Arc::new(owner.clone()))
    }

    /// The shared copies of `tenant` and `source` (per namespace, a few at most).
    fn shared_source(&mut self, tenant: &str, source: TenantSource) -> SharedSource {
        let known = self.sources.entry(source.namespace.clone()).or_default();
        if let Some((t, s)) = known.iter().find(|(t, s)| &**t == tenant && **s == source) {
            return (t.clone(), s.clone());
        }
        let pair = (Arc::<str>::from(tenant), Arc::new(source));
        known.push(pair.clone());
        pair
    }

    /// Records what `owner`'s reconcile converges `part` to (only the properties `selected` names:
    /// delta returns no others).
    pub fn expect(
        &mut self,
        owner: &Owner,
        part: Part,
        body: &serde_json::Value,
        selected: &[&str],
    ) {
        let kept: serde_json::Map<String, serde_json::Value> = (body.as_object().into_iter())
            .flatten()
            .filter(|(k, _)| selected.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let json = Some(serde_json::Value::Object(kept).to_string().into_boxed_str());
        let owner = self.shared(owner);
        let e = self.expected.entry(owner).or_default();
        match part {
            Part::Application => e.application = json,
            Part::ServicePrincipal => e.service_principal = json,
        }
    }

    /// Records the key ID the owner's output Secret holds (`None`: no credential).
    pub fn expect_key(&mut self, owner: &Owner, key_id: Option<&str>) {
        let owner = self.shared(owner);
        self.expected.entry(owner).or_default().key_id = key_id.map(String::from);
    }

    /// Records whether the owner's fhirUser step keeps `api.acceptMappedClaims` on.
    pub fn expect_mapped_claims(&mut self, owner: &Owner, on: bool) {
        let owner = self.shared(owner);
        self.expected
            .entry(owner)
            .or_default()
            .accepts_mapped_claims = on;
    }

    /// What `owner`'s reconcile left in Graph, as far as recorded.
    pub fn expected(&self, owner: &Owner) -> Option<&Expected> {
        self.expected.get(owner)
    }

    /// Forgets `owner` (deleted, or no longer registered anywhere).
    pub fn forget(&mut self, owner: &Owner) {
        self.untrack(owner);
        self.expected.remove(owner);
        self.read_from.remove(owner);
        self.dirty.remove(owner);
    }

    /// `owner`'s full reconcile begins reading Graph at `at`.
    pub fn reading(&mut self, owner: &Owner, at: Instant) {
        let owner = self.shared(owner);
        self.read_from.insert(owner, at);
    }

    /// The owners in `tenant` (or not yet known to be in any) that last read Graph before `at`:
    /// what changed between their read and a round that starts at `at` is in no round.
    pub fn read_before(&self, tenant: &str, at: Instant) -> Vec<Owner> {
        let mut v: Vec<Owner> = (self.read_from.iter())
            .filter(|(o, t)| **t < at && self.owners.get(*o).is_none_or(|tr| &*tr.tenant == tenant))
            .map(|(o, _)| Owner::clone(o))
            .collect();
        v.sort();
        v
    }

    /// The next reconcile of each of `owners` reads Graph (see [`Self::take_dirty`]).
    pub fn mark_dirty(&mut self, owners: &[Owner]) {
        for o in owners {
            let o = self.shared(o);
            self.dirty.insert(o);
        }
    }

    /// Whether `owner` must read Graph now; clears the mark. A mark set while its reconcile runs
    /// stays for the run that the trigger queues after it.
    pub fn take_dirty(&mut self, owner: &Owner) -> bool {
        self.dirty.remove(owner)
    }

    /// Removes `owner`'s ids (before new ones are recorded).
    fn untrack(&mut self, owner: &Owner) {
        let Some(old) = self.owners.remove(owner) else {
            return;
        };
        self.release_source(old.source);
        for id in old.ids {
            if let Some(set) = self.by_id.get_mut(&id) {
                set.retain(|o| **o != *owner);
                if set.is_empty() {
                    self.by_id.remove(&id);
                }
            }
        }
    }

    /// Drops the shared `source` when no owner uses it any more (only the interning table holds it).
    fn release_source(&mut self, source: Arc<TenantSource>) {
        let ns = source.namespace.clone();
        drop(source);
        if let Some(known) = self.sources.get_mut(&ns) {
            known.retain(|(_, s)| Arc::strong_count(s) > 1);
            if known.is_empty() {
                self.sources.remove(&ns);
            }
        }
    }

    /// The owners in `tenant` of any of `ids` (a delta entry's object id and application ID).
    /// An id nobody owns costs a map lookup.
    pub fn owners_of<'a>(&self, tenant: &str, ids: impl Iterator<Item = &'a str>) -> Vec<Owner> {
        let found: BTreeSet<&Owner> = ids
            .filter_map(|id| self.by_id.get(id))
            .flatten()
            .filter(|o| self.owners.get(*o).is_some_and(|t| &*t.tenant == tenant))
            .map(|o| &**o)
            .collect();
        found.into_iter().cloned().collect()
    }

    /// Every owner in `tenant`.
    pub fn owners_in(&self, tenant: &str) -> Vec<Owner> {
        let mut v: Vec<Owner> = self
            .owners
            .iter()
            .filter(|(_, t)| &*t.tenant == tenant)
            .map(|(o, _)| Owner::clone(o))
            .collect();
        v.sort();
        v
    }

    /// Every tenant with an owner, each with how to reach it (the source of its first owner in
    /// order, so the choice is stable while that owner lives).
    pub fn tenants(&self) -> Vec<(String, TenantSource)> {
        let mut by_tenant: HashMap<&str, (&Owner, &TenantSource)> = HashMap::new();
        for (o, t) in &self.owners {
            let e = by_tenant.entry(&t.tenant).or_insert((o, &t.source));
            if **o < *e.0 {
                *e = (o, &t.source);
            }
        }
        let mut v: Vec<(String, TenantSource)> = by_tenant
            .into_iter()
            .map(|(t, (_, s))| (t.to_string(), s.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// How to reach `tenant` now, `None` once it has no owner.
    pub fn source_of(&self, tenant: &str) -> Option<TenantSource> {
        self.tenants()
            .into_iter()
            .find(|(t, _)| t == tenant)
            .map(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(ns: &str) -> TenantSource {
        TenantSource {
            namespace: ns.into(),
            spec: None,
        }
    }

    #[test]
    fn entries_find_their_owners_by_any_id_and_only_in_their_tenant() {
        let mut ix = Index::default();
        let etl = Owner::client("ns", "etl");
        let fhir = Owner::resource("ns", "fhir");
        ix.track(
            etl.clone(),
            "t1",
            own("ns"),
            &["app-obj", "app-id", "sp-obj"],
        );
        ix.track(fhir.clone(), "t1", own("ns"), &["r-obj", "r-id", ""]);
        assert_eq!(
            ix.owners_of("t1", ["sp-obj"].into_iter()),
            vec![etl.clone()]
        );
        assert_eq!(
            ix.owners_of("t1", ["x", "app-id"].into_iter()),
            vec![etl.clone()],
            "an entry names its object id and appId"
        );
        assert!(ix.owners_of("t2", ["app-obj"].into_iter()).is_empty());
        assert!(ix.owners_of("t1", ["nobody", ""].into_iter()).is_empty());
        assert_eq!(ix.owners_in("t1"), [etl.clone(), fhir.clone()]);
        // A recreated application: the new ids replace the old ones.
        ix.track(
            etl.clone(),
            "t1",
            own("ns"),
            &["new-obj", "new-id", "sp-obj"],
        );
        assert!(ix.owners_of("t1", ["app-obj"].into_iter()).is_empty());
        assert_eq!(
            ix.owners_of("t1", ["new-id"].into_iter()),
            vec![etl.clone()]
        );
        ix.expect_key(&etl, Some("k"));
        let body = serde_json::json!({"uniqueName": "u", "web": {}});
        ix.expect(&etl, Part::Application, &body, &["web"]);
        assert_eq!(
            ix.expected(&etl).unwrap().application.as_deref(),
            Some(r#"{"web":{}}"#),
            "only what delta selects"
        );
        ix.forget(&etl);
        assert!(
            ix.owners_of("t1", ["sp-obj", "new-id"].into_iter())
                .is_empty()
        );
        assert!(ix.expected(&etl).is_none());
        assert_eq!(ix.owners_in("t1"), [fhir]);
        assert_eq!(ix.by_id.len(), 2, "no ids left behind: {:?}", ix.by_id);
    }

    #[test]
    fn owners_that_read_before_a_round_are_found_and_dirty_marks_are_taken_once() {
        let mut ix = Index::default();
        let t0 = Instant::now();
        let later = t0 + std::time::Duration::from_secs(5);
        let (a, b, c) = (
            Owner::client("ns", "a"),
            Owner::client("ns", "b"),
            Owner::client("ns", "c"),
        );
        ix.track(a.clone(), "t1", own("ns"), &["1"]);
        ix.track(b.clone(), "t2", own("ns"), &["2"]);
        ix.reading(&a, t0);
        ix.reading(&b, t0);
        ix.reading(&c, t0);
        assert_eq!(
            ix.read_before("t1", later),
            [a.clone(), c.clone()],
            "c is not tracked yet: its tenant is not known"
        );
        assert!(ix.read_before("t1", t0).is_empty());
        ix.mark_dirty(std::slice::from_ref(&a));
        assert!(ix.take_dirty(&a));
        assert!(!ix.take_dirty(&a));
        ix.mark_dirty(std::slice::from_ref(&a));
        ix.forget(&a);
        assert!(!ix.take_dirty(&a));
        assert_eq!(ix.read_before("t1", later), [c]);
    }

    #[test]
    fn tenants_are_those_with_owners_each_reached_through_a_stable_owner() {
        let mut ix = Index::default();
        assert!(ix.tenants().is_empty());
        let other = TenantSource {
            namespace: "b".into(),
            spec: Some(TenantSpec {
                tenant_id: Some("t2".into()),
                credentials_secret_ref: None,
            }),
        };
        ix.track(Owner::client("b", "y"), "t2", other.clone(), &["1"]);
        ix.track(Owner::client("a", "x"), "t1", own("a"), &["2"]);
        ix.track(Owner::client("c", "z"), "t2", own("c"), &["3"]);
        let t = ix.tenants();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0], ("t1".into(), own("a")));
        assert_eq!(t[1], ("t2".into(), other.clone()), "b/y sorts before c/z");
        assert_eq!(ix.source_of("t2"), Some(other));
        ix.forget(&Owner::client("b", "y"));
        assert_eq!(ix.source_of("t2"), Some(own("c")));
        ix.forget(&Owner::client("c", "z"));
        assert_eq!(ix.source_of("t2"), None);
        // Owners in one namespace share one source; the last one gone takes it along.
        ix.track(Owner::client("a", "w"), "t1", own("a"), &["4"]);
        assert_eq!(ix.sources["a"].len(), 1, "{:?}", ix.sources);
        assert!(Arc::ptr_eq(
            &ix.owners[&Owner::client("a", "x")].source,
            &ix.owners[&Owner::client("a", "w")].source
        ));
        ix.forget(&Owner::client("a", "x"));
        ix.forget(&Owner::client("a", "w"));
        assert!(ix.sources.is_empty(), "{:?}", ix.sources);
    }
}
