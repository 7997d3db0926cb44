-- Runs the response half of the gateway's request-body filter (lua/refusals.lua) on one
-- response, as Envoy would:  luajit run_response.lua FILTER.lua DIR
-- DIR/headers ("name<TAB>value" lines, :status included) and DIR/body in; DIR/headers.out,
-- DIR/body.out and DIR/read ("1" when the filter buffered the body) out.
local filter, dir = arg[1], arg[2]
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

local data, read_body = read(dir .. "/body"), ""
local names, values = {}, {}
for line in string.gmatch(read(dir .. "/headers"), "[^\n]+") do
  local name, value = string.match(line, "^([^\t]+)\t(.*)$")
  names[#names + 1], values[#names + 1] = string.lower(name), value
end
local function find(name)
  for k = 1, #names do
    if names[k] == name then return k end
  end
end
-- Envoy's header map wrapper (filters/common/lua/wrappers.h): get, replace (or add).
local headers = {
  get = function(_, name)
    local k = find(name)
    return k and values[k] or nil
  end,
  replace = function(_, name, value)
    local k = find(name)
    if k then values[k] = value else names[#names + 1], values[#names + 1] = name, value end
  end,
}
-- Envoy's buffer wrapper: 0-based getBytes within the body; setBytes replaces the body and
-- sets content-length (docs lua_filter.rst, as lua/request_body.lua reads them).
local buffer = {
  length = function(_) return #data end,
  getBytes = function(_, index, n)
    assert(index >= 0 and n >= 0 and index + n <= #data, "index/length out of the buffer")
    return string.sub(data, index + 1, index + n)
  end,
  setBytes = function(_, bytes)
    data = bytes
    headers:replace("content-length", tostring(#bytes))
  end,
}
local handle = {
  headers = function(_) return headers end,
  -- nil for a response without a body, as Envoy returns without always_wrap_body
  body = function(_)
    read_body = "1"
    if #data == 0 then return nil end
    return buffer
  end,
}
envoy_on_response(handle)
local out = {}
for k = 1, #names do out[#out + 1] = names[k] .. "\t" .. values[k] .. "\n" end
write(dir .. "/headers.out", table.concat(out))
write(dir .. "/body.out", data)
write(dir .. "/read", read_body)
