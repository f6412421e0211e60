#!/usr/bin/env bash
# Makes a cluster CA and the certificates TLS needs, with openssl, for tests and small clusters:
#   DIR/ca.crt                          the CA every side verifies against (--tls-ca, --tls-client-ca)
#   DIR/coordinator.{crt,key}           mmx-coord serve --tls-cert/--tls-key; valid for the HOSTs
#   DIR/worker.{crt,key}                mmx-worker --tls-cert/--tls-key (mutual TLS)
#   DIR/client.{crt,key}                mmx / Python client --tls-cert/--tls-key (mutual TLS)
# Usage: deploy/certs.sh DIR [HOST ...]   (HOSTs: names and addresses clients dial the coordinator
# by; default localhost 127.0.0.1). Keys are P-256, certificates valid for 365 days. A real
# deployment uses its own PKI: docs/operations.md, "Security".
set -euo pipefail
dir=${1:?usage: deploy/certs.sh DIR [HOST ...]}
shift
hosts=("$@")
[ ${#hosts[@]} -gt 0 ] || hosts=(localhost 127.0.0.1)
command -v openssl >/dev/null || { echo "certs.sh: openssl is not installed (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"
umask 077
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

key ca
openssl req -x509 -new -key ca.key -sha256 -days 365 -subj "/CN=mmx cluster CA" -out ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"

san=""
for h in "${hosts[@]}"; do
  if [[ $h =~ ^[0-9.]+$ || $h == *:* ]]; then san+="IP:$h,"; else san+="DNS:$h,"; fi
done
san=${san%,}

issue() {  # name, extendedKeyUsage, extra extension lines
  key "$1"
  openssl req -new -key "$1.key" -subj "/CN=mmx $1" -out "$1.csr"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\n%s\n' "$2" "${3:-}" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 365 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
issue coordinator serverAuth "subjectAltName=$san"
issue worker clientAuth
issue client clientAuth
rm -f ca.srl
chmod 644 ./*.crt
echo "certs.sh: wrote $(pwd)/{ca,coordinator,worker,client}.{crt,key}; the coordinator's certificate is for: ${hosts[*]}"
