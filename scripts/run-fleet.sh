#!/usr/bin/env bash
# Start API, control worker, stream worker, beat and Flower together (see Procfile).
# Defaults give a simulated market on a SQLite file; every one can be overridden by env.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var
export DATABASE_URL="${DATABASE_URL:-sqlite:///$PWD/var/tickfleet.db}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export TICKFLEET_FEED="${TICKFLEET_FEED:-mock}"
export API_HOST="${API_HOST:-127.0.0.1}"
export API_PORT="${API_PORT:-8000}"
export FLOWER_PORT="${FLOWER_PORT:-5555}"
export FLOWER_BASIC_AUTH="${FLOWER_BASIC_AUTH:-admin:tickfleet}"
export STREAM_CONCURRENCY="${STREAM_CONCURRENCY:-4}"
export PYTHONUNBUFFERED=1
.venv/bin/tickfleet init-db
cat <<MSG
tickfleet is starting (Ctrl-C stops everything)
  API      http://${API_HOST}:${API_PORT}        (docs: /docs, health: /health, metrics: /metrics)
  Flower   http://127.0.0.1:${FLOWER_PORT}        (basic auth: ${FLOWER_BASIC_AUTH%%:*})
  Redis    ${REDIS_URL}
  Database ${DATABASE_URL}
  Ticks    .venv/bin/tickfleet tail
MSG
exec .venv/bin/honcho start -f Procfile
