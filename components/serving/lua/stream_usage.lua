-- Runs in the inference gateway's Envoy (an EnvoyFilter, components/serving/gateway.py) on every
-- POST: a streamed OpenAI request ("stream": true) gets "stream_options": {"include_usage":
-- true}, so the stream ends with a usage chunk that Kuadrant's token limits and metering
-- read. Without it llm-d-inference-sim sends no usage in a stream (v0.10.2 pkg/api/
-- request.go, IncludeUsage) and the wasm-shim counts no tokens (v0.14.1 token_usage.rs).
--
-- Only the body's top-level members are read, as JSON decoders do (the last of duplicate
-- keys wins, in Go's encoding/json and in Python's json alike). A body that is not one JSON
-- object, or not a stream, passes unchanged: the model server answers it as before.
-- Envoy's Lua API (docs lua_filter.rst): handle:body() buffers the whole body (413 past
-- the listener's buffer limit, 1 MiB by default) or is nil; getBytes(index, length) is
-- 0-based; setBytes() replaces the body and sets content-length.

local WS = "[^ \t\r\n]"

local function skip_ws(s, i)
  return string.find(s, WS, i) or (#s + 1)
end

-- Index just past the string that starts at i (s[i] is '"'), or nil.
local function skip_string(s, i)
  local j = i + 1
  while true do
    local k = string.find(s, '["\\]', j)
    if not k then
      return nil
    end
    if string.sub(s, k, k) == '"' then
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
      local k = string.find(s, '["{}%[%]]', j)
      if not k then
        return nil
      end
      local ch = string.sub(s, k, k)
      if ch == '"' then
        j = skip_string(s, k)
        if not j then
          return nil
        end
      else
        depth = depth + ((ch == "{" or ch == "[") and 1 or -1)
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

-- A key as decoders see it: "stre\u0061m" is "stream" too. Non-ASCII escapes only need
-- to differ from the ASCII names compared against.
local function decode_key(raw)
  if not string.find(raw, "\\", 1, true) then
    return raw
  end
  local out, i = {}, 1
  while i <= #raw do
    local c = string.sub(raw, i, i)
    if c ~= "\\" then
      out[#out + 1], i = c, i + 1
    elseif string.sub(raw, i + 1, i + 1) == "u" then
      local code = tonumber(string.sub(raw, i + 2, i + 5), 16)
      out[#out + 1], i = (code and code < 128) and string.char(code) or "?", i + 6
    else
      out[#out + 1], i = ESCAPES[string.sub(raw, i + 1, i + 1)] or "?", i + 2
    end
  end
  return table.concat(out)
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
    if string.sub(s, j, j) ~= '"' then
      return nil
    end
    local key_end = skip_string(s, j)
    if not key_end then
      return nil
    end
    local key = decode_key(string.sub(s, j + 1, key_end - 2))
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

-- The body with usage forced into its stream, or nil when it must pass unchanged.
local function force_stream_usage(body)
  local open = skip_ws(body, 1)
  if string.sub(body, open, open) ~= "{" then
    return nil
  end
  local top, close = members(body, open)
  if not top or skip_ws(body, close) <= #body then
    return nil
  end
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

function envoy_on_request(handle)
  if handle:headers():get(":method") ~= "POST" then
    return
  end
  local buffered = handle:body()
  if buffered == nil then
    return
  end
  local changed = force_stream_usage(buffered:getBytes(0, buffered:length()))
  if changed then
    buffered:setBytes(changed)
  end
end
