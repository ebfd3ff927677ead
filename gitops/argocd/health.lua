-- Argo CD health check for kschema.io Subject and Schema resources (one script for both kinds).
--
-- Healthy     the operator has observed the current generation and its Ready condition is True.
-- Progressing the operator has not observed the current generation yet, Ready is missing or Unknown, or the
--             resource is being deleted (the operator's finalizer soft-deletes it in the registry first).
-- Degraded    Ready is False for the current generation; the message is the condition's message. While
--             the operator waits for something that normally arrives by itself (the Subject or a referenced
--             version applied later in the same sync, the registry store coming back), it is Progressing.
--
-- A Ready condition written for an earlier generation says nothing about the current spec, so a stale
-- status is Progressing whatever it says: a sync must not turn green (or red) on the previous version.
local hs = {}

-- The Ready reasons the operator retries on its own (tests keep this list equal to the operator's).
local waitingReasons = {
  KubernetesApiError = true,
  ReferenceNotFound = true,
  StoreError = true,
  StoreUnavailable = true,
  SubjectNotFound = true,
  SubjectNotReady = true,
  TemporaryFailure = true,
}

local function conditionMessage(condition)
  if condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  if condition.reason ~= nil and condition.reason ~= "" then
    return condition.reason
  end
  return "Ready is " .. tostring(condition.status)
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
  if obj.metadata.deletionTimestamp ~= nil then
    hs.status = "Progressing"
    hs.message = "Waiting for the registry to release the resource before deletion"
    return hs
  end
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the resource"
  return hs
end

local observed = obj.status.observedGeneration
if observed == nil or (generation ~= nil and observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local ready = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
  end
end

if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end

-- Conditions may carry their own observedGeneration (Kubernetes API conventions); honour it when present.
if ready.observedGeneration ~= nil and generation ~= nil and ready.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition of generation " .. tostring(generation)
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = conditionMessage(ready)
elseif ready.status == "False" and waitingReasons[ready.reason] then
  hs.status = "Progressing"
  hs.message = conditionMessage(ready)
elseif ready.status == "False" then
  hs.status = "Degraded"
  hs.message = conditionMessage(ready)
else
  hs.status = "Progressing"
  hs.message = conditionMessage(ready)
end
return hs
