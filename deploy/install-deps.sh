#!/usr/bin/env bash
# Installs every Debian 12 package mmx needs to build, test and run. Idempotent: re-running it
# on a machine that already has everything only re-checks the package list.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (it calls apt-get)" >&2
  exit 1
fi

packages=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libucx-dev ucx-utils libabsl-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
  libspdlog-dev libsqlite3-dev libbenchmark-dev libgtest-dev libgmock-dev libicu-dev
  libcpp-httplib-dev clang-14 libfuzzer-14-dev
  iproute2 nftables procps python3 python3-grpcio python3-protobuf systemd
  slurmctld slurmd slurm-client munge
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm, for the OpenAI SDK tests: Debian's, unless a node with npm is already there
# (e.g. NodeSource's nodejs, which bundles npm and conflicts with Debian's npm package).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps.sh: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps.sh: done"
