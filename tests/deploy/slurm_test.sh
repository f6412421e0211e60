#!/usr/bin/env bash
# Runs deploy/slurm/mmx.sbatch on a real one-node Slurm brought up here (Debian's slurmctld,
# slurmd and munge, with a configuration of its own in a scratch folder and ports of its own):
# the job starts the coordinator and a worker of the golden tiny-a checkpoint, reports ready, a
# generation goes through it over gRPC and over HTTP, and a graceful cancel stops everything.
# Exit 77 (skipped, with a message) where it cannot run: not root, or Slurm not installed.
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${1:?usage: slurm_test.sh BUILD_BIN_DIR}"
skip() { echo "slurm_test.sh: skipped: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root to run slurmctld, slurmd and munged"
for p in slurmctld slurmd munged sbatch scancel squeue sinfo; do
  command -v "$p" >/dev/null || skip "$p is missing (apt-get install slurmctld slurmd slurm-client munge)"
done

tmp="$(mktemp -d /tmp/mmx-slurm-XXXXXX)"
chmod 755 "$tmp"
pids=()
# Waits up to $1 tenths of a second for command $2... to fail.
wait_until_not() {
  local n=$1; shift
  for _ in $(seq "$n"); do "$@" || return 0; sleep 0.1; done
  return 1
}
job_listed() { squeue -h -j "$job" 2>/dev/null | grep -q .; }
alive() { local s; s="$(ps -o stat= -p "$1" 2>/dev/null)" && [[ "$s" != Z* ]]; }
cleanup() {
  if [ -n "${job:-}" ]; then
    scancel "$job" 2>/dev/null || true
    wait_until_not 300 job_listed || true
  fi
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do  # slurmd, slurmctld, then munged
    kill "${pids[$i]}" 2>/dev/null || true
    wait_until_not 100 alive "${pids[$i]}" || kill -9 "${pids[$i]}" 2>/dev/null || true
  done
  [ "${MMX_KEEP_SLURM:-0}" = 1 ] || rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "slurm_test.sh: FAILED: $*" >&2; for f in "$tmp"/*.log "$tmp"/job.out; do [ -f "$f" ] && { echo "--- $f"; tail -30 "$f"; }; done >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# munge: this machine's key; a daemon of our own if none runs.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged --socket=/run/munge/munge.socket.2 ||
    skip "munged would not start (no /etc/munge/munge.key?)"
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munged_pid="$(cat /run/munge/munged.pid 2>/dev/null || true)"
  [ -n "$munged_pid" ] && pids+=("$munged_pid")
fi
munge -n | unmunge >/dev/null || fail "munge does not work"

node="$(hostname -s)"
hardware="$(slurmd -C | head -1 | sed 's/ UpTime=.*//')"
cat > "$tmp/slurm.conf" <<CONF
ClusterName=mmxtest
SlurmctldHost=$node
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
KillWait=10
$hardware State=UNKNOWN
PartitionName=mmx Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
mkdir -p "$tmp/state" "$tmp/spool"
export SLURM_CONF="$tmp/slurm.conf"
slurmctld -D -i >"$tmp/slurmctld.out" 2>&1 & pids+=($!)
slurmd -D >"$tmp/slurmd.out" 2>&1 & pids+=($!)
for _ in $(seq 150); do
  [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break
  sleep 0.2
done
[ "$(sinfo -h -o %T 2>/dev/null)" = idle ] || fail "the Slurm node never became idle ($(sinfo -h -o %T 2>&1))"

port="$(free_port)" http_port="$(free_port)"
cat > "$tmp/shard.yaml" <<YAML
model: $src/tests/data/golden/tiny-a
workers:
  - {name: all, device: cpu, embedding: true, attention: [0, 8], lm_head: true, experts: [{layers: [0, 8], ids: all}]}
YAML
job="$(sbatch --parsable --nodes=1 --ntasks=2 --output="$tmp/job.out" \
    --export=ALL,MMX_SHARD_CONFIG="$tmp/shard.yaml",MMX_BIN="$bin",MMX_PORT="$port",MMX_HTTP_PORT="$http_port",MMX_INSECURE=1,MMX_WORKER_ARGS="--threads 1" \
    "$src/deploy/slurm/mmx.sbatch")" || fail "sbatch refused the job"
for _ in $(seq 600); do
  grep -q "mmx: ready" "$tmp/job.out" 2>/dev/null && break
  job_listed || fail "job $job ended before the cluster was ready"
  sleep 0.2
done
grep -q "mmx: ready" "$tmp/job.out" || fail "job $job never reported ready"
address="$(grep 'mmx: ready' "$tmp/job.out" | grep -o 'gRPC [^,]*' | cut -d' ' -f2)"
out="$("$bin/mmx" generate --server "$address" --prompt-ids 5,17,42 --max-tokens 8 --json)" || fail "generate failed: $out"
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert len(r["output_ids"]) >= 1, r' "$out" || fail "no tokens: $out"
http="$(grep 'mmx: ready' "$tmp/job.out" | grep -o 'HTTP API [^ ]*' | cut -d' ' -f3)"
python3 - "$http" <<'PY' || fail "the HTTP API did not answer"
import json, sys, urllib.request
body = json.dumps({"prompt": [5, 17, 42], "max_tokens": 4, "temperature": 0}).encode()
req = urllib.request.Request(sys.argv[1] + "/completions", body, {"Content-Type": "application/json"})
reply = json.load(urllib.request.urlopen(req, timeout=30))
assert reply["usage"]["prompt_tokens"] == 3, reply
PY

scancel --batch --signal=TERM "$job"
wait_until_not 600 job_listed || fail "job $job still runs 60 s after a graceful cancel"
grep -q "mmx: stopped" "$tmp/job.out" || fail "the job did not stop its cluster"
pgrep -f "$tmp/shard.yaml|--coordinator $address" >/dev/null && fail "mmx processes of the job outlived it"
job=""
echo "slurm_test.sh: job ran the cluster, served gRPC and HTTP, and stopped it cleanly"
