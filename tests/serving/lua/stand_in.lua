-- What both runners (run_filter.lua, run_response.lua) share: files in and out, and a stand-in
-- of Envoy's header map wrapper (envoyproxy/envoy@main source/extensions/filters/common/lua/wrappers.h): get, remove (every value),
-- replace (the first value, or add), names kept lower case as Envoy keeps them (HTTP/2
-- requires it; HTTP/1 is normalised).
local M = {}

function M.read(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

function M.write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

-- The headers of `text` ("name<TAB>value" lines); `changed` is called on each change.
function M.headers(text, changed)
  local names, values = {}, {}
  for line in string.gmatch(text, "[^\n]+") do
    local name, value = string.match(line, "^([^\t]+)\t(.*)$")
    names[#names + 1], values[#names + 1] = string.lower(name), value
  end
  local function find(name)
    for k = 1, #names do
      if names[k] == name then return k end
    end
  end
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
        changed()
      end
    end,
    replace = function(_, name, value)
      local k = find(name)
      if k then values[k] = value else names[#names + 1], values[#names + 1] = name, value end
      changed()
    end,
  }
  -- The headers as they leave the filter, in the same "name<TAB>value" lines.
  local function dump()
    local out = {}
    for k = 1, #names do out[#out + 1] = names[k] .. "\t" .. values[k] .. "\n" end
    return table.concat(out)
  end
  return headers, dump
end

return M
