-- Argo CD health check for fhirapps.io FhirResourceApp and FhirClientApp (kstatus conditions).
-- Uses only Lua 5.1 base functions, so it needs no `useOpenLibs`.
--   Healthy      Ready=True for the current metadata.generation
--   Degraded     Stalled=True (a permanent error that needs a human, e.g. a missing Graph permission)
--   Progressing  no status yet, generation not observed yet, Reconciling=True, Ready not True, deleting
local hs = { status = "Progressing", message = "Waiting for the operator to report status" }
if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.message = "Deleting: the operator is removing the Entra ID application"
  return hs
end
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local ready, reconciling, stalled = nil, nil, nil
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then ready = c
  elseif c.type == "Reconciling" then reconciling = c
  elseif c.type == "Stalled" then stalled = c end
end
local function describe(c, fallback)
  local text = fallback
  if c.message ~= nil and c.message ~= "" then text = c.message end
  if c.reason ~= nil and c.reason ~= "" then return c.reason .. ": " .. text end
  return text
end
local generation = obj.metadata and obj.metadata.generation
local observed = obj.status.observedGeneration
if ready ~= nil and ready.observedGeneration ~= nil then observed = ready.observedGeneration end
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
  return hs
end
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = describe(reconciling, "Reconciling")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe({ message = ready.message }, "Ready")
  return hs
end
if ready ~= nil then
  hs.message = describe(ready, "Not ready")
end
return hs
