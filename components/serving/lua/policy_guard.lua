-- Runs in the inference gateway's Envoy (an EnvoyFilter, components/serving/gateway.py
-- _policy_guard) after Kuadrant's wasm filter and before the router. It is loaded after a
-- generated chunk that defines GUARD: the metered paths, the marker header and the reply.
--
-- Kuadrant's filter passes a request for a host it has no action set for untouched
-- (Kuadrant/wasm-shim@v0.14.1 src/filter/kuadrant_filter.rs: "no matching route found"): a host or
-- route it has not configured yet, or a configuration it failed to write (past etcd's object
-- cap the operator only logs the error). Such a request would reach a model with no
-- authentication, limits or metering. Every request a policy admits carries the marker,
-- which only Authorino's success response sets (components/access/tiers.py auth_spec) and
-- which the request-body filter removes from what clients send (lua/request_body.lua runs
-- first). So a request for a metered path without it was judged by no policy: it is refused
-- here, in OpenAI's error shape. Other paths are left to the router (404: no route).

function envoy_on_request(handle)
  local headers = handle:headers()
  local path = string.match(headers:get(":path") or "", "^[^?]*")
  if GUARD.paths[path] and not headers:get(GUARD.marker) then
    handle:respond({ [":status"] = GUARD.status, ["content-type"] = "application/json" }, GUARD.body)
  end
end
