-- Applies invalidations of one tenant, each as one step, touching at most `budget` entries per
-- call so that no call blocks Redis for long. KEYS[1] is the tenant's epoch key (it routes the
-- call to the tenant's Cluster slot). ARGV: prefix, now_ms, lease_ttl_ms, max_keys, budget,
-- listed (keys listed per operation, each checked with EXISTS first), then (kind, value)
-- pairs, kind one of "tag", "key", "version", "epoch", "drain".
--
-- Reply, flat: how many pairs this call applied (the caller sends the rest again), then per
-- applied pair: removed, drain (0, or the version whose drain key still holds members), how
-- many keys are listed, those keys (a plain key lists none: the caller knows it).
--
-- A tag whose index fits in the budget is read, unlinked and removed in one step, so a key
-- added to the tag meanwhile is either removed too or added after (and kept). A bigger one
-- moves the tag's version first (from then on every member reads as a miss, as with `lazy`),
-- renames its index to the drain key P:{tenant}:x:<version>:<tag> (O(1), TTL kept), and the
-- caller drains that key `budget` members per call ("drain", "<version>:<tag>").
-- Tag versions move on every tag invalidation; a key's generation moves only when a fill lease
-- is outstanding for it (begin_fill.lua registers leases atomically), which voids that lease.
local p = ARGV[1]
local now, lease_ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local max_keys, budget = tonumber(ARGV[4]), tonumber(ARGV[5])
local leases = p .. 'leases'
local any_lease = redis.call('EXISTS', leases) == 1
-- Most tenants register no dependencies: then no key needs its dependents looked up.
local any_deps = redis.call('EXISTS', p .. 'hasdeps') == 1
-- Keys listed per operation (explain output; the count is always exact) and keys per command.
local LIST, SLICE = tonumber(ARGV[6]), 512

