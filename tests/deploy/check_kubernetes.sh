#!/usr/bin/env bash
# Validates deploy/kubernetes offline (tests/deploy/check_kubernetes.cjs) with the npm packages
# installed into NODE_DIR by tests/install_node_packages.sh.
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
node_dir="${1:?usage: check_kubernetes.sh NODE_DIR}"
NODE_PATH="$node_dir/node_modules" node "$src/tests/deploy/check_kubernetes.cjs" "$src/deploy/kubernetes"
