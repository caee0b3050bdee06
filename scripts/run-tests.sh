#!/usr/bin/env bash
# Run pytest over the given paths in parallel (pytest-xdist); "no tests collected" (exit 5)
# is not a failure of the code under test.
#
# TEST_WORKERS sets the number of xdist workers (0: one process, no xdist); by default
# twice the machine's cores. The suite mostly waits (leases, beat periods, failovers): on
# 2 cores, 4 workers kept them about 70 % busy with every timing test green, where 6
# failed a supervised restart's 20 s bound. Fleet processes fork from a warm interpreter
# (tests/support/zygote.py), which is what made that many fit. Every test owns its ports,
# redis-servers, databases and directories. Tests marked `serial` run first, one at a
# time, beside the tests that start no processes (tests/support/serial.py).
set -uo pipefail
cd "$(dirname "$0")/.."
# Every test starts Python processes (Celery workers, beat, uvicorn, the CLI): compiled
# once here, they need not compile the project again each, even where
# PYTHONDONTWRITEBYTECODE keeps them from writing what they compile.
.venv/bin/python -m compileall -q -j 0 tickfleet workers producers tests celeryconfig.py >/dev/null
.venv/bin/python -m pytest -n "${TEST_WORKERS:-$((2 * $(nproc)))}" --dist load "$@"
rc=$?
if [ "$rc" -eq 5 ]; then echo "no tests collected"; exit 0; fi
exit "$rc"
