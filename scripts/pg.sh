#!/usr/bin/env bash
# The project's own PostgreSQL + PostGIS cluster under .local/pg, on a non-default port (like pytest-postgresql).
#   scripts/pg.sh start   install PostGIS if missing, init the cluster if new, start it, create the databases
#   scripts/pg.sh stop    stop it
#   scripts/pg.sh status
# Skipped entirely when WAREHOUSE_URL names a server: then that server is used as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOCAL_DIR=${LOCAL_DIR:-$ROOT/.local}
DATA=$LOCAL_DIR/pg/data
PORT_FILE=$LOCAL_DIR/pg/port

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

choose_port() {
  # LOCAL_PG_PORT wins; else the port this cluster was created with; else the first free port from 54329
  # (another checkout's cluster may hold 54329). The choice is kept in .local/pg/port, which settings.py reads.
  if [ -n "${LOCAL_PG_PORT:-}" ]; then PORT=$LOCAL_PG_PORT
  elif [ -s "$PORT_FILE" ]; then PORT=$(cat "$PORT_FILE")
  else
    PORT=54329
    while port_busy "$PORT"; do PORT=$((PORT + 1)); done
  fi
}
SOCK=$LOCAL_DIR/pg/run
LOG=$LOCAL_DIR/pg/postgresql.log

as_owner() {
  # PostgreSQL refuses to run as root: run its commands as the unprivileged 'postgres' user then.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bindir() {
  local v
  for v in $(ls /usr/lib/postgresql 2>/dev/null | sort -rn); do
    if [ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ]; then echo "/usr/lib/postgresql/$v/bin"; return; fi
  done
  command -v pg_ctl >/dev/null 2>&1 && dirname "$(command -v pg_ctl)"
}

sudo_maybe() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

install_server() {
  local bindir; bindir=$(pg_bindir || true)
  local ver=""
  [ -n "$bindir" ] && ver=$(basename "$(dirname "$bindir")")
  if [ -z "$bindir" ] || ! ls /usr/share/postgresql/"$ver"/extension/postgis.control >/dev/null 2>&1; then
    echo "pg.sh: installing PostgreSQL and PostGIS from the OS packages" >&2
    if ! command -v apt-get >/dev/null; then
      echo "pg.sh: no apt-get here; install PostgreSQL 15+ with PostGIS 3, or set WAREHOUSE_URL to a server" >&2
      exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    sudo_maybe apt-get update -qq
    if [ -n "$ver" ]; then
      sudo_maybe apt-get install -y -qq "postgresql-$ver-postgis-3" >/dev/null
    else
      sudo_maybe apt-get install -y -qq postgresql postgresql-15-postgis-3 >/dev/null
    fi
  fi
}