-- A tag's version is the time of its last invalidation (µs, Redis's clock; strictly
-- increasing): entries stored before it read as misses. It lives as long as any entry stored
-- before it may (the index's expiry, none if the index persists; never shorter than it was)
-- and at least a lease TTL.
local function bump_version(tag)
  local vk = p .. 'v:' .. tag
  local t = redis.call('TIME')
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local old = tonumber(redis.call('GET', vk) or '0') or 0
  if us <= old then us = old + 1 end
  local v = string.format('%d', us)
  local index_at = redis.call('PEXPIRETIME', p .. 't:' .. tag)
  local own_at = redis.call('PEXPIRETIME', vk)
  if index_at == -1 or own_at == -1 then
    redis.call('SET', vk, v)
  else
    redis.call('SET', vk, v, 'PXAT', math.max(math.floor(us / 1000) + lease_ttl, index_at, own_at))
  end
  return v
end

local function void_lease(k)
  local g = p .. 'g:' .. k
  redis.call('INCR', g)
  redis.call('PEXPIRE', g, lease_ttl)
end

-- Unlinks the entries of members[1..#members] with one UNLINK per SLICE keys; returns how many
-- existed. The first ones (up to LIST in all) are listed, exactly: one EXISTS tells whether
-- they all exist, and only when some do not is each looked at.
local function unlink(members, listed)
  local removed = 0
  for from = 1, #members, SLICE do
    local to = math.min(#members, from + SLICE - 1)
    local names = {}
    for i = from, to do names[#names + 1] = p .. 'e:' .. members[i] end
    if any_lease then
      local scores = redis.call('ZMSCORE', leases, unpack(members, from, to))
      for i = 1, #scores do
        if scores[i] then void_lease(members[from + i - 1]) end
      end
    end
    local room = math.min(LIST - #listed, #names)
    if room > 0 then
      if redis.call('EXISTS', unpack(names, 1, room)) == room then
        for i = 1, room do listed[#listed + 1] = members[from + i - 1] end
      else
        for i = 1, room do
          if redis.call('EXISTS', names[i]) == 1 then listed[#listed + 1] = members[from + i - 1] end
        end
      end
    end
    removed = removed + redis.call('UNLINK', unpack(names))
  end
  return removed
end

-- With dependencies: each key and, transitively, the keys derived from it (up to max_keys).
local function unlink_with_dependents(members, listed)
  local removed, seen, queue = 0, {}, {}
  for i = 1, #members do queue[i] = members[i] end
  local i = 1
  while i <= #queue and i <= max_keys do
    local k = queue[i]
    if not seen[k] then
      seen[k] = true
      if any_lease and redis.call('ZSCORE', leases, k) then void_lease(k) end
      if redis.call('UNLINK', p .. 'e:' .. k) == 1 then
        removed = removed + 1
        if #listed < LIST then listed[#listed + 1] = k end
      end
      local dependents = p .. 'd:' .. k
      local derived = redis.call('SMEMBERS', dependents)
      if #derived > 0 then
        for _, d in ipairs(derived) do queue[#queue + 1] = d end
        redis.call('UNLINK', dependents)
      end
    end
    i = i + 1
  end
  return removed, i - 1
end

local function remove(members, listed)
  if any_deps then return unlink_with_dependents(members, listed) end
  return unlink(members, listed), #members
end

-- Takes up to `allowance` members off the drain key; returns removed, touched, whether more.
local function drain(xkey, allowance, listed)
  local members = redis.call('ZRANGE', xkey, 0, allowance - 1)
  if #members == 0 then return 0, 1, false end
  redis.call('ZREMRANGEBYRANK', xkey, 0, #members - 1)
  local removed, touched = remove(members, listed)
  return removed, touched, redis.call('EXISTS', xkey) == 1
end

local out, n = {0}, 1
local left = budget

-- Applies one pair with `left` entries of budget; returns false to stop before it (it would
-- fit a call of its own but not what is left of this one).
local function apply(kind, value, first)
  local removed, more, listed, touched = 0, 0, {}, 1
  if kind == 'epoch' then
    -- A pattern or tenant invalidation: void every lease of the tenant (conservative).
    redis.call('INCR', p .. 'epoch')
  elseif kind == 'version' then
    bump_version(value)
    removed = redis.call('ZCOUNT', p .. 't:' .. value, now, '+inf')
  elseif kind == 'key' and not any_deps then
    -- The common case, without the traversal's bookkeeping.
    if any_lease and redis.call('ZSCORE', leases, value) then void_lease(value) end
    removed = redis.call('UNLINK', p .. 'e:' .. value)
  elseif kind == 'key' then
    removed, touched = unlink_with_dependents({value}, listed)
  elseif kind == 'drain' then
    local version = string.match(value, '^(%d+):')
    local r, t, m = drain(p .. 'x:' .. value, math.max(left, 1), listed)
    removed, touched = r, t
    if m then more = tonumber(version) end
  else
    local index = p .. 't:' .. value
    local size = redis.call('ZCARD', index)
    if size > left and size <= budget and not first then return false end
    local version = bump_version(value)
    if size <= left then
      local members = redis.call('ZRANGEBYSCORE', index, now, '+inf')
      redis.call('UNLINK', index)
      removed, touched = remove(members, listed)
    else
      local xkey = p .. 'x:' .. version .. ':' .. value
      redis.call('RENAME', index, xkey)
      local r, t, m = drain(xkey, math.max(left, 1), listed)
      removed, touched = r, t
      if m then more = tonumber(version) end
    end
  end
  left = left - touched
  out[n + 1], out[n + 2], out[n + 3] = removed, more, #listed
  n = n + 3
  for _, k in ipairs(listed) do
    n = n + 1
    out[n] = k
  end
  return true
end

for j = 7, #ARGV, 2 do
  if j > 7 and left <= 0 then break end
  if not apply(ARGV[j], ARGV[j + 1], j == 7) then break end
  out[1] = out[1] + 1
end
return out
