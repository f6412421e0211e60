#!/usr/bin/env bash
# Checks deploy/systemd's units with systemd's own parser (systemd-analyze verify): with the
# binaries pointed at this build and /etc/mmx at a scratch folder, every unit (the worker template
# as an instance) must load with no warning at all: an unknown key, a bad value or a missing
# binary fails the test.
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${1:?usage: check_systemd_units.sh BUILD_BIN_DIR}"
if ! command -v systemd-analyze >/dev/null; then
  echo "check_systemd_units.sh: systemd-analyze is missing (Debian's systemd package)" >&2
  exit 1
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
touch "$scratch/coord.env" "$scratch/worker.env"
rewrite() { sed "s#/usr/local/bin/#$bin/#g; s#/etc/mmx/#$scratch/#g" "$1" > "$2"; }
rewrite "$src/deploy/systemd/mmx-coord.service" "$scratch/mmx-coord.service"
rewrite "$src/deploy/systemd/mmx-worker@.service" "$scratch/mmx-worker@stage0.service"
status=0
for unit in "$scratch/mmx-coord.service" "$scratch/mmx-worker@stage0.service"; do
  out="$(systemd-analyze verify --man=no "$unit" 2>&1)" || status=1
  # Warnings about the host's own units (this machine's systemd setup) are not ours.
  ours="$(grep -F "$scratch" <<<"$out" || true)"
  if [ -n "$ours" ]; then
    echo "$ours" >&2
    status=1
  fi
done
for example in coord.env.example worker.env.example; do
  # Every line is a comment or NAME=VALUE, as EnvironmentFile wants.
  if grep -vE '^(#.*|[A-Z_]+=.*|)$' "$src/deploy/systemd/$example" >&2; then status=1; fi
done
[ $status -eq 0 ] && echo "check_systemd_units.sh: mmx-coord.service and mmx-worker@.service load cleanly"
exit $status
