// The authorization rules of the test FHIR server (auth.mjs), case by case: roles.json's meaning and
// the SMART scope forms the operator publishes. Run by tests/tests/fhir_server.rs (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { authorize, clinicalScopes, requested } from './auth.mjs';
import { parseFhirUser, visible } from './fhir-user.mjs';

const app = (...roles) => ({ roles });
const user = (scp, ...roles) => ({ roles, scp });

test('a request needs the data action of its interaction', () => {
  assert.deepEqual(requested('GET', '/4_0_1/Patient/1'), { action: 'read', resource: 'Patient', interaction: 'r' });
  assert.deepEqual(requested('GET', '/4_0_1/Patient'), { action: 'read', resource: 'Patient', interaction: 's' });
  assert.deepEqual(requested('POST', '/4_0_1/Patient/_search'), { action: 'read', resource: 'Patient', interaction: 's' });
  assert.deepEqual(requested('POST', '/4_0_1/Patient'), { action: 'write', resource: 'Patient', interaction: 'c' });
  assert.deepEqual(requested('PUT', '/4_0_1/Patient/1'), { action: 'write', resource: 'Patient', interaction: 'u' });
  assert.deepEqual(requested('DELETE', '/4_0_1/Patient/1'), { action: 'delete', resource: 'Patient', interaction: 'd' });
  assert.deepEqual(requested('GET', '/4_0_1/$export'), { action: 'export', resource: '*', interaction: 's' });
});

test('app tokens: roles as roles.json means them', () => {
  const cases = [
    ['globalReader', 'GET', true], ['globalReader', 'POST', false], ['globalReader', 'DELETE', false],
    ['globalExporter', 'GET', true], ['globalExporter', 'POST', false],
    ['globalWriter', 'GET', true], ['globalWriter', 'POST', true], ['globalWriter', 'DELETE', true],
    ['globalAdmin', 'DELETE', true], ['smartUser', 'POST', true],
    ['globalImporter', 'POST', false], ['globalConverter', 'GET', true], ['unknownRole', 'GET', false],
  ];
  for (const [role, method, allowed] of cases) {
    assert.equal(authorize(app(role), method, '/4_0_1/Patient/1').allowed, allowed, `${role} ${method}`);
  }
  assert.equal(authorize(app('globalExporter'), 'GET', '/4_0_1/$export').allowed, true);
  assert.equal(authorize(app('globalReader'), 'GET', '/4_0_1/$export').allowed, false);
  assert.equal(authorize({}, 'GET', '/4_0_1/Patient/1').allowed, false, 'no roles claim');
  assert.equal(authorize(app('globalReader', 'globalWriter'), 'POST', '/4_0_1/Patient').allowed, true, 'union');
});

test('SMART scopes in the forms Entra carries them', () => {
  assert.deepEqual(clinicalScopes('patient.all.read launch.patient fhirUser user_impersonation'), ['patient/*.read']);
  assert.deepEqual(clinicalScopes('patient$Patient.read user/*.write'), ['patient/Patient.read', 'user/*.write']);
  assert.deepEqual(clinicalScopes('system.Observation.rs'), ['system/Observation.read']);
  assert.deepEqual(clinicalScopes('user.all.cruds'), ['user/*.read', 'user/*.write']);
  assert.deepEqual(clinicalScopes('patient%2fPatient.read'), ['patient/Patient.read']);
  assert.deepEqual(clinicalScopes('user.all.all'), ['user/*.*']);
});

