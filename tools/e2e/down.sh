#!/usr/bin/env bash
# Stops the e2e control plane that tools/e2e/up.sh started (make e2e-down): exactly the
# processes whose pids it recorded in .e2e/run/pids/, newest first, then removes the state
# (.e2e/). A pid is only signalled while it still runs the binary that up.sh started.
#   --keep-logs   keep .e2e/run/logs (used by up.sh when a start fails)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
STATE="$ROOT/.e2e"
RUN="$STATE/run"
KEEP_LOGS=false
[ "${1:-}" = --keep-logs ] && KEEP_LOGS=true

log() { echo "down.sh: $*" >&2; }

# Reverse start order: the controllers before the API server, the API server before etcd.
ORDER=(rollouts-controller prometheus kwok kube-scheduler kube-controller-manager kube-apiserver etcd)

ours() {   # ours PID NAME: the process is alive and is the binary named NAME
  local exe
  exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
  [ "$(basename "${exe% (deleted)}")" = "$2" ]
}

stopped=0
for name in "${ORDER[@]}"; do
  f="$RUN/pids/$name.pid"
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if ! ours "$pid" "$name"; then
    log "$name (pid $pid) is not running"; rm -f "$f"; continue
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do ours "$pid" "$name" || break; sleep 0.25; done
  if ours "$pid" "$name"; then
    log "$name (pid $pid) did not stop on TERM: KILL"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do ours "$pid" "$name" || break; sleep 0.25; done
  fi
  log "stopped $name (pid $pid)"
  stopped=$((stopped + 1))
  rm -f "$f"
done

if $KEEP_LOGS && [ -d "$RUN/logs" ]; then
  find "$STATE" -mindepth 1 -maxdepth 1 ! -name run -exec rm -rf {} +
  find "$RUN" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +
else
  rm -rf "$STATE"
fi
log "$stopped processes stopped; state removed"
