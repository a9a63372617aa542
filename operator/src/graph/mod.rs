//! The operator's own Microsoft Graph client (no code or types shared with the emulator).

pub mod assertion;
pub mod client;
pub mod error;
pub mod ratelimit;
pub mod types;

pub use client::{
    Credential, Endpoints, GraphClient, RetryPolicy, http_client, http_client_with_timeout,
};
pub use error::GraphError;
