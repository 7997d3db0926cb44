-- Runs the gateway's Lua filter as Envoy would, on request bodies written by the tests:
--   luajit run_filter.lua FILTER.lua DIR COUNT
-- For each DIR/<i>.body (with DIR/<i>.method) it calls envoy_on_request with a stand-in
-- of Envoy's stream handle and writes DIR/<i>.out: the body after the filter, and
-- DIR/<i>.length: the content-length Envoy would send ("" when unchanged).
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
  local method = read(dir .. "/" .. i .. ".method")
  local data = read(dir .. "/" .. i .. ".body")
  local length = ""
  -- Envoy's buffer wrapper (filters/common/lua/wrappers.h): 0-based getBytes that refuses
  -- to read past the end; setBytes replaces the body and sets content-length.
  local buffer = {
    length = function(_) return #data end,
    getBytes = function(_, index, n)
      assert(index >= 0 and n >= 0 and index + n <= #data,
        "index/length must be >= 0 and (index + length) must be <= buffer size")
      return string.sub(data, index + 1, index + n)
    end,
    setBytes = function(_, bytes)
      data = bytes
      length = tostring(#bytes)
    end,
  }
  local handle = {
    headers = function(_)
      return { get = function(_, name) return name == ":method" and method or nil end }
    end,
    -- nil when the request has no body, as Envoy returns without always_wrap_body
    body = function(_)
      if #data == 0 then return nil end
      return buffer
    end,
  }
  envoy_on_request(handle)
  write(dir .. "/" .. i .. ".out", data)
  write(dir .. "/" .. i .. ".length", length)
end
