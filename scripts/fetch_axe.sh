#!/usr/bin/env bash
# Installs axe-core (Deque's accessibility rules engine, npm, pinned) into .cache/npm-axe for the browser
# tests' accessibility check of the debtor's pages. Its own prefix, so installing it never prunes the
# Twilio spec's package. Idempotent; ./collect test runs it. Tests read $AXE_CORE_JS first, then:
#   .cache/npm-axe/node_modules/axe-core/axe.min.js
set -euo pipefail
cd "$(dirname "$0")/.."

AXE_VERSION="4.10.3"
PREFIX=".cache/npm-axe"
PKG_DIR="$PREFIX/node_modules/axe-core"
JS="$PKG_DIR/axe.min.js"

if [ -f "$JS" ] && grep -q "\"version\": \"$AXE_VERSION\"" "$PKG_DIR/package.json" 2>/dev/null; then
  echo "axe-core: $AXE_VERSION already in $PREFIX" >&2
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "axe-core: npm not found; the accessibility checks need it (apt-get install npm)" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  exit 0
fi
mkdir -p "$PREFIX"
echo "axe-core: installing axe-core@$AXE_VERSION into $PREFIX" >&2
npm install --prefix "$PREFIX" --no-audit --no-fund --no-save --ignore-scripts --loglevel=error \
  "axe-core@$AXE_VERSION" >&2
[ -f "$JS" ] || { echo "axe-core: $JS missing after install" >&2; exit 1; }
echo "axe-core: $JS" >&2
