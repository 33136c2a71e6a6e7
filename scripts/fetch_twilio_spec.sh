#!/usr/bin/env bash
# Installs Twilio's own OpenAPI description of the 2010-04-01 API (npm package @twilio/cli-core,
# pinned) into .cache/npm, for the contract tests and the carrier simulator's request validation.
# Idempotent: does nothing when the pinned version is already there. ./collect test runs it.
#   spec: .cache/npm/node_modules/@twilio/cli-core/src/services/twilio-api/twilio_api_v2010.json
#   (tests read $TWILIO_OPENAPI_SPEC first, then that default path)
set -euo pipefail
cd "$(dirname "$0")/.."

CLI_CORE_VERSION="9.0.0"
PREFIX=".cache/npm"
PKG_DIR="$PREFIX/node_modules/@twilio/cli-core"
SPEC="$PKG_DIR/src/services/twilio-api/twilio_api_v2010.json"

installed_version() {
  [ -f "$PKG_DIR/package.json" ] || return 0
  sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$PKG_DIR/package.json" | head -n1
}

if [ -f "$SPEC" ] && [ "$(installed_version)" = "$CLI_CORE_VERSION" ]; then
  echo "twilio spec: @twilio/cli-core@$CLI_CORE_VERSION already in $PREFIX" >&2
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "twilio spec: npm not found; the Twilio contract tests need it (apt-get install npm)" >&2
  # in CI a missing spec must fail the run; locally those tests skip
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  exit 0
fi

mkdir -p "$PREFIX"
echo "twilio spec: installing @twilio/cli-core@$CLI_CORE_VERSION into $PREFIX" >&2
# --ignore-scripts: we only need a JSON file from the package, never its install hooks
npm install --prefix "$PREFIX" --no-audit --no-fund --no-save --ignore-scripts --loglevel=error \
  "@twilio/cli-core@$CLI_CORE_VERSION" >&2

if [ ! -f "$SPEC" ]; then
  echo "twilio spec: $SPEC missing after install" >&2
  exit 1
fi
echo "twilio spec: $SPEC" >&2
