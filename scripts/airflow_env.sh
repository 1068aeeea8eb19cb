# shellcheck shell=bash
# The local Airflow environment of this checkout. Source it (bash):   source scripts/airflow_env.sh
#
# Sets the variables below (an AIRFLOW__* variable you exported before wins, as in Airflow itself), puts .venv/bin
# first on PATH, writes the local admin password file, and runs `airflow db migrate` once per Airflow version
# (stamp in $AIRFLOW_HOME/.migrated). Needs .venv (scripts/bootstrap.sh). Used by `make airflow`, `make test`
# (dag.test() needs the DAGs folder and a migrated metadata DB) and `make demo`.
#
#   AIRFLOW_HOME                              <LOCAL_DIR>/airflow  (always; LOCAL_DIR defaults to <repo>/.local)
#   AIRFLOW__DATABASE__SQL_ALCHEMY_CONN       sqlite:///<AIRFLOW_HOME>/airflow.db   (SQLite is fine locally and in tests)
#   AIRFLOW__CORE__EXECUTOR                   LocalExecutor   (works with SQLite in Airflow 3)
#   AIRFLOW__CORE__PARALLELISM                4   (LocalExecutor worker processes)
#   AIRFLOW__CORE__DAGS_FOLDER                <repo>/dags
#   AIRFLOW__CORE__PLUGINS_FOLDER             <repo>/plugins
#   AIRFLOW__CORE__LOAD_EXAMPLES              False
#   AIRFLOW__CORE__AUTH_MANAGER               SimpleAuthManager, user admin (role admin)
#   AIRFLOW_ADMIN_PASSWORD                    admin  (written to <AIRFLOW_HOME>/simple_auth_manager_passwords.json)
#   AIRFLOW__API__HOST / AIRFLOW__API__PORT   127.0.0.1 / 8080  (the UI is only reachable from this machine)
#   PYTHONPATH                                <repo> first, so task processes import `pipelines`

_popetl_airflow_env() {
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || return 1
  if [ ! -x "$root/.venv/bin/airflow" ]; then
    echo "airflow_env.sh: no .venv/bin/airflow; run 'make setup' (or bash scripts/bootstrap.sh) first" >&2
    return 1
  fi
  local local_dir=${LOCAL_DIR:-$root/.local}
  case ":$PATH:" in *":$root/.venv/bin:"*) ;; *) export PATH="$root/.venv/bin:$PATH" ;; esac
  case ":${PYTHONPATH:-}:" in *":$root:"*) ;; *) export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" ;; esac

  export AIRFLOW_HOME="$local_dir/airflow"
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
  export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
  # LocalExecutor forks this many workers up front (default 32, ~130 MB each); the tasks mostly wait on PostgreSQL.
  export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
  export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$root/dags}"
  export AIRFLOW__CORE__PLUGINS_FOLDER="${AIRFLOW__CORE__PLUGINS_FOLDER:-$root/plugins}"
  export AIRFLOW__CORE__LOAD_EXAMPLES="${AIRFLOW__CORE__LOAD_EXAMPLES:-False}"
  export AIRFLOW__CORE__AUTH_MANAGER="${AIRFLOW__CORE__AUTH_MANAGER:-airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager}"
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}"
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-$AIRFLOW_HOME/simple_auth_manager_passwords.json}"
  export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
  export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-8080}"
  # Task processes report to the api-server's execution API (Airflow 3); follow a changed port.
  export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://127.0.0.1:$AIRFLOW__API__PORT/execution/}"
  # New DAG files show up within 30 s instead of the default 5 min; local development only.
  export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-30}"
  export AIRFLOW_ADMIN_PASSWORD="${AIRFLOW_ADMIN_PASSWORD:-admin}"
  export GX_ANALYTICS_ENABLED="${GX_ANALYTICS_ENABLED:-false}"   # Great Expectations phones home otherwise

  mkdir -p "$AIRFLOW_HOME" || return 1
  # A known password for the local admin instead of a generated one (SimpleAuthManager reads this JSON file).
  local pwfile=$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE
  local pwjson
  pwjson=$(ADMIN_PW="$AIRFLOW_ADMIN_PASSWORD" "$root/.venv/bin/python" -c \
    'import json, os; print(json.dumps({"admin": os.environ["ADMIN_PW"]}))') || return 1
  if [ ! -f "$pwfile" ] || [ "$(cat "$pwfile")" != "$pwjson" ]; then
    (umask 077 && printf '%s\n' "$pwjson" > "$pwfile") || return 1
  fi

  # `airflow db migrate` once per Airflow version and metadata DB (it takes ~10-20 s).
  local stamp="$AIRFLOW_HOME/.migrated"
  local want
  want="$(grep -iE '^apache-airflow(-core)?==' "$root/requirements.txt" | sort | tr '\n' ' ') $AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
  local db_missing=0
  case "$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in
    sqlite:///*) [ -f "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN#sqlite:///}" ] || db_missing=1 ;;
  esac
  if [ "$db_missing" = 1 ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "airflow_env.sh: migrating the Airflow metadata DB in $AIRFLOW_HOME" >&2
    if ! airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1; then
      cat "$AIRFLOW_HOME/db-migrate.log" >&2
      echo "airflow_env.sh: 'airflow db migrate' failed (log above)" >&2
      return 1
    fi
    printf '%s\n' "$want" > "$stamp"
  fi
}
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "airflow_env.sh: source it (source scripts/airflow_env.sh) rather than running it" >&2
  exit 2
fi
_popetl_airflow_env || { unset -f _popetl_airflow_env; return 1; }
unset -f _popetl_airflow_env
