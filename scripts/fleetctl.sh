#!/usr/bin/env bash
# supervisorctl for the fleet `make run` started (same TICKFLEET_RUN_DIR):
#   scripts/fleetctl.sh status | restart stream | stop beat | tail -f api | shutdown
set -euo pipefail
# shellcheck source=scripts/fleet-env.sh
source "$(dirname "$0")/fleet-env.sh"
exec supervisorctl -c "$TICKFLEET_ROOT/supervisord.conf" "$@"
