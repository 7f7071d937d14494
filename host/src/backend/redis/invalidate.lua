-- Applies a run of invalidations of one tenant atomically, each as one step. KEYS[1] is the
-- tenant's epoch key (it routes the call to the tenant's Cluster slot). ARGV: prefix, now_ms,
-- lease_ttl_ms, max_keys, then (kind, value) pairs, kind one of "tag", "key", "version",
-- "epoch". Returns one flat array: per pair, removed, then how many keys are listed, then
-- those keys (a plain key lists none: the caller knows it). Flat, because a table per pair
-- cost Redis about 1 µs per invalidation.
-- A tag's members are read and unlinked, and its index removed, in one step, so a key added
-- to the tag meanwhile is either removed too or added after (and kept, correctly). Tag
-- versions move on every tag invalidation; a key's generation moves only when a fill lease is
-- outstanding for it (begin_fill.lua registers leases atomically), which voids that lease.
local p = ARGV[1]
local now, lease_ttl, max_keys = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local leases = p .. 'leases'
local any_lease = redis.call('EXISTS', leases) == 1
-- Most tenants register no dependencies: then no key needs its dependents looked up.
local any_deps = redis.call('EXISTS', p .. 'hasdeps') == 1

-- A version key lives as long as the entries stored with it (store.lua extends it) and at least
-- as long as a lease; never forever unless an entry without TTL holds it.
local function bump_version(tag)
  local vk = p .. 'v:' .. tag
  local existed = redis.call('EXISTS', vk)
  redis.call('INCR', vk)
  local left = redis.call('PTTL', vk)
  if existed == 0 or (left >= 0 and left < lease_ttl) then redis.call('PEXPIRE', vk, lease_ttl) end
end

local out, n = {}, 0
local function emit(removed)
  out[n + 1] = removed
  out[n + 2] = 0
  n = n + 2
end

local function apply(kind, value)
  if kind == 'epoch' then
    -- A pattern or tenant invalidation: void every lease of the tenant (conservative).
    redis.call('INCR', p .. 'epoch')
    return emit(0)
  elseif kind == 'version' then
    bump_version(value)
    return emit(redis.call('ZCOUNT', p .. 't:' .. value, now, '+inf'))
  end
  if kind == 'key' and not any_deps then
    -- The common case, without the traversal's bookkeeping.
    if any_lease and redis.call('ZSCORE', leases, value) then
      local g = p .. 'g:' .. value
      redis.call('INCR', g)
      redis.call('PEXPIRE', g, lease_ttl)
    end
    return emit(redis.call('UNLINK', p .. 'e:' .. value))
  end
  local queue
  if kind == 'tag' then
    bump_version(value)
    local index = p .. 't:' .. value
    queue = redis.call('ZRANGEBYSCORE', index, now, '+inf')
    redis.call('UNLINK', index)
  else
    queue = {value}
  end
  local removed, listed, seen = 0, {}, {}
  local i = 1
  while i <= #queue and i <= max_keys do
    local k = queue[i]
    if not seen[k] then
      seen[k] = true
      if any_lease and redis.call('ZSCORE', leases, k) then
        local g = p .. 'g:' .. k
        redis.call('INCR', g)
        redis.call('PEXPIRE', g, lease_ttl)
      end
      if redis.call('UNLINK', p .. 'e:' .. k) == 1 then
        removed = removed + 1
        if #listed < 64 then table.insert(listed, k) end
      end
      if any_deps then
        local dependents = p .. 'd:' .. k
        local derived = redis.call('SMEMBERS', dependents)
        if #derived > 0 then
          for _, d in ipairs(derived) do table.insert(queue, d) end
          redis.call('UNLINK', dependents)
        end
      end
    end
    i = i + 1
  end
  out[n + 1] = removed
  out[n + 2] = #listed
  n = n + 2
  for _, k in ipairs(listed) do
    n = n + 1
    out[n] = k
  end
end

for j = 5, #ARGV, 2 do
  apply(ARGV[j], ARGV[j + 1])
end
return out
