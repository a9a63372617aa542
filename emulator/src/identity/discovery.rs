//! Discovery documents: instance discovery (MSAL's first call) and the tenant's OpenID
//! configuration, v2.0 and v1, in the recorded shapes.
use super::{discovery_headers, tenant_or_unknown};
use crate::request::{ReqCtx, by};
use crate::state::Shared;
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

pub async fn instance_discovery(
    State(sh): State<Arc<Shared>>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let host = sh.base_url.trim_start_matches("https://").to_string();
    // The tenant of the authority asked about, as recorded (`authorization_endpoint=https://host/fake-tenant/
    // oauth2/v2.0/authorize` -> `https://host/fake-tenant/v2.0/.well-known/openid-configuration`).
    let tenant = q
        .get("authorization_endpoint")
        .and_then(|a| a.strip_prefix("https://"))
        .and_then(|a| a.split('/').nth(1))
        .filter(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        })
        .unwrap_or("common");
    let mut r = axum::Json(json!({
        "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", sh.base_url),
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}]
    }))
    .into_response();
    discovery_headers(&mut r);
    by(r, "", "")
}

pub async fn openid_v2(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    Path(t): Path<String>,
) -> Response {
    let tid = match tenant_or_unknown(&sh, &ctx, &t) {
        Ok(tid) => tid,
        Err(r) => return by(r, "", ""),
    };
    let b = &sh.base_url;
    let mut r = axum::Json(json!({
        "token_endpoint": format!("{b}/{tid}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{b}/{tid}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        // What the emulator implements: the code flow, and the hybrid `code id_token`.
        "response_types_supported": ["code", "code id_token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{b}/{tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{b}/oidc/userinfo"),
        "authorization_endpoint": format!("{b}/{tid}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{b}/{tid}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": false,
        "end_session_endpoint": format!("{b}/{tid}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        // Not implemented (Kerberos is no OAuth flow), but in every recorded document, so kept
        // for the shape clients and the conformance replay expect.
        "kerberos_endpoint": format!("{b}/{tid}/kerberos"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net"
    }))
    .into_response();
    discovery_headers(&mut r);
    by(r, &tid, "")
}

pub async fn openid_v1(
    State(sh): State<Arc<Shared>>,
    Extension(ctx): Extension<ReqCtx>,
    Path(t): Path<String>,
) -> Response {
    let tid = match tenant_or_unknown(&sh, &ctx, &t) {
        Ok(tid) => tid,
        Err(r) => return by(r, "", ""),
    };
    let b = &sh.base_url;
    let mut r = axum::Json(json!({
        "token_endpoint": format!("{b}/{tid}/oauth2/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{b}/{tid}/discovery/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "code id_token"],
        "scopes_supported": ["openid"],
        "issuer": format!("https://sts.windows.net/{tid}/"),
        "microsoft_multi_refresh_token": true,
        "authorization_endpoint": format!("{b}/{tid}/oauth2/authorize"),
        "device_authorization_endpoint": format!("{b}/{tid}/oauth2/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": false,
        "end_session_endpoint": format!("{b}/{tid}/oauth2/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "given_name", "family_name", "nickname"],
        "userinfo_endpoint": format!("{b}/oidc/userinfo"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net"
    }))
    .into_response();
    discovery_headers(&mut r);
    by(r, &tid, "")
}
