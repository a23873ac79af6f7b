#!/usr/bin/env bash
# Builds the test servers and MongoDB tools that the test harness runs into .cache/bin.
# Idempotent: a tool whose stamp file (.cache/bin/.NAME.version) matches its pin is skipped,
# so changing a pin below rebuilds just that tool. Needs Go (>= 1.25) and the Go module proxy.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="$REPO/.cache/bin"

VERSITYGW_MODULE="github.com/versity/versitygw/cmd/versitygw@v1.7.0"
FAKE_GCS_SERVER_MODULE="github.com/fsouza/fake-gcs-server@v1.55.1"
FERRETDB_MODULE="github.com/FerretDB/FerretDB"
FERRETDB_VERSION="v1.24.2"
# mongo-tools has no semver tags: this pseudo-version is release 100.14.0.
MONGO_TOOLS_MODULE="github.com/mongodb/mongo-tools"
MONGO_TOOLS_VERSION="v0.0.0-20251216221117-d909d040daa1"
MONGO_TOOLS_RELEASE="100.14.0"

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

# build_in_scratch_module NAME MODULE VERSION PACKAGE [LDFLAGS]
# Builds PACKAGE of MODULE@VERSION with `go build -o` from a throwaway module that requires it.
# Needed when the main package is not named after the binary (mongo-tools' NAME/main).
# Returns 1 when the module proxy does not serve MODULE@VERSION.
build_in_scratch_module() {
  local name="$1" module="$2" version="$3" package="$4" ldflags="${5:-}"
  local stamp="$package@$version (scratch module${ldflags:+, ldflags $ldflags})"
  if is_current "$name" "$stamp"; then
    echo "$name: up to date ($stamp)"
    return 0
  fi
  local started=$SECONDS
  rm -f "$BIN_DIR/.$name.version"
  local module_dir
  module_dir="$(mktemp -d)"
  local status=0
  (
    cd "$module_dir"
    "$GO" mod init hoard.local/tool-build >/dev/null 2>&1
    if ! "$GO" get "$module@$version"; then
      exit 3
    fi
    "$GO" build -mod=mod -ldflags "$ldflags" -o "$BIN_DIR/$name" "$package"
  ) || status=$?
  rm -rf "$module_dir"
  if [[ $status -eq 3 ]]; then
    return 1
  elif [[ $status -ne 0 ]]; then
    echo "$name: build of $package@$version failed" >&2
    exit "$status"
  fi
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

# build_mongo_tool NAME: mongodump/mongorestore. Not fatal when the module proxy refuses
# mongo-tools (it answers 403 "not available" for it on some machines): the harness then reports
# the tool as missing and the tests that need it must skip with that reason.
build_mongo_tool() {
  local name="$1"
  if ! build_in_scratch_module "$name" "$MONGO_TOOLS_MODULE" "$MONGO_TOOLS_VERSION" \
    "$MONGO_TOOLS_MODULE/$name/main" "-X main.VersionStr=$MONGO_TOOLS_RELEASE"; then
    echo "$name: NOT BUILT: the Go module proxy does not serve $MONGO_TOOLS_MODULE@$MONGO_TOOLS_VERSION" >&2
  fi
}

build_with_go_install versitygw "$VERSITYGW_MODULE" "-X main.Version=${VERSITYGW_MODULE##*@}"
build_with_go_install fake-gcs-server "$FAKE_GCS_SERVER_MODULE"
build_ferretdb
build_mongo_tool mongodump
build_mongo_tool mongorestore
