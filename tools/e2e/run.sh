#!/usr/bin/env bash
# The e2e tier end to end (make e2e): build what is missing (engine and cluster, cached outside
# the work tree), start the cluster, run the e2e suite (pytest -m e2e tests/e2e) against it with
# the real engine, and stop the cluster again, also when a test or the start-up fails.
#
# Environment: PYTHON (the interpreter with mlplane installed; default .venv/bin/python),
# E2E_PYTEST_ARGS (extra pytest arguments, split as a shell would: -k 'edge or drift').
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
cd "$ROOT"

T0=$SECONDS
bash "$HERE/engine.sh"
T_ENGINE=$SECONDS
# up.sh builds the cluster's components when they are missing, then starts them.
trap 'bash "$HERE/down.sh" || true' EXIT
# Exit 3: another run's cluster is up in this tree; it is not ours to stop.
bash "$HERE/up.sh" || { up=$?; [ "$up" -ne 3 ] || trap - EXIT; exit "$up"; }
T_UP=$SECONDS

rc=0
# Split as a shell would (quotes kept together), without evaluating anything.
mapfile -t extra < <("$PYTHON" -c 'import os, shlex
for a in shlex.split(os.environ.get("E2E_PYTEST_ARGS", "")): print(a)')
"$PYTHON" -m pytest -m e2e tests/e2e -p no:cacheprovider -q "${extra[@]}" || rc=$?
echo "run.sh: engine ready in $((T_ENGINE - T0))s, cluster up in $((T_UP - T_ENGINE))s," \
     "e2e suite $((SECONDS - T_UP))s (exit $rc)" >&2
exit $rc
