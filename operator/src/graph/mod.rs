//! The operator's own Microsoft Graph client (no code or types shared with the emulator): the client
//! (`client.rs`), Graph's rules for calls (`call.rs`), its operations by resource, its error and wire
//! types. Transport, tokens, rate limit and retries are the HTTP layer's (`crate::http`).

mod applications;
mod assignments;
pub(crate) mod call;
pub mod client;
mod deleted_items;
pub mod delta;
pub mod error;
mod federated;
mod grants;
mod policies;
mod service_principals;
pub mod types;

/// The rate limiter and the certificate credential are the HTTP layer's (Graph and ARM share them);
/// kept under these paths for their callers.
pub use crate::http::{assertion, ratelimit};

pub use client::{
    Credential, Endpoints, GraphClient, RetryPolicy, http_client, http_client_with_timeout,
};
pub use error::GraphError;
