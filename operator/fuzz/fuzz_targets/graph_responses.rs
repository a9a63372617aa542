//! Graph response parsing: error classification, JSON bodies, applications, service principals, pages.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fhir_app_operator_fuzz::graph_responses(data));