start() {
  if [ -n "${WAREHOUSE_URL:-}" ]; then echo "pg.sh: WAREHOUSE_URL is set; using that server"; return; fi
  install_server
  local bin; bin=$(pg_bindir)
  mkdir -p "$LOCAL_DIR/pg"
  choose_port
  echo "$PORT" > "$PORT_FILE"
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$LOCAL_DIR/pg"
    # the postgres user must be able to reach the data directory through the checkout
    d="$LOCAL_DIR"; while [ "$d" != "/" ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
  fi
  if [ ! -s "$DATA/PG_VERSION" ]; then
    as_owner mkdir -p "$DATA" "$SOCK"
    # Collation C (bytewise; for UTF-8 the order of code points, the order C.UTF-8 gives) and character classes
    # of C.UTF-8 (upper(), regular expressions on Chinese text): the same results as C.UTF-8 throughout, but
    # PostgreSQL compares C text with memcmp and abbreviated keys instead of strcoll() (docs/scaling.md).
    as_owner "$bin/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --lc-collate=C >/dev/null
    as_owner bash -c "cat >> '$DATA/postgresql.conf'" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCK'
max_connections = 200
CONF
  fi
  # The project's settings live in project.conf, rewritten at every start (so a cluster made by an older checkout
  # gets them too); postgresql.conf includes it last.
  if ! grep -q "^include_if_exists = 'project.conf'" "$DATA/postgresql.conf"; then
    as_owner bash -c "echo \"include_if_exists = 'project.conf'\" >> '$DATA/postgresql.conf'"
  fi
  # shared_buffers half of the memory (at least 1 GB), the OS cache counted in effective_cache_size. With 1 GB
  # on a 24 GB machine, a full load at a million residents filled the buffers with dirty pages that the
  # backends then had to write out themselves (5 million buffer writes, each waiting for its WAL), and the
  # big inserts grew 8-fold for 4 times the rows. Half rather than the usual quarter: on these machines the
  # kernel pages out file cache that has not been touched for about a minute (DAMON reclaim,
  # /sys/kernel/mm/damon), so between two tasks the warehouse survives only in PostgreSQL's own buffers, which
  # are shared memory the kernel cannot page out without swap (docs/scaling.md, "memory"). Memory is taken only
  # as buffers are used.
  local mem_mb; mem_mb=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
  local sb_mb=$(( mem_mb / 2 )); [ "$sb_mb" -lt 1024 ] && sb_mb=1024
  local ecs_mb=$(( mem_mb / 2 )); [ "$ecs_mb" -lt 2048 ] && ecs_mb=2048
  as_owner bash -c "cat > '$DATA/project.conf'" <<CONF
# written by scripts/pg.sh at every start; edit there
shared_buffers = ${sb_mb}MB
bgwriter_delay = 50ms
bgwriter_lru_maxpages = 1000
work_mem = 64MB
maintenance_work_mem = 512MB
synchronous_commit = off
# batch loads: checkpoints far apart, so that a page is written to the WAL whole (a full-page image) once per
# load rather than once per checkpoint; room for a bulk statement's WAL in memory. Full-page images are not
# compressed (PostgreSQL's default): lz4 halved their WAL but cost the backend that writes them more than the
# writes it saved — 13k persons updated after a checkpoint, as a daily increment does: 0.76 s (85 MB of WAL)
# with lz4, 0.53 s (181 MB) without (BENCHMARKS.md row 107)
max_wal_size = 16GB
# ... and a full load's WAL kept in segments for reuse after each checkpoint rather than removed (4.3 GB at a
# million residents): a new segment is written whole with zeros and synced before its first record, by the backend
# that needs it, holding the WAL write lock (1.55 GB of WAL written by one INSERT: 10.4 s into new segments, 5.2 s
# into recycled ones). Disk is taken only once the WAL has grown that far.
min_wal_size = 6GB
checkpoint_timeout = 30min
wal_compression = off
wal_buffers = 64MB
# the WAL writer writes, each time it wakes, at most up to the end of the current 16 MB WAL segment: every 200 ms by
# default, 80 MB/s. The two backends of a partitioned first load make WAL faster than that (their statements,
# crosswalk, persons and versions), the buffers fill, and each backend writes the WAL itself, a page at a time under
# the one WALWriteLock, waiting for the other there (1M first load: the buffers full 151,000 times, the backends
# waiting on WALWrite about a quarter of their time). Waking every 20 ms it keeps ahead (never full).
wal_writer_delay = 20ms
# local SSD: a random page read costs little more than a sequential one; with the default 4.0 the planner chose
# a sequential scan of two million statements over 18k index probes in the daily increment
random_page_cost = 1.1
# the time spent waiting on reads, per database and in EXPLAIN (ANALYZE, BUFFERS): what tells a query that waits on
# the disk from one that computes (the benchmark reports it per reconciliation); pg_test_timing here: 37 ns a call
track_io_timing = on
effective_cache_size = ${ecs_mb}MB
CONF
  as_owner mkdir -p "$SOCK"
  if ! as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    if port_busy "$PORT"; then
      echo "pg.sh: port $PORT is taken by another server; set LOCAL_PG_PORT to a free port (or WAREHOUSE_URL)" >&2
      exit 1
    fi
    as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -o "-p $PORT" start >/dev/null
  else
    as_owner "$bin/pg_ctl" -D "$DATA" reload >/dev/null  # project.conf may have changed
    sleep 0.5
    if [ "$("$bin/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT count(*) FROM pg_settings WHERE pending_restart" postgres)" != 0 ]; then
      echo "pg.sh: restarting the cluster for changed settings"
      as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -o "-p $PORT" restart -m fast >/dev/null
    fi
  fi
  for db in warehouse frontdb; do
    if ! "$bin/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" postgres | grep -q 1; then
      "$bin/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$db"
    fi
  done
  # a cluster made before the collation C (above) works the same, only its text sorts and indexes are slower
  if [ "$("$bin/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT datcollate FROM pg_database WHERE datname = 'warehouse'" postgres)" != C ]; then
    echo "pg.sh: note: this cluster's collation is not C (made by an older checkout); 'make clean && make setup' makes a new one whose text sorts and indexes are faster (docs/scaling.md)"
  fi
  echo "pg.sh: PostgreSQL with PostGIS on 127.0.0.1:$PORT (data in $DATA)"
}

stop() {
  local bin; bin=$(pg_bindir)
  if [ -s "$DATA/PG_VERSION" ]; then as_owner "$bin/pg_ctl" -D "$DATA" -m fast stop || true; fi
}

status() {
  local bin; bin=$(pg_bindir)
  as_owner "$bin/pg_ctl" -D "$DATA" status
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
