#!/usr/bin/env bash
# Installs the official OpenAI SDK for Node (npm package `openai`, pinned) into DIR/node_modules
# for tests/http/openai_sdk_check.cjs. Needs node and npm (deploy/install-deps.sh installs them)
# and the npm registry. Does nothing when that version is already there.
set -euo pipefail
dir="${1:?usage: install_openai_sdk.sh DIR}"
version="6.49.0"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install_openai_sdk.sh: node and npm are needed for the OpenAI SDK tests: run deploy/install-deps.sh" >&2
  exit 1
fi
if [[ -f "$dir/node_modules/openai/package.json" ]] &&
   grep -q "\"version\": \"$version\"" "$dir/node_modules/openai/package.json"; then
  exit 0
fi
mkdir -p "$dir"
npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error "openai@$version"
echo "install_openai_sdk.sh: openai@$version in $dir/node_modules"
