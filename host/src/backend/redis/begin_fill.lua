-- Takes a fill lease: registers the key as leased (so invalidations move its generation) and
-- returns what the lease must still find at fill time. KEYS[1] the tenant's leases set.
-- ARGV: prefix, key, now_ms, lease_ttl_ms, tags... Returns {generation, epoch, versions...}.
local p, key = ARGV[1], ARGV[2]
local now, lease_ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local leases = KEYS[1]
redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
redis.call('ZADD', leases, 'GT', now + lease_ttl, key)
redis.call('PEXPIRE', leases, lease_ttl)
local out = {redis.call('GET', p .. 'g:' .. key) or '0', redis.call('GET', p .. 'epoch') or '0'}
for i = 5, #ARGV do
  table.insert(out, redis.call('GET', p .. 'v:' .. ARGV[i]) or '0')
end
return out
