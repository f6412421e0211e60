#!/usr/bin/env bash
# Installs the npm packages the tests drive mmx with into DIR/node_modules, pinned: the official
# OpenAI SDK for Node (tests/http), and kubernetes-models + yaml to validate deploy/kubernetes
# offline (tests/deploy). Needs node and npm (deploy/install-deps.sh installs them) and the npm
# registry. Does nothing when those versions are already there.
set -euo pipefail
dir="${1:?usage: install_node_packages.sh DIR}"
packages=(openai@6.49.0 kubernetes-models@4.5.1 yaml@2.9.1)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install_node_packages.sh: node and npm are needed: run deploy/install-deps.sh" >&2
  exit 1
fi
present=1
for p in "${packages[@]}"; do
  name="${p%@*}" version="${p##*@}"
  grep -qs "\"version\": \"$version\"" "$dir/node_modules/$name/package.json" || present=0
done
[ $present -eq 1 ] && exit 0
mkdir -p "$dir"
npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error "${packages[@]}"
echo "install_node_packages.sh: ${packages[*]} in $dir/node_modules"
