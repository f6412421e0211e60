#!/usr/bin/env bash
# Installs mmx as systemd services on this machine (as root, after deploy/build.sh):
#   binaries  -> /usr/local/bin (mmx-coord, mmx-worker, mmx)
#   units     -> /etc/systemd/system (mmx-coord.service, mmx-worker@.service)
#   settings  -> /etc/mmx/coord.env, /etc/mmx/worker.env (from the examples, only if absent)
#   user      -> mmx (system user; /var/lib/mmx is the coordinator's state directory)
# Then: edit /etc/mmx/*.env, and `systemctl enable --now mmx-coord` on the coordinator's machine,
# `systemctl enable --now mmx-worker@NAME` for each shard-config entry NAME a machine runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root" >&2
  exit 1
fi
for b in mmx-coord mmx-worker mmx; do
  [ -x "build/bin/$b" ] || { echo "install.sh: build/bin/$b is missing: run deploy/build.sh first" >&2; exit 1; }
  install -m 0755 "build/bin/$b" /usr/local/bin/
done
install -d /usr/local/share/doc/mmx
install -m 0644 docs/*.md /usr/local/share/doc/mmx/
install -m 0644 deploy/systemd/mmx-coord.service deploy/systemd/mmx-worker@.service /etc/systemd/system/
id mmx >/dev/null 2>&1 || useradd --system --home-dir /var/lib/mmx --shell /usr/sbin/nologin mmx
install -d -m 0750 -o root -g mmx /etc/mmx
for f in coord worker; do
  [ -e "/etc/mmx/$f.env" ] || install -m 0640 -g mmx "deploy/systemd/$f.env.example" "/etc/mmx/$f.env"
done
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
fi
echo "install.sh: installed; edit /etc/mmx/coord.env and /etc/mmx/worker.env, then systemctl enable --now mmx-coord / mmx-worker@NAME"
