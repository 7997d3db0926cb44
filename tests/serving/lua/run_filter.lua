-- Runs the gateway's Lua filter as Envoy would, on requests written by the tests:
--   luajit run_filter.lua FILTER.lua DIR COUNT
-- FILTER.lua is the filter's whole source (catalog chunk included). For each request
-- DIR/<i>.headers ("name<TAB>value" lines, pseudo-headers such as :method included) and
-- DIR/<i>.body (and DIR/<i>.fault, when Envoy's getBytes is to fail with that message), it
-- calls envoy_on_request with a stand-in of Envoy's stream handle and writes
-- DIR/<i>.out: the body after the filter; DIR/<i>.length: the content-length Envoy would send
-- ("" when unchanged); DIR/<i>.headers.out: the headers passed on; DIR/<i>.response: the
-- local reply ("<status><TAB><content-type>\n<body>", "" when none); DIR/<i>.cleared: "1"
-- when the route cache was cleared after the last header change, else ""; DIR/<i>.cpu: the
-- CPU seconds the filter took.
local filter, dir, count = arg[1], arg[2], tonumber(arg[3])
dofile(filter)

local function read(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

for i = 0, count - 1 do
  local data = read(dir .. "/" .. i .. ".body")
  local fault = io.open(dir .. "/" .. i .. ".fault", "rb")
  if fault then
    fault = fault:read("*a")
  end
  local length, response, cleared, responded = "", "", "", false
  -- Header names as Envoy keeps them: lower case (HTTP/2 requires it; HTTP/1 is normalised).
  local names, values = {}, {}
  for line in string.gmatch(read(dir .. "/" .. i .. ".headers"), "[^\n]+") do
    local name, value = string.match(line, "^([^\t]+)\t(.*)$")
    names[#names + 1], values[#names + 1] = string.lower(name), value
  end
  local function find(name)
    for k = 1, #names do
      if names[k] == name then return k end
    end
  end
  -- Envoy's header map wrapper (filters/common/lua/wrappers.h): get, remove (every value),
  -- replace (the first value, or add). Changing headers marks the route cache stale.
  local headers = {
    get = function(_, name)
      local k = find(name)
      return k and values[k] or nil
    end,
    remove = function(_, name)
      while find(name) do
        local k = find(name)
        table.remove(names, k)
        table.remove(values, k)
        cleared = ""
      end
    end,
    replace = function(_, name, value)
      local k = find(name)
      if k then values[k] = value else names[#names + 1], values[#names + 1] = name, value end
      cleared = ""
    end,
  }
  -- Envoy's buffer wrapper: 0-based getBytes that refuses to read past the end; setBytes
  -- replaces the body and sets content-length.
  local buffer = {
    length = function(_) return #data end,
    getBytes = function(_, index, n)
      if fault then
        error(fault)
      end
      assert(index >= 0 and n >= 0 and index + n <= #data,
        "index/length must be >= 0 and (index + length) must be <= buffer size")
      return string.sub(data, index + 1, index + n)
    end,
    setBytes = function(_, bytes)
      assert(not responded, "setBytes after respond")
      data = bytes
      length = tostring(#bytes)
    end,
  }
  local handle = {
    headers = function(_) return headers end,
    -- nil when the request has no body, as Envoy returns without always_wrap_body
    body = function(_)
      if #data == 0 then return nil end
      return buffer
    end,
    clearRouteCache = function(_) cleared = "1" end,
    respond = function(_, reply_headers, reply_body)
      assert(not responded, "respond twice")
      responded = true
      response = reply_headers[":status"] .. "\t" .. (reply_headers["content-type"] or "") .. "\n" .. reply_body
    end,
  }
  local started = os.clock()
  envoy_on_request(handle)
  local cpu = os.clock() - started
  local out = {}
  for k = 1, #names do out[#out + 1] = names[k] .. "\t" .. values[k] .. "\n" end
  write(dir .. "/" .. i .. ".out", data)
  write(dir .. "/" .. i .. ".length", length)
  write(dir .. "/" .. i .. ".headers.out", table.concat(out))
  write(dir .. "/" .. i .. ".response", response)
  write(dir .. "/" .. i .. ".cleared", cleared)
  write(dir .. "/" .. i .. ".cpu", string.format("%.6f", cpu))
end
