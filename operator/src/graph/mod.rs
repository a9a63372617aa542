//! The operator's own Microsoft Graph client (no code or types shared with the emulator): the client
//! (`client.rs`), Graph's rules for calls (`call.rs`), its operations by resource, its error and wire
//! types. Transport, tokens, rate limit and retries are the HTTP layer's (`crate::http`).

mod applications;
pub mod assertion;
mod assignments;
mod call;
pub mod client;
pub mod error;
mod federated;
mod grants;
mod service_principals;
pub mod types;

/// The rate limiter is the HTTP layer's (Graph and ARM share it); kept under this path for callers.
pub use crate::http::ratelimit;

pub use client::{
    Credential, Endpoints, GraphClient, RetryPolicy, http_client, http_client_with_timeout,
};
pub use error::GraphError;
