#!/usr/bin/env bash
# Builds the Pulumi engine of the e2e tier from its Go modules, pinned in tools/e2e/versions.env
# (the E2E_ENGINE_* lines), into a cache outside the work tree:
#
#   ${MLPLANE_E2E_CACHE:-$HOME/.cache/mlplane-e2e}/<hash of the engine pins>/bin/
#     pulumi                          the CLI (github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
#     pulumi-language-python          the Python language host (only when pinned, see below)
#     pulumi-language-python-exec     the script the host runs, copied from the sdk/v3 module
#     pulumi-resource-kubernetes      the Kubernetes provider (ambient plugin on PATH)
#
# Each component is built in a wrapper module generated under <cache>/src/<component>/ (never in
# the work tree): it requires the upstream module at the pinned version and copies the upstream
# go.mod's non-local `replace` and `godebug` lines (those of a dependency do not apply to the
# main module, and its local-path replaces point into a git checkout that the module zip lacks).
# A component whose binaries and stamp exist is not rebuilt, so a warm cache builds nothing.
#
# Usage: tools/e2e/engine.sh            build what is missing, print each step and its duration
#        tools/e2e/engine.sh --bin-dir  print the bin directory (builds nothing)
# The language host is built only when a version of it is pinned (none is served today): mlplane
# runs programs inline through the Automation API and needs no host.
# Needs: go (GOTOOLCHAIN=local: the machine's own Go), python3, the Go module proxy when cold.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
versions="$here/versions.env"

die() { echo "engine.sh: error: $*" >&2; exit 1; }

[ -f "$versions" ] || die "$versions not found"

# Only the engine's pins: the cluster section of the same file has its own script and cache key.
pins="$(grep -E '^E2E_ENGINE_[A-Z0-9_]+=' "$versions" || true)"
[ -n "$pins" ] || die "no E2E_ENGINE_* pins in $versions"
while IFS='=' read -r key value; do
  printf -v "$key" '%s' "$value"
done <<< "$pins"
for key in E2E_ENGINE_RECIPE E2E_ENGINE_PULUMI_VERSION E2E_ENGINE_PULUMI_KUBERNETES_VERSION \
           E2E_ENGINE_PULUMI_KUBERNETES_PROVIDER_MODULE_VERSION; do
  [ -n "${!key:-}" ] || die "$key is not set in $versions"
done
: "${E2E_ENGINE_PULUMI_LANGUAGE_PYTHON_MODULE_VERSION:=}"

pins_hash="$(printf '%s\n' "$pins" | sha256sum | cut -c1-16)"
cache="${MLPLANE_E2E_CACHE:-$HOME/.cache/mlplane-e2e}/$pins_hash"
bin="$cache/bin"

if [ "${1:-}" = "--bin-dir" ]; then
  echo "$bin"
  exit 0
