#!/usr/bin/env bash
# Rebuilds the checked-in plans from the binary: for every cluster spec clusters/NAME.yaml,
# plans/NAME.report.txt (what `mmx-coord plan` prints, its error line included) and
# plans/NAME.shard.yaml (the shard config, only when the model fits).
# tests/plan/examples_test.cc fails when these files and the binary disagree.
#
# Usage, from anywhere: deploy/examples/regenerate.sh [MMX_COORD]   (default: build/bin/mmx-coord)
set -u
cd "$(dirname "$0")/../.."
coord=${1:-build/bin/mmx-coord}
[ -x "$coord" ] || { echo "regenerate.sh: no mmx-coord at $coord (build it, or pass its path)" >&2; exit 1; }
for spec in deploy/examples/clusters/*.yaml; do
  name=$(basename "$spec" .yaml)
  report=deploy/examples/plans/$name.report.txt
  shard=deploy/examples/plans/$name.shard.yaml
  rm -f "$shard"
  "$coord" plan --model deploy/examples/minimax-text-01 --cluster "$spec" --out "$shard" >"$report" 2>&1
  echo "$spec: exit $? -> $report$([ -f "$shard" ] && echo " $shard")"
done
