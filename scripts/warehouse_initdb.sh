#!/usr/bin/env bash
# docker-compose.yml mounts this into the warehouse container's /docker-entrypoint-initdb.d/: on the first start
# it creates the departments' 前置库 database (FRONTDB_URL) next to the warehouse, with PostGIS like the warehouse.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE DATABASE frontdb;
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname frontdb -c 'CREATE EXTENSION IF NOT EXISTS postgis;'
