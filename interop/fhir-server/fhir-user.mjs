// Who signed in, as the FHIR server sees it: the `fhirUser` claim of a delegated token, and the
// compartment it limits the user to. Modelled on microsoft/fhir-server, kept small:
// - SmartClinicalScopesMiddleware reads the claim named by Authorization:FhirUserClaim (here the ConfigMap's
//   FHIR_USER_CLAIM, which the operator writes when spec.smart.fhirUserClaim is on) and, with
//   ErrorOnMissingFhirUserClaim (its default, true), refuses a token without it;
// - FhirUserClaimParser takes a relative or absolute URL, its last two segments as type and id, and only
//   Patient or Practitioner;
// - the compartment of that resource bounds what the user reads: a Patient's compartment (the Patient
//   itself, and resources that reference it) for a patient, the Practitioner's own record for a
//   practitioner. Resource types outside the Patient compartment (Practitioner, Organization, …) stay
//   readable by a patient, as the OSS server's compartment search keeps such "universal" types.
// Differences, on purpose: the OSS server answers a missing or malformed claim with 400
// (BadHttpRequestException FhirUserClaimCannotBeNull / FhirUserClaimMustBeURL); this server answers 403
// with an OperationOutcome that says what to fix, since the fix is in the directory, not in the request.
// The OSS server applies the claim only to callers holding the `smart` data action (smartUser); this
// server applies it to every delegated token once FHIR_USER_CLAIM is configured. A practitioner's reads of
// patient data are not narrowed (the OSS server narrows user/ scopes to the practitioner's compartment).

/** The resource types in the Patient compartment that this server stores, and their reference fields
 * (hl7.org/fhir/R4/compartmentdefinition-patient.html: Observation by subject or performer). */
const PATIENT_COMPARTMENT = { Observation: ['subject', 'performer'] };

/** The fhirUser value as {type, id}, or {reason} when it is not a Patient or Practitioner reference. */
export function parseFhirUser(value) {
  let url;
  try {
    url = new URL(String(value), 'http://fhirbase/');
  } catch {
    return { reason: `the fhirUser claim '${value}' is not a URL` };
  }
  const [type, id] = url.pathname.split('/').filter(Boolean).slice(-2);
  if ((type === 'Patient' || type === 'Practitioner') && id) return { type, id };
  return { reason: `the fhirUser claim '${value}' must be Patient/<id> or Practitioner/<id> (or their absolute URLs)` };
}

/** Whether `resource` is in `compartment` ({type, id} of the signed-in user; none: everything is). */
export function visible(resource, compartment) {
  if (!compartment) return true;
  const { resourceType, id } = resource;
  if (resourceType === compartment.type) return id === compartment.id;
  if (compartment.type === 'Practitioner') return true;
  const fields = PATIENT_COMPARTMENT[resourceType];
  if (!fields) return true;
  const ref = `Patient/${compartment.id}`;
  return fields.some((f) => [resource[f]].flat().some((r) => r?.reference === ref || r?.reference?.endsWith(`/${ref}`)));
}

/**
 * The signed-in user's compartment for a delegated token, when the server requires the claim
 * (`options.claim`, FHIR_USER_CLAIM): {compartment} or {reason}. `options.attribute`
 * (FHIR_USER_EXTENSION_ATTRIBUTE) names the directory extension in the reason, so whoever reads it knows
 * what to set.
 */
export function compartmentOf(claims, options) {
  const value = claims[options.claim];
  if (typeof value !== 'string' || value === '') {
    const ext = options.attribute || `the directory extension mapped to '${options.claim}'`;
    return {
      reason: `the token carries no '${options.claim}' claim: the signed-in user has no value for ${ext}. `
        + `Set it in provisioning (Graph PATCH /users/{id} with {"${options.attribute || 'extension_<appId>_fhirUser'}": `
        + '"Practitioner/<id>"}), then sign in again',
    };
  }
  const parsed = parseFhirUser(value);
  return parsed.reason ? parsed : { compartment: parsed };
}

/** Why a request on `resource`/`id` leaves the user's compartment (a by-id request on the user's own
 * resource type with another id), or undefined. Other by-id reads are checked against the resource. */
export function outsideCompartment(compartment, resource, id) {
  if (!id || id === '_search' || resource !== compartment.type || id === compartment.id) return undefined;
  return `the signed-in user (fhirUser ${compartment.type}/${compartment.id}) may not access ${resource}/${id}: `
    + `it is outside the user's compartment`;
}