test('delegated tokens: the user\'s role and, when present, the SMART scopes', () => {
  const read = '/4_0_1/Patient/1';
  assert.equal(authorize(user('user_impersonation', 'globalReader'), 'GET', read).allowed, true, 'role only');
  assert.equal(authorize(user('user_impersonation'), 'GET', read).allowed, false, 'no role');
  assert.equal(authorize(user('patient.all.read', 'globalWriter'), 'GET', read).allowed, true);
  assert.equal(authorize(user('patient.all.read', 'globalWriter'), 'POST', '/4_0_1/Patient').allowed, false, 'scope');
  assert.equal(authorize(user('patient.Observation.read', 'globalReader'), 'GET', read).allowed, false, 'other type');
  assert.equal(authorize(user('patient.Patient.read', 'globalReader'), 'GET', read).allowed, true);
  assert.equal(authorize(user('user.all.all', 'globalWriter'), 'POST', '/4_0_1/Patient').allowed, true);
  assert.equal(authorize(user('patient.all.write', 'globalReader'), 'POST', '/4_0_1/Patient').allowed, false, 'role');
});

test('SMART v2 letters: r reads by id, s searches, c/u/d write (v1 and v2 side by side)', () => {
  const cases = [
    ['patient.Patient.rs', 'GET', '/4_0_1/Patient/1', true],
    ['patient.Patient.rs', 'GET', '/4_0_1/Patient', true],
    ['patient.Patient.rs', 'POST', '/4_0_1/Patient/_search', true],
    ['patient.Patient.rs', 'POST', '/4_0_1/Patient', false],
    ['patient.Patient.rs', 'GET', '/4_0_1/Observation', false],
    ['patient.Patient.r', 'GET', '/4_0_1/Patient/1', true],
    ['patient.Patient.r', 'GET', '/4_0_1/Patient', false],
    ['patient.Patient.s', 'GET', '/4_0_1/Patient/1', false],
    ['patient/Patient.rs', 'GET', '/4_0_1/Patient', true],
    ['patient%2fPatient.rs', 'GET', '/4_0_1/Patient/1', true],
    ['user.all.cruds', 'DELETE', '/4_0_1/Patient/1', true],
    ['user.all.cu', 'DELETE', '/4_0_1/Patient/1', false],
    ['user.all.cu', 'PUT', '/4_0_1/Patient/1', true],
    ['patient.Patient.r patient.all.read', 'GET', '/4_0_1/Patient', true],
  ];
  for (const [scp, method, path, allowed] of cases) {
    assert.equal(authorize(user(scp, 'globalAdmin'), method, path).allowed, allowed, `${scp} ${method} ${path}`);
  }
});

// The fhirUser claim, required when the ConfigMap names it (FHIR_USER_CLAIM), as fhir-user.mjs reads it.
const FHIR_USER = { claim: 'fhirUser', attribute: 'extension_0a1b2c3d4e5f60718293a4b5c6d7e8f9_fhirUser' };
const signedIn = (fhirUser, scp = 'patient.all.read', ...roles) => ({ roles: roles.length ? roles : ['globalReader'], scp, fhirUser });

