//! The client mix and the lower bound on the time until all clients are Ready.

use serde::{Deserialize, Serialize};
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

/// Graph calls client `i` needs at the very least: `(writes, reads, chain)`, where `chain` is how
/// many of them must run one after another.
///
/// Every client needs one read (is there an application with its uniqueName, and is it ours? The
/// operator never takes over an application it did not create), its application (one upsert) and
/// its service principal (needs the appId the upsert returns). Confidential and Service clients need
/// a secret (addPassword, could run beside the service principal). Consent or a role assignment
/// needs the service principal's id: one more write, one more step. Nothing else: the write
/// responses carry every id, and the resource app's service principal is looked up once for all.
pub fn minimal_calls(i: usize) -> (u64, u64, u64) {
    let spec = client_spec(i, "r");
    let secret = spec["type"] != "Public";
    let follow_up = spec["grantAdminConsent"] == true || spec["assignAppRoles"] == true;
    (
        2 + secret as u64 + follow_up as u64,
        1,
        3 + follow_up as u64,
    )
}

/// Graph's per app+tenant token buckets, as the emulator enforces them.
#[derive(Clone, Debug, Serialize)]
pub struct Quotas {
    pub resource_units_per_10s: f64,
    pub writes_per_150s: f64,
}

/// The operator's own limits during the run (its defaults unless the bench was told otherwise).
#[derive(Clone, Debug, Serialize)]
pub struct OperatorLimits {
    pub requests_per_s: f64,
    pub request_burst: f64,
    pub writes_per_s: f64,
    pub write_burst: f64,
    pub concurrency: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LowerBound {
    pub minimal_graph_writes: u64,
    pub minimal_graph_reads: u64,
    /// Longest chain of dependent calls, the token request included.
    pub critical_path_calls: u64,
    /// Graph's own limit: every client in parallel (Graph has no concurrency limit for these
    /// calls), so the longest chain's latency, unless the quotas allow fewer calls.
    pub latency_bound_s: f64,
    pub write_quota_bound_s: f64,
    pub resource_unit_quota_bound_s: f64,
    pub seconds: f64,
    pub binding: String,
    /// The same minimal calls within the operator's own limits: its concurrency (each reconcile
    /// makes its calls one after another) and its request and write rate limits.
    pub operator: OperatorBound,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OperatorBound {
    /// Minimal calls × latency ÷ concurrency.
    pub concurrency_bound_s: f64,
    pub write_limit_bound_s: f64,
    pub request_limit_bound_s: f64,
    pub seconds: f64,
    pub binding: String,
}

fn largest(bounds: [(f64, &str); 3]) -> (f64, String) {
    let (s, b) = bounds
        .into_iter()
        .fold((0.0, ""), |a, b| if b.0 > a.0 { b } else { a });
    (s, b.to_string())
}

/// A token bucket of size `burst` refilled at `rate` serves `calls`: the burst at once, the rest at
/// the refill rate.
fn bucket_time(calls: f64, burst: f64, rate: f64) -> f64 {
    (calls - burst).max(0.0) / rate
}

/// The least time for `n` clients, first within Graph's limits only, then within the operator's.
pub fn lower_bound(n: usize, latency_ms: u64, q: &Quotas, op: &OperatorLimits) -> LowerBound {
    let (writes, reads, depth) = (0..n)
        .map(minimal_calls)
        .fold((0, 0, 0), |(w, r, d), (wi, ri, di)| {
            (w + wi, r + ri, d.max(di))
        });
    let latency = latency_ms as f64 / 1000.0;
    let critical = depth + 1;
    let latency_bound = critical as f64 * latency;
    // Reads and writes cost one resource unit each (the calls above; list calls would cost 2).
    let calls = (writes + reads) as f64;
    let write_bound = bucket_time(writes as f64, q.writes_per_150s, q.writes_per_150s / 150.0);
    let ru_bound = bucket_time(
        calls,
        q.resource_units_per_10s,
        q.resource_units_per_10s / 10.0,
    );
    let (seconds, binding) = largest([
        (
            latency_bound,
            "latency of the longest chain of dependent calls",
        ),
        (
            write_bound,
            "Graph write quota (bucket size at once, then the refill rate)",
        ),
        (ru_bound, "Graph resource-unit quota"),
    ]);
    let concurrency_bound = calls * latency / op.concurrency;
    let op_write = bucket_time(writes as f64, op.write_burst, op.writes_per_s);
    let op_requests = bucket_time(calls, op.request_burst, op.requests_per_s);
    let (op_seconds, op_binding) = largest([
        (
            concurrency_bound,
            "minimal calls × latency ÷ the operator's concurrency",
        ),
        (op_write, "the operator's Graph write rate limit"),
        (op_requests, "the operator's Graph request rate limit"),
    ]);
    LowerBound {
        minimal_graph_writes: writes,
        minimal_graph_reads: reads,
        critical_path_calls: critical,
        latency_bound_s: latency_bound,
        write_quota_bound_s: write_bound,
        resource_unit_quota_bound_s: ru_bound,
        seconds: seconds.max(latency_bound),
        binding,
        operator: OperatorBound {
            concurrency_bound_s: concurrency_bound,
            write_limit_bound_s: op_write,
            request_limit_bound_s: op_requests,
            seconds: op_seconds.max(seconds),
            binding: op_binding,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRAPH: Quotas = Quotas {
        resource_units_per_10s: 3500.0,
        writes_per_150s: 3000.0,
    };
    const OPERATOR: OperatorLimits = OperatorLimits {
        requests_per_s: 100.0,
        request_burst: 200.0,
        writes_per_s: 15.0,
        write_burst: 150.0,
        concurrency: 8.0,
    };

    #[test]
    fn the_mix_needs_between_three_and_five_calls_per_client() {
        let per: Vec<_> = (0..6).map(minimal_calls).collect();
        // Confidential+consent, Public, Service, Confidential, Public, Service+roles.
        assert_eq!(
            per,
            [
                (4, 1, 4),
                (2, 1, 3),
                (3, 1, 3),
                (3, 1, 3),
                (2, 1, 3),
                (4, 1, 4)
            ]
        );
    }

    #[test]
    fn small_runs_are_bound_by_latency_large_ones_by_the_write_quota() {
        let small = lower_bound(500, 30, &GRAPH, &OPERATOR);
        assert_eq!(small.minimal_graph_writes, 1500);
        assert_eq!(small.minimal_graph_reads, 500);
        assert!((small.seconds - 0.15).abs() < 1e-9, "{small:?}");
        assert!(small.binding.starts_with("latency"));
        // Within the operator's limits: (1500 - 150) writes at 15 per second.
        assert!((small.operator.seconds - 90.0).abs() < 1e-9, "{small:?}");
        assert!(small.operator.binding.contains("write rate"));

        let large = lower_bound(5000, 30, &GRAPH, &OPERATOR);
        assert_eq!(large.minimal_graph_writes, 15000);
        // (15000 - 3000) writes at 20 per second.
        assert!((large.seconds - 600.0).abs() < 1e-9, "{large:?}");
        assert!(large.binding.contains("write quota"));
        assert!((large.operator.seconds - 990.0).abs() < 1e-9, "{large:?}");
    }

    #[test]
    fn a_slow_graph_makes_concurrency_the_operator_s_limit() {
        let b = lower_bound(500, 1000, &GRAPH, &OPERATOR);
        // 2000 calls of 1 s each, 8 at a time.
        assert!((b.operator.seconds - 250.0).abs() < 1e-9, "{b:?}");
        assert!(b.operator.binding.contains("concurrency"));
    }
}
