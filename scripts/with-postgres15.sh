#!/usr/bin/env bash
# Run a command against a throwaway Debian PostgreSQL 15 server:
#   scripts/with-postgres15.sh .venv/bin/python -m pytest
# The server lives in a temporary folder, listens on 127.0.0.1 on a free port,
# and is stopped and removed when the command ends. PGMIG_TEST_DATABASE_URL
# points the test suite at it.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
if [ ! -x "$PGBIN/postgres" ]; then
  echo "with-postgres15: no PostgreSQL binaries in $PGBIN" >&2
  exit 2
fi

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

DATA=$(mktemp -d /tmp/pgmig-pg15.XXXXXX)
chmod 755 "$DATA"
[ "$(id -u)" = 0 ] && chown postgres: "$DATA"
cleanup() {
  as_pg "$PGBIN/pg_ctl" -D "$DATA/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DATA"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg "$PGBIN/initdb" -D "$DATA/data" -U postgres -A trust -E UTF8 >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$DATA/data" -l "$DATA/server.log" -w \
  -o "-p $PORT -h 127.0.0.1 -k $DATA -c fsync=off -c full_page_writes=off" start >/dev/null

export PGMIG_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
echo "with-postgres15: $("$PGBIN/postgres" --version) on port $PORT" >&2
"$@"
