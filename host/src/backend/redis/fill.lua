-- Guarded fill (appended to entry.lua and store.lua): stores only if no invalidation touched
-- the entry since the lease was taken: the key's generation, each tag's version and the
-- tenant's epoch must be what the lease saw, and the lease must be younger than its TTL.
-- Check and store are one atomic step. ARGV: issued_ms, lease_ttl_ms, now_ms, gen, epoch,
-- ntags, (tag, version)..., then store_many()'s arguments for the one entry.
local issued, lease_ttl, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ntags = tonumber(ARGV[6])
local o = 7 + 2 * ntags
local p, key = ARGV[o], ARGV[o + 3]
if now - issued > lease_ttl then return 0 end
if (redis.call('GET', p .. 'g:' .. key) or '0') ~= ARGV[4] then return 0 end
if (redis.call('GET', p .. 'epoch') or '0') ~= ARGV[5] then return 0 end
for i = 0, ntags - 1 do
  if (redis.call('GET', p .. 'v:' .. ARGV[7 + 2 * i]) or '0') ~= ARGV[8 + 2 * i] then
    return 0
  end
end
return store_many(o)
