#!/usr/bin/env bash
# Run the whole local Airflow (api-server + scheduler + dag-processor + triggerer) in the foreground with
# `airflow standalone`, in the environment of scripts/airflow_env.sh. `make airflow` runs this after `make setup`.
#
# Ctrl-C (or SIGTERM) stops every component. `airflow standalone` alone does not manage that in Airflow 3.3.2: on
# Ctrl-C the scheduler's LocalExecutor workers ignore SIGINT and SIGTERM, so the scheduler waits for them forever
# (measured; see docs/operations.md). Hence standalone runs in its own process group here; on a signal the group
# gets SIGINT, a grace period, then SIGKILL, so nothing is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/airflow_env.sh
source scripts/airflow_env.sh

port=$AIRFLOW__API__PORT
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "airflow.sh: port $port is already in use (another Airflow?); stop it or set AIRFLOW__API__PORT" >&2
  exit 1
fi
user=${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS%%:*}
cat <<BANNER
================================================================================
 Airflow UI:  http://localhost:$port     login: $user / $AIRFLOW_ADMIN_PASSWORD
 DAGs from:   $AIRFLOW__CORE__DAGS_FOLDER
 Home:        $AIRFLOW_HOME   (SQLite metadata, logs; 'make clean' removes it)
 Ready when the log says "Airflow is ready" (about 30 s). Ctrl-C stops everything.
================================================================================
BANNER

grace=${AIRFLOW_STOP_GRACE_SECONDS:-15}
set -m                      # the background job below gets its own process group (pgid = its pid)
airflow standalone &
pid=$!
set +m

stopped=0
stop() {
  [ "$stopped" = 1 ] && return
  stopped=1
  trap - INT TERM HUP
  if kill -0 -- "-$pid" 2>/dev/null; then
    echo "airflow.sh: stopping Airflow (up to ${grace}s)" >&2
    kill -INT "$pid" 2>/dev/null || true   # standalone relays one SIGTERM to each component
    for _ in $(seq 1 $((grace * 2))); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    # whatever is left of the group (stuck scheduler, its LocalExecutor workers)
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM HUP
rc=0
wait "$pid" || rc=$?
stop
exit "$rc"
