// node-fhir-server-core loads its passport strategy from a module path (config.auth.strategy.service);
// server.mjs builds the strategy (it needs the authority's discovery first) and hands it over here.
module.exports = { strategy: globalThis.__fhirServerStrategy };
