//! fhir-app-operator: FhirResourceApp and FhirClientApp reconciled into Entra ID app registrations.
