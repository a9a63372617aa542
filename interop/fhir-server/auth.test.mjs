// The authorization rules of the test FHIR server (auth.mjs), case by case: roles.json's meaning and
// the SMART scope forms the operator publishes. Run by tests/tests/fhir_server.rs (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { authorize, clinicalScopes, requested } from './auth.mjs';

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
