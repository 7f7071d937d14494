-- The entry encoding, shared by every script that reads or writes entries. An entry is one
-- string: the time it was stored (µs, Redis's clock), `;`, zero or more fields, `|`, the
-- value's bytes. A field is a kind letter, a time in decimal (only for `i`), `:`, the name's
-- length in bytes in decimal, `:`, the name. Kinds: `t` a tag of the entry; `i` a tag of an
-- entry it derives from, with the time that entry was stored; `d` a key it derives from.
-- Example: `1733160000123456;t:4:feedi1733159000000000:8:author:7|<html>`.
-- The entry is stale when a tag's `P:{tenant}:v:<tag>` (the time of the tag's last
-- invalidation) is later than the entry's time (for `t`) or the field's time (for `i`).

-- Now on Redis's clock, in µs, as a decimal string (exact: no float formatting).
local function now_us()
  local t = redis.call('TIME')
  return t[1] .. string.format('%06d', tonumber(t[2]))
end

-- The entry's time, its fields as {kind, time, name} triples, and where its value starts.
local function parse(entry)
  local semi = string.find(entry, ';', 1, true) or 0
  local time = string.sub(entry, 1, semi - 1)
  local fields, at = {}, semi + 1
  while at <= #entry and string.byte(entry, at) ~= 124 do -- '|'
    local kind = string.sub(entry, at, at)
    local c1 = string.find(entry, ':', at + 1, true)
    local c2 = c1 and string.find(entry, ':', c1 + 1, true)
    if not c2 then return time, fields, #entry + 1 end
    local len = tonumber(string.sub(entry, c1 + 1, c2 - 1)) or 0
    local t = string.sub(entry, at + 1, c1 - 1)
    if t == '' then t = time end
    fields[#fields + 1] = {kind, t, string.sub(entry, c2 + 1, c2 + len)}
    at = c2 + len + 1
  end
  return time, fields, at + 1
end
