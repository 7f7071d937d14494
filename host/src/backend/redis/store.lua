-- store_many(o): stores entries of one tenant and indexes them, as one atomic step (appended
-- to entry.lua). KEYS[1] is the first entry's key (it routes the call to the tenant's Cluster
-- slot). ARGV from index o: prefix ("tb:{tenant}:"), now_ms, n, then n entries, each: key,
-- encoded (its fields and `|` and value, as entry.lua describes, without the time), ttl_ms
-- (0 = none), score (expiry in ms since the epoch; 2^53-1 = none), ntags, index keys...,
-- ndeps, deps...; then nidx and, per distinct index of the call, its key and the longest
-- TTL of its members in this call (0 = none).
-- Work per entry: one SET and one ZADD per tag; per distinct index one PEXPIRE ... GT. The host
-- encodes the entries; the store time comes from Redis's clock, so writes read no version.
-- Expired index members are pruned by the sweeper and by the tag's invalidation, not here.
local forever = 9007199254740991

-- An index lives as long as its longest-lived member: its expiry follows its top score, or
-- none when that member has no TTL.
local function extend_index(k, ttl, now)
  if ttl == 0 then
    redis.call('PERSIST', k)
    return
  end
  if redis.call('PEXPIRE', k, ttl, 'GT') == 1 then return end
  -- Not moved: it lives longer already, or has no TTL (new in this call, or holding a member
  -- without TTL): the top score tells.
  if redis.call('PEXPIRETIME', k) ~= -1 then return end
  local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
  local score = tonumber(top[2] or '0')
  if score < forever then redis.call('PEXPIREAT', k, math.max(score, now + ttl)) end
end

-- Keys without scores (a dependents set, the hasdeps marker): `existed` tells a new key (no
-- TTL yet) from a persisted one (both report no expiry).
local function extend_plain(k, ttl, existed)
  if ttl == 0 then
    redis.call('PERSIST', k)
    return
  end
  local left = redis.call('PTTL', k)
  if existed == 0 or (left >= 0 and left < ttl) then redis.call('PEXPIRE', k, ttl) end
end

local function store_many(o)
  local p, now, n = ARGV[o], tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2])
  local time = now_us()
  local stamp = time .. ';'
  local a = o + 3
  for _ = 1, n do
    local key, encoded, ttl, score = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
    local ntags = tonumber(ARGV[a + 4])
    for i = 1, ntags do
      redis.call('ZADD', ARGV[a + 4 + i], score, key)
    end
    local d = a + 5 + ntags
    local ndeps = tonumber(ARGV[d])
    if ndeps > 0 then
      local life = tonumber(ttl)
      local inherited = {}
      for i = 1, ndeps do
        local dep = ARGV[d + i]
        local parent = redis.call('GET', p .. 'e:' .. dep)
        if parent then
          local _, fields = parse(parent)
          for _, f in ipairs(fields) do
            if f[1] ~= 'd' then
              inherited[#inherited + 1] = 'i' .. f[2] .. ':' .. #f[3] .. ':' .. f[3]
            end
          end
        end
        local dependents = p .. 'd:' .. dep
        local existed = redis.call('EXISTS', dependents)
        redis.call('SADD', dependents, key)
        extend_plain(dependents, life, existed)
        -- Tells invalidations that this tenant has dependencies to follow at all.
        local marker = p .. 'hasdeps'
        local had = redis.call('EXISTS', marker)
        redis.call('SET', marker, '1', 'KEEPTTL')
        extend_plain(marker, life, had)
      end
      encoded = table.concat(inherited) .. encoded
    end
    if ttl ~= '0' then
      redis.call('SET', p .. 'e:' .. key, stamp .. encoded, 'PX', ttl)
    else
      redis.call('SET', p .. 'e:' .. key, stamp .. encoded)
    end
    a = d + ndeps + 1
  end
  for i = 1, tonumber(ARGV[a]) do
    extend_index(ARGV[a + 2 * i - 1], tonumber(ARGV[a + 2 * i]), now)
  end
  return n
end
