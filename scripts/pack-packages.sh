#!/usr/bin/env bash
# Packs every public package of the workspace into DEST with `pnpm pack`, exactly as it would be
# published (pnpm turns `workspace:` ranges into versions; `files` decides the contents), and prints
# the tarballs' paths. Needs a build first (`pnpm build`). Used by the packaging test
# (apps/cli/test/packaging.integration.test.ts) and the Dockerfile, which install these tarballs
# with plain npm the way users install from the registry.
# Usage: scripts/pack-packages.sh DEST
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:?usage: pack-packages.sh DEST}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"

for manifest in "$REPO"/packages/*/package.json "$REPO"/apps/*/package.json; do
  # Private packages (the test harness) are never published.
  if node -e 'process.exit(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).private ? 0 : 1)' "$manifest"; then
    continue
  fi
  directory="$(dirname "$manifest")"
  # pnpm prints the tarball's path on its last line.
  (cd "$directory" && pnpm pack --pack-destination "$dest" | tail -n 1)
done
