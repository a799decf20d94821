#!/usr/bin/env bash
# Makes a fresh clone runnable with no step by hand, and is cheap when nothing changed:
#  1. installs the npm dependencies (the dev dependency `node` brings Node 24, which every later
#     `npm run` step then uses) when package.json or package-lock.json changed since the last install.
#     This step runs on whatever Node started `npm`, the machine's Node 20 on a fresh clone, which is
#     why package.json sets `engines` but not `engine-strict`;
#  2. installs or builds the real parts (test/ground/install.sh), unless --node-only.
set -euo pipefail
cd "$(dirname "$0")/../.."

want=$(cat package.json package-lock.json | sha256sum | cut -c1-32)
stamp=node_modules/.keystile-install-stamp
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x node_modules/.bin/node ]; then
  echo "[bootstrap] installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

[ "${1:-}" = --node-only ] && exit 0
bash test/ground/install.sh all