elif [ $# -gt 0 ]; then
  die "unknown argument '$1' (usage: engine.sh [--bin-dir])"
fi

command -v go >/dev/null 2>&1 || die "go not found on PATH: the e2e engine is built from Go modules (Go >= 1.26)"
command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH"

export GOTOOLCHAIN=local
export CGO_ENABLED=0
# No VCS stamping (the wrapper is no checkout); the module cache stays the machine's default.
export GOFLAGS="-buildvcs=false"

PULUMI_MOD=github.com/pulumi/pulumi
PY_HOST_MOD=$PULUMI_MOD/sdk/python/cmd/pulumi-language-python/v3
K8S_MOD=github.com/pulumi/pulumi-kubernetes/provider/v4

mkdir -p "$bin" "$cache/src" "$cache/logs" "$cache/stamps"
echo "e2e engine: cache $cache"

# The local directory of MODULE@VERSION, downloaded through the Go module proxy if needed.
module_dir() {
  local json
  json="$(go mod download -json "$1@$2" 2>&1)" || true
  local dir
  dir="$(printf '%s' "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir","")) if not d.get("Error") else sys.exit(d["Error"])')" \
    || { echo "$json" >&2; return 1; }
  echo "$dir"
}

# Writes the non-local replace lines and the godebug lines of an upstream go.mod, one a line.
upstream_directives() {
  local gomod="$1"
  (cd "$(dirname "$gomod")" && go mod edit -json "$(basename "$gomod")") | python3 -c '
import json, sys
mod = json.load(sys.stdin)
for rep in mod.get("Replace") or []:
    new = rep["New"]
    if new["Path"].startswith(("./", "../", "/")) or not new.get("Version"):
        continue  # a path in the upstream checkout: the wrapper requires the module instead
    old = rep["Old"]["Path"] + (" " + rep["Old"]["Version"] if rep["Old"].get("Version") else "")
    print("replace", old, "=>", new["Path"], new["Version"])
for debug in mod.get("Godebug") or []:
    print("godebug " + debug["Key"] + "=" + debug["Value"])
'
}

# Runs one step, logging to <cache>/logs/<name>.log, printing its duration; on failure the
# log's tail and a clear error.
run_step() {
  local name="$1"; shift
  local log="$cache/logs/$name.log"
  local start=$SECONDS
  echo "e2e engine: building $name ..."
  ( "$@" ) >"$log" 2>&1 &
  if ! wait $!; then
    echo "---- last lines of $log ----" >&2
    tail -n 40 "$log" >&2
    die "building $name failed after $((SECONDS - start))s (full log: $log)"
  fi
  echo "e2e engine: built $name in $((SECONDS - start))s"
}

# True when every named binary exists in bin/ and the component's stamp was written after it.
is_built() {
  local name="$1"; shift
  [ -f "$cache/stamps/$name" ] || return 1
  local f
  for f in "$@"; do [ -x "$bin/$f" ] || return 1; done
}

# ---- 1. the pulumi CLI -------------------------------------------------------------------------
build_cli() {
  local version="$E2E_ENGINE_PULUMI_VERSION"
  local src="$cache/src/pulumi"
  local pkg_dir
  pkg_dir="$(module_dir "$PULUMI_MOD/pkg/v3" "v$version")"
  rm -rf "$src"; mkdir -p "$src"
  {
    echo "module mlplane.local/e2e/pulumi"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//')"
    echo
    echo "require ("
    echo "	$PULUMI_MOD/pkg/v3 v$version"
    echo "	$PULUMI_MOD/sdk/v3 v$version"
    echo ")"
    echo
    upstream_directives "$pkg_dir/go.mod"
    echo
    echo "tool $PULUMI_MOD/pkg/v3/cmd/pulumi"
  } > "$src/go.mod"
  cat "$src/go.mod" | grep -E '^(require|replace|godebug|tool|	github.com/pulumi)' || true
  (cd "$src" && go mod tidy)
  # As upstream's release (.goreleaser.yml): -trimpath, -w -s, the version with its "v", and the
  # osusergo/grpcnotrace tags.
  (cd "$src" && go build -trimpath -tags osusergo,grpcnotrace \
    -ldflags "-w -s -X $PULUMI_MOD/sdk/v3/go/common/version.Version=v$version" \
    -o "$bin/pulumi.tmp" "$PULUMI_MOD/pkg/v3/cmd/pulumi")
  mv -f "$bin/pulumi.tmp" "$bin/pulumi"
  "$bin/pulumi" version
}

# ---- 2. the Python language host ---------------------------------------------------------------
build_python_host() {
  local version="$E2E_ENGINE_PULUMI_VERSION"
  local host_version="$E2E_ENGINE_PULUMI_LANGUAGE_PYTHON_MODULE_VERSION"
  local src="$cache/src/pulumi-language-python"
  if [ -z "$host_version" ]; then
    echo "no version of $PY_HOST_MOD is pinned (E2E_ENGINE_PULUMI_LANGUAGE_PYTHON_MODULE_VERSION):"
    echo "the Go module proxy serves none (its version list, tags and commits answer 403 'This"
    echo "module version is not available'); see tools/e2e/README.md, section Engine."
    return 1
  fi
  local host_dir sdk_dir pkg_dir
  host_dir="$(module_dir "$PY_HOST_MOD" "$host_version")"
  sdk_dir="$(module_dir "$PULUMI_MOD/sdk/v3" "v$version")"
  pkg_dir="$(module_dir "$PULUMI_MOD/pkg/v3" "v$version")"
  rm -rf "$src"; mkdir -p "$src"
  {
    echo "module mlplane.local/e2e/pulumi-language-python"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//')"
    echo
    echo "require ("
    echo "	$PY_HOST_MOD $host_version"
    echo "	$PULUMI_MOD/pkg/v3 v$version"
    echo "	$PULUMI_MOD/sdk/v3 v$version"
    echo ")"
    echo
    upstream_directives "$host_dir/go.mod"
    echo
    echo "tool $PY_HOST_MOD"
  } > "$src/go.mod"
  (cd "$src" && go mod tidy)
  (cd "$src" && go build -trimpath -tags osusergo,grpcnotrace \
    -ldflags "-w -s -X $PULUMI_MOD/sdk/v3/go/common/version.Version=v$version" \
    -o "$bin/pulumi-language-python.tmp" "$PY_HOST_MOD")
  # The host refuses to start without this script next to its binary.
  install -m 0755 "$sdk_dir/python/cmd/pulumi-language-python-exec" "$bin/pulumi-language-python-exec"
  mv -f "$bin/pulumi-language-python.tmp" "$bin/pulumi-language-python"
}

# ---- 3. the Kubernetes provider ----------------------------------------------------------------
build_kubernetes_provider() {
  local version="$E2E_ENGINE_PULUMI_KUBERNETES_VERSION"
  local mod_version="$E2E_ENGINE_PULUMI_KUBERNETES_PROVIDER_MODULE_VERSION"
  local src="$cache/src/pulumi-resource-kubernetes"
  local provider_dir
  provider_dir="$(module_dir "$K8S_MOD" "$mod_version")"
  rm -rf "$src"; mkdir -p "$src"
  # The main package embeds schema-embed.json and terraform-mapping-embed.json, which upstream's
  # release generates (git-ignored, so not in the module zip): copy the package out of the module
  # cache into the wrapper and generate them there with its own generate.go.
  cp "$provider_dir/cmd/pulumi-resource-kubernetes/"{main.go,generate.go,schema.json,terraform-mapping.json} "$src/"
  chmod u+w "$src"/*
  {
    echo "module mlplane.local/e2e/pulumi-resource-kubernetes"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//')"
    echo
    # Its only replace, sdk/v4 => ../sdk, is local: dropped, so the provider's own requirement of
    # github.com/pulumi/pulumi-kubernetes/sdk/v4 (v4.24.0 for 4.25.0) applies.
    echo "require $K8S_MOD $mod_version"
    echo
    upstream_directives "$provider_dir/go.mod"
  } > "$src/go.mod"
  (cd "$src" && go mod tidy)
  (cd "$src" && VERSION="$version" go generate ./main.go)
  [ -s "$src/schema-embed.json" ] && [ -s "$src/terraform-mapping-embed.json" ] \
    || { echo "go generate wrote no schema-embed.json/terraform-mapping-embed.json"; return 1; }
  # As upstream's Makefile: CGO off, the version without "v" in provider/v4/pkg/version.Version.
  (cd "$src" && go build -trimpath \
    -ldflags "-w -s -X $K8S_MOD/pkg/version.Version=$version" \
    -o "$bin/pulumi-resource-kubernetes.tmp" .)
  mv -f "$bin/pulumi-resource-kubernetes.tmp" "$bin/pulumi-resource-kubernetes"
}

failed=()
component() {
  local name="$1" fn="$2"; shift 2
  if is_built "$name" "$@"; then
    echo "e2e engine: $name is up to date ($*)"
    return 0
  fi
  rm -f "$cache/stamps/$name"
  # In the background, not in an `if` condition: that would switch `set -e` off inside the step.
  ( run_step "$name" "$fn" ) &
  if wait $!; then
    touch "$cache/stamps/$name"
  else
    failed+=("$name")
  fi
}

total_start=$SECONDS
component pulumi build_cli pulumi
component pulumi-resource-kubernetes build_kubernetes_provider pulumi-resource-kubernetes
if [ -z "$E2E_ENGINE_PULUMI_LANGUAGE_PYTHON_MODULE_VERSION" ]; then
  # mlplane apply/destroy/drift run the program inline through the Automation API (the Python
  # process serves the language runtime), so the host is optional: only `pulumi up` run by hand
  # in a build's pulumi/ directory needs it. The Go module proxy serves no version of it.
  echo "e2e engine: pulumi-language-python not built: no version of $PY_HOST_MOD is pinned" \
       "(mlplane runs programs inline and does not need it)"
else
  component pulumi-language-python build_python_host pulumi-language-python pulumi-language-python-exec
fi

if [ ${#failed[@]} -gt 0 ]; then
  die "not built: ${failed[*]} (see above); built components stay cached in $bin"
fi
echo "e2e engine: ready in $bin ($((SECONDS - total_start))s)"
