-- Applies one invalidation atomically. ARGV: prefix, kind ("tag" | "key" | "version" | "epoch"), value,
-- now_ms, lease_ttl_ms, max_keys. Returns {removed, listed keys...}.
-- A tag's members are read and unlinked, and the index removed, in this one step, so a key
-- added to the tag meanwhile is either removed too or added after (and kept, correctly).
-- Every invalidated key's generation and every invalidated tag's version move, which voids
-- fill leases taken before (a generation only needs to outlive the longest lease).
local p, kind, value = ARGV[1], ARGV[2], ARGV[3]
local now, lease_ttl, max_keys = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local removed, listed, seen = 0, {}, {}
local queue = {}
-- A version key lives as long as the entries stored with it (store.lua extends it) and at least
-- as long as a lease; never forever unless an entry without TTL holds it.
local function bump_version(tag)
  local vk = p .. 'v:' .. tag
  local existed = redis.call('EXISTS', vk)
  redis.call('INCR', vk)
  local left = redis.call('PTTL', vk)
  if existed == 0 or (left >= 0 and left < lease_ttl) then redis.call('PEXPIRE', vk, lease_ttl) end
end
local function bump(k)
  local g = p .. 'g:' .. k
  redis.call('INCR', g)
  redis.call('PEXPIRE', g, lease_ttl)
end
if kind == 'epoch' then
  -- A pattern or tenant invalidation: void every lease of the tenant (conservative).
  redis.call('INCR', p .. 'epoch')
  return {0}
elseif kind == 'version' then
  bump_version(value)
  local n = redis.call('ZCOUNT', p .. 't:' .. value, now, '+inf')
  return {n}
elseif kind == 'tag' then
  bump_version(value)
  local index = p .. 't:' .. value
  queue = redis.call('ZRANGEBYSCORE', index, now, '+inf')
  redis.call('UNLINK', index)
else
  queue = {value}
end
local i = 1
while i <= #queue and i <= max_keys do
  local k = queue[i]
  if not seen[k] then
    seen[k] = true
    bump(k)
    if redis.call('UNLINK', p .. 'e:' .. k) == 1 then
      removed = removed + 1
      if #listed < 64 then table.insert(listed, k) end
    end
    local dependents = p .. 'd:' .. k
    for _, d in ipairs(redis.call('SMEMBERS', dependents)) do table.insert(queue, d) end
    redis.call('UNLINK', dependents)
  end
  i = i + 1
end
local out = {removed}
for _, k in ipairs(listed) do table.insert(out, k) end
return out
