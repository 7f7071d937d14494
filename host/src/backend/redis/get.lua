-- Reads an entry; a lazily-invalidated one (a tag version moved since it was stored) is a
-- miss and is removed. KEYS[1] entry hash. ARGV[1] prefix.
local p = ARGV[1]
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return false end
local value = false
for i = 1, #fields, 2 do
  local f = fields[i]
  local kind = string.sub(f, 1, 2)
  if f == 'v' then
    value = fields[i + 1]
  elseif kind == 't:' or kind == 'i:' then
    local current = tonumber(redis.call('GET', p .. 'v:' .. string.sub(f, 3)) or '0')
    if current > tonumber(fields[i + 1]) then
      redis.call('UNLINK', KEYS[1])
      return false
    end
  end
end
return value
