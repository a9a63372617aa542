//! The desired state, computed by pure functions: spec (+ observed state) → the Graph objects, the
//! Kubernetes outputs and the conditions the operator wants. `controller/` applies it.

pub mod access;
pub mod app_policy;
pub mod application;
pub mod certificate;
pub mod client;
pub mod conditions;
pub mod credentials;
pub mod diff;
pub mod directory;
pub mod duration;
pub mod fhir_user;
pub mod managed;
pub mod naming;
pub mod policy;
pub mod resource;
pub mod revocation;
pub mod smart;
