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

local stand_in = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/stand_in.lua")
local read, write = stand_in.read, stand_in.write

for i = 0, count - 1 do
  local data = read(dir .. "/" .. i .. ".body")
  local fault = io.open(dir .. "/" .. i .. ".fault", "rb")
  if fault then
    fault = fault:read("*a")
  end
  local length, response, cleared, responded = "", "", "", false
  -- A header change marks the route cache stale.
  local headers, dump = stand_in.headers(read(dir .. "/" .. i .. ".headers"), function() cleared = "" end)
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
  write(dir .. "/" .. i .. ".out", data)
  write(dir .. "/" .. i .. ".length", length)
  write(dir .. "/" .. i .. ".headers.out", dump())
  write(dir .. "/" .. i .. ".response", response)
  write(dir .. "/" .. i .. ".cleared", cleared)
  write(dir .. "/" .. i .. ".cpu", string.format("%.6f", cpu))
end
