-- Runs in the inference gateway's Envoy on the way out, in the request-body filter
-- (components/serving/gateway.py request_filter_source appends it), the first filter we put
-- before Kuadrant's: so the replies of every filter after it pass through it. Envoy encodes
-- a local reply through every encoder filter, whichever filter sent it (the audit's reading
-- of envoyproxy/envoy@main source/common/http/filter_manager.cc
-- sendLocalReplyViaFilterChain, issue 24).
--
-- Some refusals reach a client as plain text, which OpenAI's SDKs cannot read as an error:
-- Kuadrant's 429s (Kuadrant/wasm-shim@v0.14.1 src/configuration/legacy_translation.rs: body
-- "Too Many Requests\n", Limitador's response headers added), the endpoint picker's 429 when
-- it sheds a request (llm-d/llm-d-router@v0.10.0 pkg/common/error/error.go BuildErrResponse,
-- pkg/epp/handlers/server.go: "inference error: ..." or "request evicted ..."), and Envoy's
-- 413 past the buffer limit ("Payload Too Large"). Each such reply (a status in
-- REFUSALS, not already JSON) gets OpenAI's {"error": {"message", "type", "code"}} body.
--
-- A request-limit 429 carries Limitador's X-RateLimit-Reset (the seconds until the counter
-- that refused it expires; Limitador answers Kuadrant's ShouldRateLimit with its
-- DRAFT_VERSION_03 headers, Kuadrant/limitador@v2.4.0 limitador/src/lib.rs response_header, which
-- components/platform/kuadrant.py turns on): that becomes Retry-After. The token limit's
-- check (CheckRateLimit) returns no headers (limitador-server src/envoy_rls/
-- kuadrant_service.rs), and this filter runs before authentication, so it never learns the
-- tier: a token-limit 429's Retry-After is CATALOG.token_window_s, the longest token window
-- of any tier, a bound on the wait (Limitador's counters expire a window after they start).
-- A shed request's has none: no one knows its wait. OpenAI's Python SDK waits a
-- Retry-After of up to 120 s and does not retry past it, else backs off 0.5 s to 8 s
-- (openai 3.57.0 _base_client.py _calculate_retry_timeout, _should_retry).

local REFUSALS = {
  ["413"] = {
    message = "The request body is larger than this gateway accepts.",
    type = "invalid_request_error",
    code = "request_too_large",
  },
  requests = {
    message = "Rate limit reached for requests in your tier.",
    type = "requests",
    code = "rate_limit_exceeded",
  },
  tokens = {
    message = "Rate limit reached for tokens in your tier.",
    type = "tokens",
    code = "rate_limit_exceeded",
  },
  shed = {
    message = "The model is at capacity and could not queue this request; try again shortly.",
    type = "server_overloaded",
    code = "queue_full",
  },
}

local function refusal(status, headers, text)
  if status == "413" then
    return REFUSALS["413"]
  end
  if headers:get("x-ratelimit-reset") then
    return REFUSALS.requests
  end
  if string.sub(text, 1, 17) == "Too Many Requests" then
    return REFUSALS.tokens
  end
  return REFUSALS.shed
end

function envoy_on_response(handle)
  local headers = handle:headers()
  local status = headers:get(":status")
  local kind = headers:get("content-type") or ""
  if (status ~= "413" and status ~= "429") or string.find(kind, "application/json", 1, true) then
    return
  end
  local body = handle:body()
  if not body then -- nothing to reshape: every refusal above has a body
    return
  end
  local shape = refusal(status, headers, body:getBytes(0, body:length()))
  local wait = nil
  if shape == REFUSALS.requests then
    wait = string.match(headers:get("x-ratelimit-reset"), "^%d+$")
  elseif shape == REFUSALS.tokens and CATALOG.token_window_s then
    wait = tostring(CATALOG.token_window_s)
  end
  local message = shape.message
  if wait then
    headers:replace("retry-after", wait)
    message = message .. " Please try again in at most " .. wait .. "s."
  end
  headers:replace("content-type", "application/json")
  body:setBytes('{"error": {"message": "' .. message .. '", "type": "' .. shape.type .. '", "code": "' .. shape.code .. '"}}')
end
