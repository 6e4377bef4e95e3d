#!/usr/bin/env bash
# Install the external judges that mlplane's outputs are checked against (docs/architecture.md, External judges):
#
#   zizmor, check-jsonschema, kubernetes-validate   PyPI, in the project venv (pyproject's `test` extra)
#   checkov                                         PyPI, in its own venv .judges/checkov (its pins clash)
#   promtool                                        Debian package `prometheus`, only when root
#   amtool                                          Debian package `prometheus-alertmanager`, only when root
#   prometheus-pushgateway                          Debian package `prometheus-pushgateway`, only when root
#                                                   (the drift job pushes to it; its /metrics feeds promtool)
#   prometheus, prometheus-alertmanager             the servers of the two packages above: the alert
#                                                   delivery test and the e2e tier run them on loopback
#   opa                                             Go module, built with the local Go into .judges/bin
#   actionlint                                      Go module, built with the local Go into .judges/bin
#   chromium                                        Debian package `chromium`, only when root (HTML report)
#   mermaid                                         npm package `mermaid`, into .judges/mermaid (its parser
#                                                   and renderer run inside chromium: the report's Mermaid)
#
# Idempotent and quiet on success: it prints one table of the judges and their versions.
# Under CI=true a missing judge is an error (exit 1); elsewhere it is reported and tests skip.
#
# Usage: tools/install-judges.sh            install what is missing, then print the table
#        tools/install-judges.sh --status   only print the table
#
# Environment: VENV (default .venv), JUDGES_DIR (default .judges), CHECKOV_SPEC, CHECKOV_PYTHON,
# OPA_VERSION (the pinned github.com/open-policy-agent/opa release), ACTIONLINT_VERSION (the pinned
# github.com/rhysd/actionlint release), MERMAID_VERSION (the pinned npm `mermaid` release).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=${VENV:-.venv}
JUDGES_DIR=${JUDGES_DIR:-.judges}
CHECKOV_VENV=$JUDGES_DIR/checkov
CHECKOV_SPEC=${CHECKOV_SPEC:-checkov>=3.2,<4}
# checkov's venv is built from the same base interpreter as the project venv.
CHECKOV_PYTHON=${CHECKOV_PYTHON:-$VENV/bin/python}
PYPI_JUDGES=(zizmor check-jsonschema kubernetes-validate)
OPA_VERSION=${OPA_VERSION:-v1.22.4}
ACTIONLINT_VERSION=${ACTIONLINT_VERSION:-v1.7.12}
MERMAID_VERSION=${MERMAID_VERSION:-12.4.0}
MERMAID_JS=$JUDGES_DIR/mermaid/node_modules/mermaid/dist/mermaid.min.js

is_ci() { [[ ${CI:-} =~ ^([Tt]rue|TRUE|1|yes)$ ]]; }

# Run a command with its output captured; show the output only if it fails.
quietly() {
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    echo "install-judges: command failed: $*" >&2
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

# Path of a judge's executable, or nothing (always succeeds).
judge_path() {
  local path
  case $1 in
    checkov) path=$CHECKOV_VENV/bin/checkov ;;
    promtool) path=$(command -v promtool || true) ;;
    amtool) path=$(command -v amtool || true) ;;
    prometheus-pushgateway) path=$(command -v prometheus-pushgateway || true) ;;
    prometheus) path=$(command -v prometheus || true) ;;
    prometheus-alertmanager) path=$(command -v prometheus-alertmanager || true) ;;
    opa) path=$JUDGES_DIR/bin/opa ;;
    actionlint) path=$JUDGES_DIR/bin/actionlint ;;
    chromium) path=$(command -v chromium || true) ;;
    mermaid) [[ -f $MERMAID_JS ]] && echo "$MERMAID_JS"; return 0 ;;
    *) path=$VENV/bin/$1 ;;
  esac
  if [[ -n $path && -x $path ]]; then echo "$path"; fi
}

