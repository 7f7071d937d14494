<?php
// The peer side of `cargo bench --bench redis`: Symfony Cache's RedisTagAwareAdapter doing the
// same work tagbust does in that bench, on the same Redis server. Prints one JSON line.
//
//   php tests/peers/symfony.php HOST PORT DB ENTRIES TAGS PER_CALL
//
// Writes ENTRIES entries (100-byte values, entry i tagged t{i % TAGS}, one hour TTL) in batches
// of 1,000 (getItems + saveDeferred + commit: Symfony's pipelined batch write), then
// invalidates every tag, PER_CALL tags per invalidateTags() call. Uses Debian's packages
// php-cli, php-redis and php-symfony-cache (scripts/bench-symfony.sh installs them).

require_once '/usr/share/php/Symfony/Component/Cache/autoload.php';

use Symfony\Component\Cache\Adapter\RedisTagAwareAdapter;

[$host, $port, $db, $entries, $tags, $perCall] = array_slice($argv, 1) + [null, null, 0, 100000, 1000, 100];
if ($port === null) {
    fwrite(STDERR, "usage: symfony.php HOST PORT [DB ENTRIES TAGS PER_CALL]\n");
    exit(2);
}
$entries = (int) $entries;
$tags = (int) $tags;
$perCall = (int) $perCall;

$redis = new Redis();
$redis->connect($host, (int) $port);
$redis->select((int) $db);
$cache = new RedisTagAwareAdapter($redis, 'sfbench');
$value = str_repeat('x', 100);

// Redis's own CPU time (user + system), in µs.
function redisCpu(Redis $redis): float
{
    $cpu = $redis->info('cpu');
    return ($cpu['used_cpu_user'] + $cpu['used_cpu_sys']) * 1e6;
}

$before = $redis->dbSize();
$cpu = redisCpu($redis);
$start = hrtime(true);
for ($from = 0; $from < $entries; $from += 1000) {
    $keys = [];
    for ($i = $from; $i < min($from + 1000, $entries); $i++) {
        $keys[] = "k$i";
    }
    foreach ($cache->getItems($keys) as $key => $item) {
        $i = (int) substr($key, 1);
        $item->set($value)->tag('t'.($i % $tags))->expiresAfter(3600);
        $cache->saveDeferred($item);
    }
    if (!$cache->commit()) {
        fwrite(STDERR, "symfony: commit failed\n");
        exit(1);
    }
}
$writeSeconds = (hrtime(true) - $start) / 1e9;
$writeCpu = redisCpu($redis) - $cpu;
$written = $redis->dbSize() - $before;

$all = [];
for ($t = 0; $t < $tags; $t++) {
    $all[] = "t$t";
}
$cpu = redisCpu($redis);
$start = hrtime(true);
foreach (array_chunk($all, $perCall) as $chunk) {
    if (!$cache->invalidateTags($chunk)) {
        fwrite(STDERR, "symfony: invalidateTags failed\n");
        exit(1);
    }
}
$invalidateSeconds = (hrtime(true) - $start) / 1e9;
$invalidateCpu = redisCpu($redis) - $cpu;
$left = $redis->dbSize() - $before;

echo json_encode([
    'entries' => $entries,
    'write_seconds' => $writeSeconds,
    'invalidate_seconds' => $invalidateSeconds,
    'write_redis_cpu_us' => $writeCpu,
    'invalidate_redis_cpu_us' => $invalidateCpu,
    // Keys this run added (entries and tag sets), and what the invalidation left of them.
    'keys_written' => $written,
    'keys_left' => $left,
]), "\n";
