-- Reads an entry (appended to entry.lua); a lazily-invalidated one (a tag invalidated after it
-- was stored) is a miss and is removed. KEYS[1] the entry. ARGV[1] prefix.
local p = ARGV[1]
local entry = redis.call('GET', KEYS[1])
if not entry then return false end
local _, fields, at = parse(entry)
local keys, stored = {}, {}
for _, f in ipairs(fields) do
  if f[1] ~= 'd' then
    keys[#keys + 1] = p .. 'v:' .. f[3]
    stored[#stored + 1] = tonumber(f[2]) or 0
  end
end
if #keys > 0 then
  local current = redis.call('MGET', unpack(keys))
  for i = 1, #keys do
    if (tonumber(current[i] or '0') or 0) > stored[i] then
      redis.call('UNLINK', KEYS[1])
      return false
    end
  end
end
return string.sub(entry, at)
