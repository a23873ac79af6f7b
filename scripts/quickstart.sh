#!/usr/bin/env bash
# Quickstart: installs pnpm and the workspace, builds it, then backs up a demo PostgreSQL database
# to ./demo-backups with the real `hoard` CLI and restores it into a second database.
# DATABASE_SERVER_URL picks the server (default: the local one, user postgres).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PNPM_VERSION=10.34.8
SERVER_URL="${DATABASE_SERVER_URL:-postgresql://postgres@127.0.0.1:5432}"
BACKUPS="$PWD/demo-backups"

if [[ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]]; then
  npm install --global --no-fund --no-audit "pnpm@$PNPM_VERSION"
fi
pnpm install --frozen-lockfile
pnpm build

sql() { psql --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --tuples-only --no-align --dbname="$1" --command="$2"; }

echo "== creating hoard_demo with 10,000 orders"
sql "$SERVER_URL/postgres" "DROP DATABASE IF EXISTS hoard_demo" 2>/dev/null
sql "$SERVER_URL/postgres" "DROP DATABASE IF EXISTS hoard_demo_restored" 2>/dev/null
sql "$SERVER_URL/postgres" "CREATE DATABASE hoard_demo"
sql "$SERVER_URL/postgres" "CREATE DATABASE hoard_demo_restored"
sql "$SERVER_URL/hoard_demo" "CREATE TABLE orders (id serial PRIMARY KEY, customer text, total numeric(10,2), placed timestamptz DEFAULT now());
  INSERT INTO orders (customer, total) SELECT 'customer ' || n, n * 0.5 FROM generate_series(1, 10000) n"

echo "== hoard backup"
pnpm --silent hoard backup "$SERVER_URL/hoard_demo" "$BACKUPS" --prefix demo
echo "== hoard list"
pnpm --silent hoard list "$BACKUPS" --prefix demo
echo "== hoard restore --latest"
pnpm --silent hoard restore "$BACKUPS" --latest --prefix demo "$SERVER_URL/hoard_demo_restored"

original=$(sql "$SERVER_URL/hoard_demo" "SELECT count(*) || ' orders, total ' || sum(total) FROM orders")
restored=$(sql "$SERVER_URL/hoard_demo_restored" "SELECT count(*) || ' orders, total ' || sum(total) FROM orders")
echo "original: $original"
echo "restored: $restored"
[[ "$original" == "$restored" ]] || { echo "quickstart: the restored database differs" >&2; exit 1; }
echo "== done: backups are in $BACKUPS; drop the demo databases with:"
echo "   psql $SERVER_URL/postgres -c 'DROP DATABASE hoard_demo' -c 'DROP DATABASE hoard_demo_restored'"
