# Environment of the fleet `make run` starts, sourced by run-fleet.sh and fleetctl.sh (and
# read by supervisord.conf through %(ENV_...)s). Defaults give a simulated market on a
# SQLite file with the API and Flower on loopback; every one can be overridden by env.
# FLOWER_BASIC_AUTH has no default: a password everyone knows protects nothing.
TICKFLEET_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export TICKFLEET_ROOT
export PATH="$TICKFLEET_ROOT/.venv/bin:$PATH"
export TICKFLEET_RUN_DIR="${TICKFLEET_RUN_DIR:-$TICKFLEET_ROOT/var}"
mkdir -p "$TICKFLEET_RUN_DIR/log"
TICKFLEET_RUN_DIR="$(cd "$TICKFLEET_RUN_DIR" && pwd)"  # absolute: supervisord runs in the repo
export DATABASE_URL="${DATABASE_URL:-sqlite:///$TICKFLEET_ROOT/var/tickfleet.db}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export TICKFLEET_FEED="${TICKFLEET_FEED:-mock}"
export API_HOST="${API_HOST:-127.0.0.1}"
export API_PORT="${API_PORT:-8000}"
export FLOWER_ADDRESS="${FLOWER_ADDRESS:-127.0.0.1}"
export FLOWER_PORT="${FLOWER_PORT:-5555}"
export STREAM_CONCURRENCY="${STREAM_CONCURRENCY:-4}"
export PYTHONUNBUFFERED=1
