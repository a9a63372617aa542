//! Deterministic property test over the fuzz targets' bodies: the corpus plus thousands of seeded
//! random mutations (arbitrary JSON values, wrong types, odd strings) must never panic. Runs on a
//! stable toolchain: `cargo test --manifest-path operator/fuzz/Cargo.toml`.
//! Iterations per target: `FUZZ_SEEDED_ITERS` (default 5000).

use fhir_app_operator_fuzz::{graph_responses, spec_builders, spec_value};
use serde_json::{Map, Value, json};

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const KEYS: &[&str] = &[
    "fhirUrl",
    "identifierUri",
    "displayName",
    "appRoles",
    "scopes",
    "smart",
    "enabled",
    "signInAudience",
    "requestedAccessTokenVersion",
    "output",
    "tenant",
    "tenantId",
    "deletionPolicy",
    "adopt",
    "value",
    "type",
    "description",
    "allowedMemberTypes",
    "target",
    "resourceAppRef",
    "managed",
    "name",
    "audience",
    "redirectUris",
    "publicPlatform",
    "smartProxyCallback",
    "roles",
    "grantAdminConsent",
    "assignAppRoles",
    "credential",
    "serviceAccountName",
    "rotation",
    "validity",
    "renewBefore",
    "overlap",
    "secretName",
    "id",
    "appId",
    "passwordCredentials",
    "keyId",
    "endDateTime",
    "tags",
    "error",
    "code",
    "message",
    "details",
    "odata.error",
    "api",
    "oauth2PermissionScopes",
    "isEnabled",
    "uniqueName",
    "@odata.nextLink",
    "access_token",
    "expires_in",
    "error_description",
];

const STRINGS: &[&str] = &[
    "",
    " ",
    "api://{appId}",
    "https://fhir.contoso.example",
    "http://localhost:3000",
    "HTTPS://X/",
    "patient/*.read",
    "user/*.*",
    "launch/patient",
    "fhirUser",
    "openid",
    "user_impersonation",
    "Confidential",
    "Public",
    "Service",
    "ClientSecret",
    "WorkloadIdentity",
    "Spa",
    "MobileDesktop",
    "User",
    "Application",
    "Admin",
    "Delete",
    "Orphan",
    "AzureADMyOrg",
    "AzureADandPersonalMicrosoftAccount",
    "720h",
    "1h30m",
    "0",
    "1.5h",
    "99999999999999999999h",
    "1e308h",
    ".h",
    "-1h",
    "NaN",
    "inf",
    "9999-12-31T23:59:59Z",
    "2024-02-30T00:00:00Z",
    "'",
    "''",
    "%",
    "/",
    "\\",
    "\u{0}",
    "é",
    "𝔉𝔥𝔦𝔯",
    "\u{202e}",
    "a.b.c",
    "..",
    "*",
    "patient/",
    "/read",
    "launch/",
    "user/*.",
    "fhir-app-operator:x",
    "fhirapps.io/owner=",
    "NoBackingApplicationObject",
    "HostNameNotOnVerifiedDomain",
    "Request_MultipleObjectsWithSameKeyValue",
];

fn string(r: &mut Rng) -> String {
    match r.below(5) {
        0 => {
            let n = r.below(300);
            (0..n)
                .map(|_| char::from_u32(r.below(0x3000) as u32).unwrap_or('x'))
                .collect()
        }
        1 => STRINGS[r.below(STRINGS.len())].repeat(1 + r.below(50)),
        _ => STRINGS[r.below(STRINGS.len())].to_string(),
    }
}

fn value(r: &mut Rng, depth: usize) -> Value {
    match r.below(if depth > 3 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(r.below(2) == 0),
        2 => match r.below(5) {
            0 => json!(r.next() as i64),
            1 => json!(r.next()),
            2 => json!(f64::from_bits(r.next()).clamp(-1e300, 1e300)),
            3 => json!(r.below(4) as i64 - 1),
            _ => json!(i64::MIN),
        },
        3 | 4 => Value::String(string(r)),
        5 | 6 => {
            let n = r.below(6);
            Value::Array((0..n).map(|_| value(r, depth + 1)).collect())
        }
        _ => {
            let n = r.below(6);
            let mut m = Map::new();
            for _ in 0..n {
                m.insert(KEYS[r.below(KEYS.len())].into(), value(r, depth + 1));
            }
            Value::Object(m)
        }
    }
}

/// Replaces, removes or adds something at a random place in `v`.
fn mutate(r: &mut Rng, v: &mut Value, depth: usize) {
    match v {
        Value::Object(m) if !m.is_empty() && r.below(4) != 0 => {
            let k = m.keys().nth(r.below(m.len())).unwrap().clone();
            match r.below(6) {
                0 => {
                    m.remove(&k);
                }
                1 => {
                    m.insert(KEYS[r.below(KEYS.len())].into(), value(r, depth));
                }
                _ => mutate(r, m.get_mut(&k).unwrap(), depth + 1),
            }
        }
        Value::Array(a) if !a.is_empty() && r.below(4) != 0 => match r.below(5) {
            0 => {
                let i = r.below(a.len());
                a.remove(i);
            }
            1 => {
                let x = a[r.below(a.len())].clone();
                a.push(x);
            }
            _ => {
                let i = r.below(a.len());
                mutate(r, &mut a[i], depth + 1)
            }
        },
        _ => *v = value(r, depth),
    }
}

fn corpus(dir: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn iters() -> usize {
    std::env::var("FUZZ_SEEDED_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000)
}

#[test]
fn spec_builders_never_panic() {
    let seeds: Vec<Value> = corpus("spec_builders")
        .iter()
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect();
    assert!(seeds.len() >= 4);
    for s in &seeds {
        spec_value(s);
    }
    let mut r = Rng(0x5eed_f417_0001);
    for i in 0..iters() {
        let mut v = seeds[i % seeds.len()].clone();
        for _ in 0..1 + r.below(4) {
            mutate(&mut r, &mut v, 0);
        }
        spec_value(&v);
        spec_builders(&serde_json::to_vec(&v).unwrap());
    }
}

#[test]
fn graph_response_parsing_never_panics() {
    let seeds = corpus("graph_responses");
    assert!(seeds.len() >= 6);
    for s in &seeds {
        graph_responses(s);
    }
    let mut r = Rng(0x5eed_f417_0002);
    for i in 0..iters() {
        let seed = &seeds[i % seeds.len()];
        let status = [200u16, 201, 204, 400, 401, 403, 404, 409, 429, 500, 503][r.below(11)];
        let mut input = status.to_le_bytes().to_vec();
        input.push(r.next() as u8);
        match r.below(3) {
            // A recorded body, structurally mutated.
            0 | 1 => {
                let body = String::from_utf8_lossy(&seed[3..]).to_string();
                let mut v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                for _ in 0..1 + r.below(4) {
                    mutate(&mut r, &mut v, 0);
                }
                if input[2] & 1 == 1 {
                    input.extend_from_slice(string(&mut r).as_bytes());
                    input.push(b'\n');
                }
                input.extend_from_slice(&serde_json::to_vec(&v).unwrap());
            }
            // Raw bytes: truncated JSON, garbage, invalid UTF-8.
            _ => {
                let cut = r.below(seed.len().max(4));
                input.extend_from_slice(&seed[3.min(seed.len())..cut.max(3).min(seed.len())]);
                for _ in 0..r.below(64) {
                    input.push(r.next() as u8);
                }
            }
        }
        graph_responses(&input);
    }
}
