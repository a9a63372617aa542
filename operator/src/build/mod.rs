//! Pure builders: spec (+ observed state) → desired Graph objects, Kubernetes outputs and conditions.

pub mod certificate;
pub mod client;
pub mod conditions;
pub mod credentials;
pub mod diff;
pub mod duration;
pub mod naming;
pub mod resource;
pub mod smart;
