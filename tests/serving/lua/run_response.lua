-- Runs the response half of the gateway's request-body filter (lua/refusals.lua) on one
-- response, as Envoy would:  luajit run_response.lua FILTER.lua DIR
-- DIR/headers ("name<TAB>value" lines, :status included) and DIR/body in; DIR/headers.out,
-- DIR/body.out and DIR/read ("1" when the filter buffered the body) out.
local filter, dir = arg[1], arg[2]
dofile(filter)

local stand_in = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/stand_in.lua")
local read, write = stand_in.read, stand_in.write

local data, read_body = read(dir .. "/body"), ""
local headers, dump = stand_in.headers(read(dir .. "/headers"), function() end)
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
write(dir .. "/headers.out", dump())
write(dir .. "/body.out", data)
write(dir .. "/read", read_body)
