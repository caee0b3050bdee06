#!/usr/bin/env bash
# `make run`: the whole fleet under supervisord (supervisord.conf), one program per process
# kind. A program that dies is restarted and the restart logged; the others keep running.
# Environment defaults: scripts/fleet-env.sh. Ctrl-C stops everything.
set -euo pipefail
# shellcheck source=scripts/fleet-env.sh
source "$(dirname "$0")/fleet-env.sh"
cd "$TICKFLEET_ROOT"

# Refuse, before anything starts, an environment that opens the API or Flower beyond
# loopback without a real secret (each refuses again on its own at start-up).
python -m tickfleet.config.exposure || exit 2
tickfleet init-db

flower_auth="none: loopback only"
[ -n "${FLOWER_BASIC_AUTH:-}" ] && flower_auth="basic auth, user ${FLOWER_BASIC_AUTH%%:*}"
cat <<MSG
tickfleet is starting under supervisord (Ctrl-C stops everything; a program that dies is restarted)
  API      http://${API_HOST}:${API_PORT}   (docs: /docs, health: /health, metrics: /metrics)
  Flower   http://${FLOWER_ADDRESS}:${FLOWER_PORT}   (${flower_auth})
  Redis    ${REDIS_URL}
  Database ${DATABASE_URL}
  Logs     ${TICKFLEET_RUN_DIR}/log/<program>.log   (make logs)
  Control  scripts/fleetctl.sh status | restart <program> | tail -f <program>
  Ticks    tickfleet tail
MSG
if [ -z "${TICKFLEET_API_KEY:-}" ]; then
  echo "The API has no key (TICKFLEET_API_KEY unset): it is open to anyone on this machine, on loopback only."
fi
exec supervisord -c supervisord.conf