test('fhirUser: a Practitioner reads its own Practitioner and no other', () => {
  const me = signedIn('Practitioner/prac-1');
  assert.equal(authorize(me, 'GET', '/4_0_1/Practitioner/prac-1', FHIR_USER).allowed, true);
  const other = authorize(me, 'GET', '/4_0_1/Practitioner/prac-2', FHIR_USER);
  assert.equal(other.allowed, false);
  assert.match(other.reason, /fhirUser Practitioner\/prac-1.*Practitioner\/prac-2.*outside the user's compartment/);
  assert.deepEqual(authorize(me, 'GET', '/4_0_1/Practitioner', FHIR_USER).compartment, { type: 'Practitioner', id: 'prac-1' });
  assert.equal(authorize(me, 'GET', '/4_0_1/Patient/pat-1', FHIR_USER).allowed, true, 'patient data: not narrowed');
  const absolute = signedIn('https://fhir.contoso.example/4_0_1/Practitioner/prac-1');
  assert.equal(authorize(absolute, 'GET', '/4_0_1/Practitioner/prac-1', FHIR_USER).allowed, true, 'absolute URL');
});

test('fhirUser: a Patient is limited to its own compartment', () => {
  const me = signedIn('Patient/pat-1');
  assert.equal(authorize(me, 'GET', '/4_0_1/Patient/pat-1', FHIR_USER).allowed, true);
  assert.equal(authorize(me, 'GET', '/4_0_1/Patient/pat-2', FHIR_USER).allowed, false);
  assert.equal(authorize(signedIn('Patient/pat-1', 'patient.all.cruds', 'globalWriter'), 'PUT', '/4_0_1/Patient/pat-2', FHIR_USER).allowed,
    false, 'no write outside either');
  const search = authorize(me, 'GET', '/4_0_1/Patient', FHIR_USER);
  assert.deepEqual([search.allowed, search.compartment], [true, { type: 'Patient', id: 'pat-1' }], 'a search is narrowed by the store');
  const c = search.compartment;
  assert.equal(visible({ resourceType: 'Patient', id: 'pat-1' }, c), true);
  assert.equal(visible({ resourceType: 'Patient', id: 'pat-2' }, c), false);
  assert.equal(visible({ resourceType: 'Observation', id: 'o1', subject: { reference: 'Patient/pat-1' } }, c), true);
  assert.equal(visible({ resourceType: 'Observation', id: 'o2', subject: { reference: 'Patient/pat-2' } }, c), false);
  assert.equal(visible({ resourceType: 'Observation', id: 'o3', performer: [{ reference: 'http://x/4_0_1/Patient/pat-1' }] }, c), true);
  assert.equal(visible({ resourceType: 'Practitioner', id: 'prac-9' }, c), true, 'outside the Patient compartment: readable');
  assert.equal(visible({ resourceType: 'Practitioner', id: 'prac-9' }, { type: 'Practitioner', id: 'prac-1' }), false);
  assert.equal(visible({ resourceType: 'Patient', id: 'pat-2' }, undefined), true, 'no compartment');
});

test('fhirUser: a delegated token without the claim is refused, and says why', () => {
  const none = authorize(signedIn(undefined), 'GET', '/4_0_1/Patient/pat-1', FHIR_USER);
  assert.equal(none.allowed, false);
  assert.match(none.reason, /carries no 'fhirUser' claim/);
  assert.match(none.reason, /no value for extension_0a1b2c3d4e5f60718293a4b5c6d7e8f9_fhirUser/);
  assert.match(none.reason, /PATCH \/users\/\{id\}/);
  assert.equal(authorize(signedIn(''), 'GET', '/4_0_1/Patient', FHIR_USER).allowed, false, 'empty');
  const odd = authorize(signedIn('Organization/o1'), 'GET', '/4_0_1/Patient', FHIR_USER);
  assert.match(odd.reason, /must be Patient\/<id> or Practitioner\/<id>/);
  assert.match(parseFhirUser('Practitioner').reason, /must be Patient/, 'no id');
  assert.deepEqual(parseFhirUser('Patient/pat-1/'), { type: 'Patient', id: 'pat-1' });
  assert.equal(authorize(signedIn(undefined), 'GET', '/4_0_1/Patient/pat-1').allowed, true, 'not required: unchanged');
  assert.equal(authorize(signedIn(undefined, 'user_impersonation'), 'GET', '/4_0_1/Patient/pat-1', { claim: '' }).allowed, true);
});

test('fhirUser: app-only tokens are unaffected, and roles and scopes still come first', () => {
  assert.equal(authorize(app('globalReader'), 'GET', '/4_0_1/Patient/pat-2', FHIR_USER).allowed, true);
  assert.equal(authorize(app('globalReader'), 'GET', '/4_0_1/Practitioner/prac-2', FHIR_USER).compartment, undefined);
  const scoped = authorize(signedIn('Patient/pat-1', 'patient.Observation.rs'), 'GET', '/4_0_1/Patient/pat-1', FHIR_USER);
  assert.match(scoped.reason, /SMART scopes/);
  assert.match(authorize({ scp: 'patient.all.read', fhirUser: 'Patient/pat-1' }, 'GET', '/4_0_1/Patient/pat-1', FHIR_USER).reason, /roles/);
});
