//! Sign-in state kept in memory only (a restart signs everyone out, as a new Entra session would):
//! authorization requests waiting for the user, browser sessions, authorization codes, refresh
//! tokens and device codes. Every handle is a random 256-bit value; none is ever logged.
use super::basics::now_secs;
use rand::RngCore;
use serde_json::Value;
use std::collections::HashMap;

/// Entra's codes "typically expire after about 10 minutes" (D-AC, interactive-flows.md 1.3).
pub const CODE_LIFETIME_SECS: i64 = 600;
/// A user has this long to finish a sign-in page.
pub const PENDING_LIFETIME_SECS: i64 = 3600;
/// SPA refresh tokens have "a fixed, limited lifetime of 1.00:00:00" (AADSTS700084; D-RT).
pub const SPA_RT_LIFETIME_SECS: i64 = 86_400;
/// Other refresh tokens: 90 days by default (D-RT).
pub const RT_LIFETIME_SECS: i64 = 90 * 86_400;
/// Device codes: `expires_in` 900 (recorded, TestDeviceCodeCredential_Live).
pub const DEVICE_CODE_LIFETIME_SECS: i64 = 900;

/// The platform a redirect URI is registered under; decides how its code may be redeemed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Web,
    Spa,
    PublicClient,
}

/// What a user consented to for one resource, and who they are: what a code, refresh token or
/// device code carries to the token endpoint.
#[derive(Clone, Debug)]
pub struct Grant {
    pub tenant: String,
    pub client_id: String,
    pub user_id: String,
    /// The resource's service principal object id.
    pub resource_sp: String,
    /// Delegated scope values granted on that resource (for `scp`).
    pub scopes: Vec<String>,
    /// The scope string as requested of the resource (echoed in `scope`).
    pub requested: Vec<String>,
    /// `openid`, `profile`, `email`, `offline_access` as requested.
    pub oidc: Vec<String>,
    /// Authorize / token endpoint version the flow started on.
    pub v1: bool,
    pub nonce: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Code {
    pub grant: Grant,
    pub redirect_uri: String,
    pub platform: Platform,
    /// (challenge, method) when PKCE was used.
    pub pkce: Option<(String, String)>,
    pub issued: i64,
    pub redeemed: bool,
}

#[derive(Clone, Debug)]
pub struct Refresh {
    pub grant: Grant,
    pub platform: Platform,
    /// Hard end of life (24 h after sign-in for a SPA).
    pub expires: i64,
    pub spa_issued: i64,
}

#[derive(Clone, Debug)]
pub struct Session {
    pub tenant: String,
    pub user_id: String,
    pub auth_time: i64,
}

#[derive(Clone, Debug)]
pub struct DeviceCode {
    pub tenant: String,
    pub client_id: String,
    pub user_code: String,
    /// Scopes asked for, resolved when the user completes the code page.
    pub scope: String,
    pub v1: bool,
    pub issued: i64,
    /// Set once the user signed in and consented.
    pub grant: Option<Grant>,
    pub declined: bool,
    pub redeemed: bool,
}

/// How the answer goes back to the app (`response_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Query,
    Fragment,
    FormPost,
}

/// A validated authorization request, waiting for the user (sign-in, consent) or a device.
#[derive(Clone, Debug)]
pub struct AuthRequest {
    pub created: i64,
    pub tenant: String,
    pub v1: bool,
    pub client_id: String,
    pub client_name: String,
    pub client_sp: Value,
    pub redirect_uri: String,
    pub platform: Platform,
    pub mode: Mode,
    pub id_token: bool,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub login_hint: String,
    pub prompt: String,
    pub pkce: Option<(String, String)>,
    pub requested: Requested,
    pub client_info: bool,
    /// Signed in on this request's sign-in page (prompt=login asks again even with a session).
    pub user_id: Option<String>,
    pub auth_time: i64,
    pub consented: bool,
    /// The device code this sign-in completes (device-code flow: no redirect).
    pub device: Option<String>,
}

/// One resource a request asks scopes of.
#[derive(Clone, Debug)]
pub struct ResourceScopes {
    /// Index of the resource's service principal in the tenant.
    pub sp_id: String,
    pub display_name: String,
    /// Delegated scope values (for `scp` and consent).
    pub values: Vec<String>,
    /// The scopes as requested (`{resource}/{value}` or `{resource}/.default`).
    pub requested: Vec<String>,
}

/// What a request's `scope` (v2) or `resource` (v1) resolves to.
#[derive(Clone, Debug)]
pub struct Requested {
    /// The first is the one the code's access token is for.
    pub resources: Vec<ResourceScopes>,
    pub oidc: Vec<String>,
}

#[derive(Default)]
pub struct Flows {
    pub pending: HashMap<String, AuthRequest>,
    pub sessions: HashMap<String, Session>,
    pub codes: HashMap<String, Code>,
    pub refresh: HashMap<String, Refresh>,
    /// device_code -> state
    pub devices: HashMap<String, DeviceCode>,
}

/// A random URL-safe handle (256 bits).
pub fn handle() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    crate::crypto::b64url(&b)
}

impl Flows {
    /// Makes everything `secs` older (admin API, for tests of expiry).
    pub fn age(&mut self, secs: i64) {
        self.codes.values_mut().for_each(|c| c.issued -= secs);
        for r in self.refresh.values_mut() {
            r.expires -= secs;
            r.spa_issued -= secs;
        }
        self.devices.values_mut().for_each(|d| d.issued -= secs);
    }
    /// Drops what has expired (called on every write, so memory stays bounded by live flows).
    pub fn sweep(&mut self) {
        let now = now_secs();
        self.pending
            .retain(|_, p| now - p.created < PENDING_LIFETIME_SECS);
        // Keep redeemed/expired codes a while, so reuse gives AADSTS54005 and age AADSTS70008.
        self.codes
            .retain(|_, c| now - c.issued < 4 * CODE_LIFETIME_SECS);
        self.refresh.retain(|_, r| r.expires + 86_400 > now);
        self.devices
            .retain(|_, d| now - d.issued < 2 * DEVICE_CODE_LIFETIME_SECS);
    }
}
