-- Runs in the inference gateway's Envoy (an EnvoyFilter, components/serving/gateway.py) on
-- every request, before Kuadrant's filter, which reads the headers it sets. It is loaded
-- after a generated chunk that defines CATALOG (components/serving/gateway.py
-- request_filter_source): the shared host, each model host's served name, the served names,
-- the paths routed by model, and the header names.
--
-- 0. The host, in lower case for Kuadrant's filter, which compares it case-sensitively.
-- 1. The model a request is for, as the header CATALOG.model_header, which the model
--    routes and the model access rules match on. Any such header that the client sent is
--    removed first, with every other header only the gateway may set
--    (CATALOG.gateway_headers: the tier, and the endpoint picker's priority, fairness and
--    latency headers, which Authorino sets after authentication), so none can steer a
--    request. On a model's own host the host decides, as before. On the shared
--    host a POST to a routed path is routed by the body's top-level "model": none (or not
--    a string, or no JSON object) is 400, one we do not serve is 404, both in OpenAI's
--    error shape and before the request reaches Kuadrant (as an unrouted path gets 404
--    before it does).
-- 2. A streamed OpenAI request ("stream": true) gets "stream_options": {"include_usage":
--    true}, so the stream ends with a usage chunk that Kuadrant's token limits and metering
--    read. Without it llm-d-inference-sim sends no usage in a stream (llm-d/llm-d-inference-sim@v0.10.2 pkg/api/
--    request.go, IncludeUsage) and the wasm-shim counts no tokens (Kuadrant/wasm-shim@v0.14.1 token_usage.rs).
-- 3. Loaded a second time after Kuadrant's filter (components/serving/gateway.py
--    tier_caps_source, CATALOG.caps), it enforces the tier's caps on max_tokens,
--    max_completion_tokens and n instead, and salts vLLM's prefix cache per user
--    (cap_request below).
--
-- Only the body's top-level members are read, as JSON decoders do (the last of duplicate
-- keys wins, in Go's encoding/json and in Python's json alike), so the model routed to is
-- the model the server reads. A body that spells "stream", "stream_options" or
-- "include_usage" (or what the caps read: "max_tokens", "max_completion_tokens", "n") other
-- than exactly, as Go's decoder still reads them, or gives one twice is refused with 400
-- (unambiguous below). (Go's decoder also takes "Model" for "model"; such a body is
-- still routed, authorized and limited as the model we read, the only one that server has.) A body that is not one JSON object, or not a stream, passes
-- unchanged. Envoy's Lua API (docs lua_filter.rst): handle:body() buffers the whole body
-- (413 past the listener's buffer limit, 1 MiB by default) or is nil; getBytes(index,
-- length) is 0-based; setBytes() replaces the body and sets content-length; headers can be
-- changed until they are passed on, which waits for body(); clearRouteCache() makes Envoy
-- pick the route again with the new header; respond() answers without going further.

local WS = "[^ \t\r\n]"

