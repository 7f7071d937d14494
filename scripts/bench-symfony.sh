#!/usr/bin/env bash
# tagbust against Symfony Cache's RedisTagAwareAdapter, side by side in one run: installs
# Debian's php-cli, php-redis and php-symfony-cache when missing, then runs the Redis benchmark
# (bench/benches/redis.rs), which starts its own redis-server on port 6431 (or
# TAGBUST_BENCH_REDIS_PORT) and alternates, sample by sample, Symfony's run
# (tests/peers/symfony.php) with tagbust's same work and multi-key UNLINK of the same keys.
# Prints medians, ratios, the Redis CPU per entry and the SLOWLOG count. Not part of CI (it
# measures, it does not check); TAGBUST_BENCH_QUICK=1 for one sample.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! php -r "require '/usr/share/php/Symfony/Component/Cache/autoload.php'; exit(class_exists('Redis') ? 0 : 1);" 2>/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    php-cli php-redis php-symfony-cache >/dev/null
fi
exec cargo bench --locked -p tagbust-bench --bench redis
