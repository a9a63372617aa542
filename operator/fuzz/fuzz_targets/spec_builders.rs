//! Arbitrary JSON → CRD spec (serde) → Graph request builders.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fhir_app_operator_fuzz::spec_builders(data));