install_pypi_judges() {
  local name missing=()
  for name in "${PYPI_JUDGES[@]}"; do
    [[ -n $(judge_path "$name") ]] || missing+=("$name")
  done
  ((${#missing[@]} == 0)) && return 0
  if [[ ! -x $VENV/bin/python ]]; then
    echo "install-judges: $VENV does not exist; run 'make install' first." >&2
    return 1
  fi
  # A judge whose executable vanished while its distribution is still recorded as installed:
  # pip would call it satisfied, so reinstall that same version.
  local version
  for name in "${missing[@]}"; do
    version=$("$VENV/bin/python" -c \
      'import sys, importlib.metadata as m; print(m.version(sys.argv[1]))' "$name" 2>/dev/null || true)
    if [[ -n $version ]]; then
      quietly "$VENV/bin/python" -m pip install -qq --force-reinstall --no-deps "$name==$version"
    fi
  done
  # They are part of the `test` extra: install through the project's own metadata.
  quietly "$VENV/bin/python" -m pip install -qq -e '.[test]'
}

install_checkov() {
  # A venv whose checkov no longer runs (interpreter gone, files deleted) is rebuilt whole.
  if [[ -d $CHECKOV_VENV ]] && ! "$CHECKOV_VENV/bin/checkov" --version >/dev/null 2>&1; then
    rm -rf "$CHECKOV_VENV"
  fi
  if [[ ! -x $CHECKOV_VENV/bin/python ]]; then
    quietly "$CHECKOV_PYTHON" -m venv "$CHECKOV_VENV"
    quietly "$CHECKOV_VENV/bin/python" -m pip install -qq --upgrade pip
  fi
  # Cheap when already satisfied (no download); repairs a half-finished earlier install.
  quietly "$CHECKOV_VENV/bin/python" -m pip install -qq "$CHECKOV_SPEC"
}

# Install a judge that comes from a Debian package (root and apt-get only): NAME PACKAGE.
install_debian_judge() {
  local name=$1 package=$2
  [[ -n $(judge_path "$name") ]] && return 0
  if [[ $(id -u) != 0 ]]; then
    echo "install-judges: skipping $name: not root. Install the Debian package '$package'" \
         "(sudo apt-get install --no-install-recommends $package) to run its tests." >&2
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-judges: skipping $name: no apt-get on this machine." >&2
    return 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  quietly apt-get update
  quietly apt-get install -y --no-install-recommends "$package"
}

install_promtool() {
  install_debian_judge promtool prometheus
  install_debian_judge prometheus prometheus
}

# amtool (Alertmanager's config checker) validates the generated alertmanager.yaml.
install_amtool() {
  install_debian_judge amtool prometheus-alertmanager
  install_debian_judge prometheus-alertmanager prometheus-alertmanager
}

# The Pushgateway the drift job (python -m mlplane.drift) pushes to, run on loopback by its tests.
install_pushgateway() {
  install_debian_judge prometheus-pushgateway prometheus-pushgateway
}

# opa (the reference Rego evaluator) checks that regopy decides the example policies as it does.
# Built from source with the machine's own Go (GOTOOLCHAIN=local: no toolchain download).
install_opa() {
  [[ -n $(judge_path opa) ]] && return 0
  if ! command -v go >/dev/null 2>&1; then
    echo "install-judges: skipping opa: no Go toolchain on PATH (https://go.dev/dl/)." >&2
    return 0
  fi
  mkdir -p "$JUDGES_DIR/bin"
  GOTOOLCHAIN=local GOBIN=$(cd "$JUDGES_DIR/bin" && pwd) \
    quietly go install "github.com/open-policy-agent/opa@$OPA_VERSION"
}

# actionlint (GitHub Actions workflow checker) judges the workflows `mlplane ci` generates.
install_actionlint() {
  [[ -n $(judge_path actionlint) ]] && return 0
  if ! command -v go >/dev/null 2>&1; then
    echo "install-judges: skipping actionlint: no Go toolchain on PATH (https://go.dev/dl/)." >&2
    return 0
  fi
  mkdir -p "$JUDGES_DIR/bin"
  GOTOOLCHAIN=local GOBIN=$(cd "$JUDGES_DIR/bin" && pwd) \
    quietly go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
}

# chromium (the Debian package) opens the HTML report headless: it must render, draw the lineage
# SVG and log no error (tests/test_report_judges.py drives it over the DevTools protocol).
install_chromium() {
  install_debian_judge chromium chromium
}

# mermaid (npm) parses and renders the Markdown report's Mermaid block inside chromium. Only its
# files are needed: no install scripts run, and no browser is downloaded.
install_mermaid() {
  [[ -n $(judge_path mermaid) ]] && return 0
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-judges: skipping mermaid: no npm on PATH (Debian package 'npm')." >&2
    return 0
  fi
  mkdir -p "$JUDGES_DIR/mermaid"
  quietly npm install --prefix "$JUDGES_DIR/mermaid" --ignore-scripts --no-audit --no-fund \
    --no-save "mermaid@$MERMAID_VERSION"
}

# First version-looking token of `JUDGE --version` (`opa version`).
judge_version() {
  local out flag=--version
  if [[ $(basename "$1") == mermaid.min.js ]]; then
    out=$(grep -o '"version": *"[^"]*"' "$(dirname "$1")/../package.json" | head -1)
    if [[ $out =~ ([0-9]+\.[0-9]+(\.[0-9]+)?) ]]; then echo "${BASH_REMATCH[1]}"; else echo "?"; fi
    return 0
  fi
  [[ $(basename "$1") == opa ]] && flag=version
  out=$("$1" "$flag" 2>&1 </dev/null) || { echo "broken"; return 0; }
  if [[ $out =~ ([0-9]+\.[0-9]+(\.[0-9]+)?) ]]; then echo "${BASH_REMATCH[1]}"; else echo "?"; fi
}

print_table() {
  local name path missing=0
  printf '%-24s %-10s %s\n' judge version path
  for name in promtool amtool prometheus-pushgateway prometheus prometheus-alertmanager checkov opa actionlint chromium mermaid "${PYPI_JUDGES[@]}"; do
    path=$(judge_path "$name")
    if [[ -n $path ]]; then
      printf '%-24s %-10s %s\n' "$name" "$(judge_version "$path")" "$path"
    else
      printf '%-24s %s\n' "$name" missing
      missing=1
    fi
  done
  return $missing
}

main() {
  if [[ ${1:-} != --status ]]; then
    install_pypi_judges
    install_checkov
    install_promtool
    install_amtool
    install_pushgateway
    install_opa
    install_actionlint
    install_chromium
    install_mermaid
  fi
  if ! print_table; then
    if is_ci; then
      echo "install-judges: CI=true and a judge is missing: failing." >&2
      return 1
    fi
    echo "install-judges: tests that need a missing judge will be skipped." >&2
  fi
}

main "$@"
