//! The operator's one HTTP layer, under its Microsoft Graph and Azure Resource Manager clients:
//! transport (rustls, timeouts, bounded bodies, errors that name the host and the cause), bearer
//! tokens from the operator's credential cached per audience, the per-tenant rate limit that both
//! services' calls go through, and retries that honour `Retry-After`. What differs per service (its
//! error answers, what it retries, its metric) is its error type's [`ServiceError`].
//!
//! It depends on the Graph side for one thing: `GraphError`, the type of the token endpoint's
//! answers (both clients report a failed sign-in as `AuthFailed`).

pub mod assertion;
pub mod budget;
pub mod caller;
pub mod credential;
#[cfg(test)]
pub(crate) mod fake;
pub mod ratelimit;
pub mod service;
pub mod transport;

pub use caller::{Caller, Request};
pub use credential::{Credential, Tokens};
pub use service::{RetryPolicy, ServiceError};
pub use transport::TransportError;
