//! The client mix and the lower bound on the time until all clients are Ready.

use serde::Serialize;
use serde_json::{Value, json};

/// Client `i` of the mix: a third each of Confidential (every other one with admin consent),
/// Public, and Service (every other one with app-role assignment).
pub fn client_spec(i: usize, resource_app: &str) -> Value {
    let target = json!({"resourceAppRef": {"name": resource_app}});
    match i % 3 {
        0 => json!({
            "type": "Confidential", "target": target,
            "redirectUris": [format!("https://app-{i}.contoso.example/signin-oidc")],
            "scopes": ["user_impersonation"],
            "grantAdminConsent": i.is_multiple_of(2),
        }),
        1 => json!({
            "type": "Public", "target": target,
            "redirectUris": [format!("http://localhost:3000/cb{i}")],
            "scopes": ["user_impersonation"],
        }),
        _ => json!({
            "type": "Service", "target": target,
            "roles": ["globalReader"],
            "assignAppRoles": i % 2 == 1,
        }),
    }
}

/// Graph writes client `i` needs at the very least, and how many of them must run one after another.
///
/// Every client needs its application (one upsert) and its service principal (needs the appId the
/// upsert returns). Confidential and Service clients need a secret (addPassword, in parallel with
/// the service principal). Consent or a role assignment needs the service principal's id: one more
/// write, one more step. No reads: the write responses carry every id, and the resource app's
/// service principal is looked up once for all clients.
pub fn minimal_writes(i: usize) -> (u64, u64) {
    let spec = client_spec(i, "r");
    let secret = spec["type"] != "Public";
    let follow_up = spec["grantAdminConsent"] == true || spec["assignAppRoles"] == true;
    (2 + secret as u64 + follow_up as u64, 2 + follow_up as u64)
}

/// Graph's per app+tenant token buckets, as the emulator enforces them.
#[derive(Clone, Debug, Serialize)]
pub struct Quotas {
    pub resource_units_per_10s: f64,
    pub writes_per_150s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LowerBound {
    pub minimal_graph_writes: u64,
    pub minimal_graph_reads: u64,
    /// Longest chain of dependent calls, the token request included.
    pub critical_path_calls: u64,
    pub latency_bound_s: f64,
    pub write_quota_bound_s: f64,
    pub resource_unit_quota_bound_s: f64,
    /// Sustained writes per second the quota allows × latency: how many writes may be in flight.
    pub sustained_write_concurrency: f64,
    pub seconds: f64,
    pub binding: String,
}

/// The least time for `n` clients: all of them in parallel (the latency of the longest chain), unless
/// the quotas allow fewer calls: a full bucket serves its size at once, the rest at the refill rate.
pub fn lower_bound(n: usize, latency_ms: u64, q: &Quotas) -> LowerBound {
    let (writes, depth) = (0..n)
        .map(minimal_writes)
        .fold((0, 0), |(w, d), (wi, di)| (w + wi, d.max(di)));
    let latency = latency_ms as f64 / 1000.0;
    let critical = depth + 1;
    let latency_bound = critical as f64 * latency;
    let write_rate = q.writes_per_150s / 150.0;
    let write_bound = (writes as f64 - q.writes_per_150s).max(0.0) / write_rate;
    // A write costs one resource unit.
    let ru_bound =
        (writes as f64 - q.resource_units_per_10s).max(0.0) / (q.resource_units_per_10s / 10.0);
    let (seconds, binding) = [
        (
            latency_bound,
            "latency of the longest chain of dependent calls",
        ),
        (
            write_bound,
            "Graph write quota (bucket size at once, then the refill rate)",
        ),
        (ru_bound, "Graph resource-unit quota"),
    ]
    .into_iter()
    .fold((0.0, ""), |a, b| if b.0 > a.0 { b } else { a });
    LowerBound {
        minimal_graph_writes: writes,
        minimal_graph_reads: 0,
        critical_path_calls: critical,
        latency_bound_s: latency_bound,
        write_quota_bound_s: write_bound,
        resource_unit_quota_bound_s: ru_bound,
        sustained_write_concurrency: write_rate * latency,
        seconds,
        binding: binding.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRAPH: Quotas = Quotas {
        resource_units_per_10s: 3500.0,
        writes_per_150s: 3000.0,
    };

    #[test]
    fn the_mix_needs_between_two_and_four_writes_per_client() {
        let per: Vec<_> = (0..6).map(minimal_writes).collect();
        // Confidential+consent, Public, Service, Confidential, Public, Service+roles.
        assert_eq!(per, [(4, 3), (2, 2), (3, 2), (3, 2), (2, 2), (4, 3)]);
    }

    #[test]
    fn small_runs_are_bound_by_latency_large_ones_by_the_write_quota() {
        let small = lower_bound(500, 30, &GRAPH);
        assert_eq!(small.minimal_graph_writes, 1500);
        assert!((small.seconds - 0.12).abs() < 1e-9, "{small:?}");
        assert!(small.binding.starts_with("latency"));

        let large = lower_bound(5000, 30, &GRAPH);
        assert_eq!(large.minimal_graph_writes, 15000);
        // (15000 - 3000) writes at 20 per second.
        assert!((large.seconds - 600.0).abs() < 1e-9, "{large:?}");
        assert!(large.binding.contains("write quota"));
    }
}
