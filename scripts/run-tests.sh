#!/usr/bin/env bash
# Run pytest over the given paths in parallel (pytest-xdist); "no tests collected" (exit 5)
# is not a failure of the code under test.
#
# TEST_WORKERS sets the number of xdist workers (0: one process, no xdist); by default as
# many as the machine has cores: each test's fleet runs several processes, and more
# workers than cores loaded a slow 2-core machine past the timings tests bound. Every test owns its ports, redis-servers,
# databases and directories. Tests marked `serial` run first, alone (tests/support/serial.py).
set -uo pipefail
cd "$(dirname "$0")/.."
# Every test starts Python processes (Celery workers, beat, uvicorn, the CLI): compiled
# once here, they need not compile the project again each, even where
# PYTHONDONTWRITEBYTECODE keeps them from writing what they compile.
.venv/bin/python -m compileall -q -j 0 tickfleet workers producers tests celeryconfig.py >/dev/null
.venv/bin/python -m pytest -n "${TEST_WORKERS:-$(nproc)}" --dist loadgroup "$@"
rc=$?
if [ "$rc" -eq 5 ]; then echo "no tests collected"; exit 0; fi
exit "$rc"
