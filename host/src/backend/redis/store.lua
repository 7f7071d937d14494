-- store(o): stores one entry and indexes it. KEYS[1] is the entry hash; ARGV from index o:
-- prefix ("tb:{tenant}:"), key, value, ttl_ms (0 = none), now_ms, ntags, tags..., ndeps,
-- deps... Entry fields: v (value), t:<tag> (version when stored), i:<tag> (a parent's tag
-- version, inherited), d:<key> (a key this one derives from).
local function store(o)
  local p, key, value = ARGV[o], ARGV[o + 1], ARGV[o + 2]
  local ttl, now = tonumber(ARGV[o + 3]), tonumber(ARGV[o + 4])
  local ntags = tonumber(ARGV[o + 5])
  local forever = 9007199254740991
  local score = forever
  if ttl > 0 then score = now + ttl end
  local entry = KEYS[1]
  redis.call('UNLINK', entry)
  local fields = {'v', value}
  -- An index lives as long as its longest-lived member: a member without TTL makes it
  -- persist; otherwise its TTL only ever grows. `existed` tells a new key (no TTL yet) from a
  -- persisted one (both report PTTL -1).
  local function extend(k, existed)
    if score == forever then
      redis.call('PERSIST', k)
      return
    end
    local left = redis.call('PTTL', k)
    if existed == 0 or (left >= 0 and left < ttl) then redis.call('PEXPIRE', k, ttl) end
  end
  for i = 1, ntags do
    local tag = ARGV[o + 5 + i]
    table.insert(fields, 't:' .. tag)
    table.insert(fields, redis.call('GET', p .. 'v:' .. tag) or '0')
    local index = p .. 't:' .. tag
    local existed = redis.call('EXISTS', index)
    redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
    redis.call('ZADD', index, score, key)
    extend(index, existed)
    -- A version must outlive every entry stored with it.
    if redis.call('EXISTS', p .. 'v:' .. tag) == 1 then extend(p .. 'v:' .. tag, 1) end
  end
  local base = o + 6 + ntags
  for i = 1, tonumber(ARGV[base]) do
    local dep = ARGV[base + i]
    table.insert(fields, 'd:' .. dep)
    table.insert(fields, '1')
    local parent = redis.call('HGETALL', p .. 'e:' .. dep)
    for j = 1, #parent, 2 do
      local kind = string.sub(parent[j], 1, 2)
      if kind == 't:' or kind == 'i:' then
        table.insert(fields, 'i:' .. string.sub(parent[j], 3))
        table.insert(fields, parent[j + 1])
      end
    end
    local dependents = p .. 'd:' .. dep
    local existed = redis.call('EXISTS', dependents)
    redis.call('SADD', dependents, key)
    extend(dependents, existed)
    -- Tells invalidations that this tenant has dependencies to follow at all.
    local marker = p .. 'hasdeps'
    local had = redis.call('EXISTS', marker)
    redis.call('SET', marker, '1', 'KEEPTTL')
    extend(marker, had)
  end
  redis.call('HSET', entry, unpack(fields))
  if ttl > 0 then redis.call('PEXPIRE', entry, ttl) end
  return 1
end