-- Work before authentication is bounded: Kuadrant authenticates after this filter, so
-- anyone can send a body. Every step of the reading below (a string escape, a bracket, a
-- member, a decoded character) spends from a budget per request, and a body that
-- exhausts it is refused with 400; so are objects with more members than any request
-- has. tests/serving/test_request_body.py measures the worst bodies.
local MAX_STEPS = 524288
local MAX_MEMBERS = 512
local MAX_DEPTH = 128
-- The longest key compared against ("stream_options"), each character escaped (\uXXXX):
-- longer keys are not decoded, they can equal no name.
local MAX_KEY = 6 * 14
-- Likewise for "model": longer values are no served name.
local MAX_MODEL = 0
for name in pairs(CATALOG.models or {}) do
  MAX_MODEL = math.max(MAX_MODEL, 6 * #name)
end
local TOO_COMPLEX = {}
local budget = MAX_STEPS

local function spend()
  budget = budget - 1
  if budget < 0 then
    error(TOO_COMPLEX)
  end
end

local QUOTE, OPEN_BRACE, OPEN_BRACKET = string.byte('"{[', 1, 3)

local function skip_ws(s, i)
  return string.find(s, WS, i) or (#s + 1)
end

-- Index just past the string that starts at i (s[i] is '"'), or nil.
local function skip_string(s, i)
  local j = i + 1
  while true do
    spend()
    local k = string.find(s, '["\\]', j)
    if not k then
      return nil
    end
    if string.byte(s, k) == QUOTE then
      return k + 1
    end
    j = k + 2
  end
end

-- Index just past the value that starts at i, or nil.
local function skip_value(s, i)
  local c = string.sub(s, i, i)
  if c == '"' then
    return skip_string(s, i)
  end
  if c == "{" or c == "[" then
    local depth, j = 0, i
    while true do
      spend()
      local k = string.find(s, '["{}%[%]]', j)
      if not k then
        return nil
      end
      local ch = string.byte(s, k)
      if ch == QUOTE then
        j = skip_string(s, k)
        if not j then
          return nil
        end
      else
        depth = depth + ((ch == OPEN_BRACE or ch == OPEN_BRACKET) and 1 or -1)
        if depth > MAX_DEPTH then
          error(TOO_COMPLEX)
        end
        j = k + 1
        if depth == 0 then
          return j
        end
      end
    end
  end
  -- a number, true, false or null: up to the next delimiter
  local k = string.find(s, "[,}%] \t\r\n]", i)
  if k == i or i > #s then
    return nil
  end
  return k or (#s + 1)
end

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

-- The UTF-8 of a code point below 0x10000 (a lone surrogate too: it can equal no name).
local function utf8(code)
  if code < 0x80 then
    return string.char(code)
  elseif code < 0x800 then
    return string.char(0xC0 + math.floor(code / 0x40), 0x80 + code % 0x40)
  end
  return string.char(0xE0 + math.floor(code / 0x1000), 0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
end

-- A string as decoders see it ("stre\u0061m" is "stream" too, "\u017ftream" is "ſtream"),
-- or nil when an escape is not JSON.
local function decode_string(raw)
  if not string.find(raw, "\\", 1, true) then
    return raw
  end
  local out, i = {}, 1
  while i <= #raw do
    spend()
    local c = string.sub(raw, i, i)
    if c ~= "\\" then
      out[#out + 1], i = c, i + 1
    elseif string.sub(raw, i + 1, i + 1) == "u" then
      local hex = string.match(string.sub(raw, i + 2, i + 5), "^%x%x%x%x$")
      if not hex then
        return nil
      end
      out[#out + 1], i = utf8(tonumber(hex, 16)), i + 6
    else
      local escaped = ESCAPES[string.sub(raw, i + 1, i + 1)]
      if not escaped then
        return nil
      end
      out[#out + 1], i = escaped, i + 2
    end
  end
  return table.concat(out)
end

-- A key as Go's encoding/json matches it to a field when no field has it exactly: case
-- folded, ASCII and the two non-ASCII letters that fold to ASCII ones, ſ (U+017F) to s
-- and the Kelvin sign (U+212A) to k (golang/go@go1.25 src/encoding/json/fold.go foldName:
-- unicode.SimpleFold; go1.19's equalFoldRight special-cases the same two).
local function go_fold(key)
  return (string.gsub(string.gsub(string.lower(key), "\197\191", "s"), "\226\132\170", "k"))
end

-- The members of the object that starts at i: {key, from, to} each (the value is
-- s[from, to)), and the index past its '}'; nil when it is not a well-formed object.
local function members(s, i)
  local found = {}
  local j = skip_ws(s, i + 1)
  if string.sub(s, j, j) == "}" then
    return found, j + 1
  end
  while true do
    if #found >= MAX_MEMBERS then
      error(TOO_COMPLEX)
    end
    if string.sub(s, j, j) ~= '"' then
      return nil
    end
    local key_end = skip_string(s, j)
    if not key_end then
      return nil
    end
    local raw = string.sub(s, j + 1, key_end - 2)
    local key = "\0" -- in no name
    if #raw <= MAX_KEY then
      key = decode_string(raw)
      if not key then
        return nil
      end
    end
    j = skip_ws(s, key_end)
    if string.sub(s, j, j) ~= ":" then
      return nil
    end
    local from = skip_ws(s, j + 1)
    local to = skip_value(s, from)
    if not to then
      return nil
    end
    found[#found + 1] = { key = key, from = from, to = to }
    j = skip_ws(s, to)
    local c = string.sub(s, j, j)
    if c == "}" then
      return found, j + 1
    end
    if c ~= "," then
      return nil
    end
    j = skip_ws(s, j + 1)
  end
end

local function last(found, key)
  local hit
  for _, member in ipairs(found) do
    if member.key == key then
      hit = member
    end
  end
  return hit
end

local function splice(s, from, to, text)
  return string.sub(s, 1, from - 1) .. text .. string.sub(s, to)
end

local INCLUDE_USAGE = '"include_usage":true'

-- True when every key of `found` that Go's decoder takes for one of `names` is that name,
-- spelled exactly, and appears once. Otherwise the servers read the body differently: Go
-- takes "Stream" or "ſtream" for "stream" and the last of duplicates ("stream": null
-- after true leaves true), pydantic (vLLM) takes only the exact key and the last value
-- (json.loads): the gateway cannot tell which stream a server sees, so it refuses.
local function spelled_once(found, names)
  local seen = {}
  for _, member in ipairs(found) do
    local folded = go_fold(member.key)
    if names[folded] then
      if member.key ~= folded or seen[folded] then
        return false
      end
      seen[folded] = true
    end
  end
  return true
end

-- With what the tier caps read (max_tokens, max_completion_tokens, n): Go takes "N" for "n".
local TOP_NAMES = { stream = true, stream_options = true, max_tokens = true, max_completion_tokens = true, n = true }
local OPTION_NAMES = { include_usage = true }

-- The stream's members spelled once and exactly, at the top and in "stream_options".
local function unambiguous(body, top)
  if not spelled_once(top, TOP_NAMES) then
    return false
  end
  local options = last(top, "stream_options")
  if options and string.sub(body, options.from, options.from) == "{" then
    local inner = members(body, options.from)
    return not inner or spelled_once(inner, OPTION_NAMES)
  end
  return true
end

-- The top-level members of a body that is one JSON object, or nil.
local function top_members(body)
  local open = skip_ws(body, 1)
  if string.sub(body, open, open) ~= "{" then
    return nil
  end
  local top, close = members(body, open)
  if not top or skip_ws(body, close) <= #body then
    return nil
  end
  return top, open
end

-- The body's top-level "model" when it is a string, or nil.
local function model_of(body, top)
  local model = last(top, "model")
  if not model or string.sub(body, model.from, model.from) ~= '"' then
    return nil
  end
  local raw = string.sub(body, model.from + 1, model.to - 2)
  if #raw > MAX_MODEL then
    return raw -- no served name, not worth decoding
  end
  return decode_string(raw)
end

-- The body with usage forced into its stream, or nil when it must pass unchanged.
local function force_stream_usage(body, top, open)
  local stream = last(top, "stream")
  if not stream or string.sub(body, stream.from, stream.to - 1) ~= "true" then
    return nil
  end
  local options = last(top, "stream_options")
  if not options then
    -- "stream" is a member, so the object has one and a comma follows the insertion.
    return splice(body, open + 1, open + 1, '"stream_options":{' .. INCLUDE_USAGE .. "},")
  end
  local value = string.sub(body, options.from, options.to - 1)
  if value == "null" then
    return splice(body, options.from, options.to, "{" .. INCLUDE_USAGE .. "}")
  end
  if string.sub(value, 1, 1) ~= "{" then
    return nil -- not an object: the server refuses the request itself
  end
  local inner = members(body, options.from)
  if not inner then
    return nil
  end
  local include = last(inner, "include_usage")
  if include then
    if string.sub(body, include.from, include.to - 1) == "true" then
      return nil
    end
    return splice(body, include.from, include.to, "true")
  end
  local after = options.from + 1
  return splice(body, after, after, INCLUDE_USAGE .. (#inner > 0 and "," or ""))
end

local answered = false

local function refuse(handle, status, message, code)
  answered = true
  handle:respond(
    { [":status"] = status, ["content-type"] = "application/json" },
    '{"error": {"message": "' .. message .. '", "type": "invalid_request_error", "code": "' .. code .. '"}}'
  )
end

local function route_to(handle, headers, model)
  headers:replace(CATALOG.model_header, model)
  handle:clearRouteCache()
end

local function on_request(handle)
  local headers = handle:headers()
  local sent = false
  for name in pairs(CATALOG.gateway_headers) do
    if headers:get(name) then
      headers:remove(name)
      sent = true
    end
  end
  if sent then
    -- a route an earlier filter picked with the client's header must not stand
    handle:clearRouteCache()
  end
  -- Host names are case-insensitive and Envoy picks a virtual host regardless of case, but
  -- Kuadrant's filter picks a host's policies case-sensitively (Kuadrant/wasm-shim@v0.14.1 src/
  -- kuadrant/pipeline/factory.rs select_blueprint): it must see the host in lower case.
  local authority = headers:get(":authority") or ""
  if string.lower(authority) ~= authority then
    headers:replace(":authority", string.lower(authority))
    handle:clearRouteCache()
  end
  -- the host without its port
  local host = string.match(string.lower(authority), "^[^:]*")
  local post = headers:get(":method") == "POST"
  local by_body = host == CATALOG.api_host and post
    and CATALOG.routed_paths[string.match(headers:get(":path") or "", "^[^?]*")]
  if CATALOG.hosts[host] then
    route_to(handle, headers, CATALOG.hosts[host])
  end
  if not post then
    return
  end
  local buffered = handle:body()
  local body = buffered and buffered:getBytes(0, buffered:length()) or ""
  local top, open = top_members(body)
  if by_body then
    local model = top and model_of(body, top)
    if not model then
      refuse(handle, "400", "The request body must be a JSON object with a string `model`.", "model_required")
      return
    end
    if not CATALOG.models[model] then
      refuse(handle, "404", "The model does not exist on this endpoint; GET /v1/models lists yours.", "model_not_found")
      return
    end
    route_to(handle, headers, model)
  end
  if top and not unambiguous(body, top) then
    refuse(
      handle,
      "400",
      "`stream`, `stream_options`, `include_usage`, `max_tokens`, `max_completion_tokens` and `n` must each appear at most once, spelled exactly.",
      "invalid_stream_parameters"
    )
    return
  end
  local changed = top and force_stream_usage(body, top, open)
  if changed then
    buffered:setBytes(changed)
  end
end

-- After authentication (CATALOG.caps, gateway.py tier_caps_source): what one generation
-- request may ask for on its tier. max_tokens, max_completion_tokens and n must be null or a
-- JSON integer within the tier's caps (vLLM's pydantic would also take "100" or 100.0, the
-- simulator's Go neither: only the plain integer reads alike), else 400; a request with
-- neither token field gets max_tokens (the tier's cap for chat, the endpoint's default for
-- completions), so no request generates more than its tier allows. The first stage has
-- already refused re-spelled or repeated keys.
-- A JSON string of s (user ids and tier names: quotes, backslashes and controls escaped).
local function json_string(s)
  return '"' .. string.gsub(s, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

local CAPPED = { { "max_tokens", "tokens" }, { "max_completion_tokens", "tokens" }, { "n", "choices" } }

local function cap_request(handle)
  local headers = handle:headers()
  local path = string.match(headers:get(":path") or "", "^[^?]*")
  local fill = CATALOG.fill[path]
  if headers:get(":method") ~= "POST" or not fill then
    return
  end
  local caps = CATALOG.caps[headers:get(CATALOG.tier_header) or ""] or CATALOG.smallest
  local buffered = handle:body()
  local body = buffered and buffered:getBytes(0, buffered:length()) or ""
  local top, open = top_members(body)
  if not top then
    return -- not one JSON object: the server refuses it
  end
  local asked = false
  for _, capped in ipairs(CAPPED) do
    local name, cap = capped[1], caps[capped[2]]
    local member = last(top, name)
    local value = member and string.sub(body, member.from, member.to - 1)
    if value and value ~= "null" then
      if not string.match(value, "^%d+$") or tonumber(value) > cap then
        refuse(handle, "400", "`" .. name .. "` must be an integer of at most " .. cap .. " on your tier.", "over_tier_cap")
        return
      end
      -- /v1/completions reads max_tokens only (the simulator's and vLLM's requests alike).
      -- A max_completion_tokens of 0 is no bound to rely on: vLLM has read it both as set
      -- (vllm-project/vllm@v0.31.0 vllm/entrypoints/openai/chat_completion/protocol.py
      -- build_tok_params: `is not None`) and as absent (`or`),
      -- so max_tokens is filled in as well.
      asked = asked
        or name == "max_tokens"
        or (name == "max_completion_tokens" and fill == "tier" and tonumber(value) > 0)
    end
  end
  -- Edits to the body: a member's value replaced, or members inserted after the "{".
  local replaced, inserted = {}, {}
  if not asked then
    local limit = fill == "tier" and caps.tokens or math.min(fill, caps.tokens)
    local given = last(top, "max_tokens")
    if given then -- null: replaced, as a second key before it would lose to it
      replaced[#replaced + 1] = { given, tostring(limit) }
    else
      inserted[#inserted + 1] = '"max_tokens":' .. limit
    end
  end
  if CATALOG.salted[headers:get(CATALOG.model_header) or ""] then
    local user = headers:get(CATALOG.user_header)
    local salt = json_string(user and ("user:" .. user) or ("tier:" .. (headers:get(CATALOG.tier_header) or "")))
    local given = last(top, "cache_salt")
    if given then -- the last is the one vLLM reads (json.loads)
      replaced[#replaced + 1] = { given, salt }
    else
      inserted[#inserted + 1] = '"cache_salt":' .. salt
    end
  end
  if #replaced == 0 and #inserted == 0 then
    return
  end
  -- from the end, so each edit leaves the offsets of those before it
  table.sort(replaced, function(a, b)
    return a[1].from > b[1].from
  end)
  for _, edit in ipairs(replaced) do
    body = splice(body, edit[1].from, edit[1].to, edit[2])
  end
  if #inserted > 0 then
    body = splice(body, open + 1, open + 1, table.concat(inserted, ",") .. (#top > 0 and "," or ""))
  end
  buffered:setBytes(body)
end

-- An error fails closed: a script error would make Envoy log it and pass the request on
-- unchanged (docs lua_filter.rst), unmetered and unrouted; here it is a 400 instead.
function envoy_on_request(handle)
  budget, answered = MAX_STEPS, false
  local ok, err = pcall(CATALOG.caps and cap_request or on_request, handle)
  if ok or answered then
    return
  end
  if err == TOO_COMPLEX then
    refuse(handle, "400", "The request body is too complex to read.", "request_too_complex")
  else
    refuse(handle, "400", "The request could not be read.", "invalid_request")
  end
end
