#!/usr/bin/env bash
# Make sure a Redis server is reachable, and that redis-server exists for the test suite,
# which starts its own servers on free ports.
#  - REDIS_URL set: it must answer PING; nothing is started.
#  - REDIS_URL unset: use 127.0.0.1:6379 if it answers, else start a local redis-server
#    (installed from the OS packages when missing) keeping its files under var/redis.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

ping() {
  "$PY" - "$1" <<'PYEOF'
import sys, redis
try:
    redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1, socket_timeout=1).ping()
except Exception as exc:  # any failure means "not reachable"
    print(f"not reachable: {exc}", file=sys.stderr)
    sys.exit(1)
PYEOF
}

install_redis() {
  command -v redis-server >/dev/null 2>&1 && return 0
  echo "redis-server not found: installing it from the OS packages"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
}

install_redis

if [ -n "${REDIS_URL:-}" ]; then
  if ping "$REDIS_URL"; then echo "redis: using REDIS_URL"; exit 0; fi
  echo "REDIS_URL is set but does not answer PING" >&2
  exit 1
fi

if ping redis://127.0.0.1:6379/0 2>/dev/null; then
  echo "redis: 127.0.0.1:6379 answers"
  exit 0
fi

mkdir -p var/redis
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
  --dir "$PWD/var/redis" --pidfile "$PWD/var/redis/redis.pid" --logfile "$PWD/var/redis/redis.log"
for _ in $(seq 1 50); do
  ping redis://127.0.0.1:6379/0 2>/dev/null && { echo "redis: started a local redis-server on 127.0.0.1:6379"; exit 0; }
  sleep 0.1
done
echo "could not start redis-server (see var/redis/redis.log)" >&2
exit 1
