#!/usr/bin/env bash
# Certificates for a Docker Engine that DockNap reaches over mutual TLS, as in
# Docker's "Protect the Docker daemon socket": a CA of your own, a server
# certificate for the engine's names/IPs, and a client certificate for
# DockNap. Only this CA is trusted on either side.
#
#   examples/tls/make-certs.sh DIR NAME_OR_IP [NAME_OR_IP...]
#   e.g. examples/tls/make-certs.sh ./nas-certs nas.lan 192.168.1.20
#
# Writes into DIR (created 0700): ca.pem ca-key.pem server-cert.pem
# server-key.pem cert.pem key.pem (keys 0600), and docknap-host.json (0600),
# the body for DockNap's POST /api/hosts. Keep ca-key.pem offline: it can
# issue certificates the engine accepts. DAYS (default 825) sets the
# validity, KEY_BITS (default 4096) the RSA key size, CN_PREFIX (default
# docknap) the subjects' names.
set -euo pipefail
umask 077

if [ $# -lt 2 ]; then
  echo "usage: $0 DIR NAME_OR_IP [NAME_OR_IP...]" >&2
  exit 2
fi
dir=$1
shift
days=${DAYS:-825}
bits=${KEY_BITS:-4096}
prefix=${CN_PREFIX:-docknap}

# The engine's certificate must name every way it is dialled: the host in
# DockNap's tcp://HOST:PORT URL is checked against these.
san=""
for h in "$@"; do
  if printf '%s' "$h" | grep -Eq '^[0-9.]+$|:'; then
    san="$san,IP:$h"
  else
    san="$san,DNS:$h"
  fi
done
san=${san#,}

mkdir -p "$dir"
chmod 700 "$dir"
cd "$dir"
for f in ca.pem ca-key.pem server-cert.pem server-key.pem cert.pem key.pem docknap-host.json; do
  if [ -e "$f" ]; then
    echo "$dir/$f exists; refusing to overwrite (use an empty folder)" >&2
    exit 1
  fi
done

# openssl, quiet unless it fails.
ossl() {
  local err
  if ! err=$(openssl "$@" 2>&1 >/dev/null); then
    echo "openssl $1: $err" >&2
    exit 1
  fi
}

# The CA.
ossl genrsa -out ca-key.pem "$bits"
ossl req -new -x509 -days "$days" -sha256 -key ca-key.pem -subj "/CN=$prefix-ca" -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"

# The engine's (server) certificate, for the given names and IPs.
ossl genrsa -out server-key.pem "$bits"
ossl req -new -sha256 -key server-key.pem -subj "/CN=$prefix-engine" -out server.csr
printf 'subjectAltName = %s\nextendedKeyUsage = serverAuth\nkeyUsage = critical,digitalSignature,keyEncipherment\n' "$san" >server-ext.cnf
ossl x509 -req -days "$days" -sha256 -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
  -out server-cert.pem -extfile server-ext.cnf

# DockNap's client certificate.
ossl genrsa -out key.pem "$bits"
ossl req -new -sha256 -key key.pem -subj "/CN=$prefix-client" -out client.csr
printf 'extendedKeyUsage = clientAuth\nkeyUsage = critical,digitalSignature\n' >client-ext.cnf
ossl x509 -req -days "$days" -sha256 -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
  -out cert.pem -extfile client-ext.cnf

rm -f server.csr client.csr server-ext.cnf client-ext.cnf ca.srl
chmod 600 ca-key.pem server-key.pem key.pem
chmod 644 ca.pem server-cert.pem cert.pem
abs=$(pwd)

# A PEM file as a JSON string: PEM has no quotes or backslashes, only newlines.
json_pem() { awk '{ printf "%s\\n", $0 }' "$1"; }

first=$1
case $first in
  *:*) url_host="[$first]" ;;
  *) url_host=$first ;;
esac
name=$(printf '%s' "$first" | tr 'A-Z.:' 'a-z--' | tr -cd 'a-z0-9-' | sed 's/^-*//' | cut -c1-63)
printf '{"name": "%s", "url": "tcp://%s:2376", "tls": {"ca": "%s", "cert": "%s", "key": "%s"}}\n' \
  "$name" "$url_host" "$(json_pem ca.pem)" "$(json_pem cert.pem)" "$(json_pem key.pem)" >docknap-host.json
chmod 600 docknap-host.json

cat <<MSG
Made in $abs (SAN: $san, valid $days days).

On the engine's machine, copy ca.pem, server-cert.pem and server-key.pem to
/etc/docker/tls/ and start dockerd with:

  dockerd -H unix:///var/run/docker.sock -H tcp://0.0.0.0:2376 \\
    --tlsverify --tlscacert=/etc/docker/tls/ca.pem \\
    --tlscert=/etc/docker/tls/server-cert.pem --tlskey=/etc/docker/tls/server-key.pem

(or the same in /etc/docker/daemon.json: "hosts", "tlsverify": true,
"tlscacert", "tlscert", "tlskey"; then drop -H from the systemd unit).
Check it from here with:

  docker -H tcp://$url_host:2376 --tlsverify --tlscacert=$abs/ca.pem \\
    --tlscert=$abs/cert.pem --tlskey=$abs/key.pem version

Register it in DockNap (an admin token in \$TOKEN). The body holds key.pem:
delete docknap-host.json once the host is added (DockNap keeps the material).

  curl -fsS -X POST -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
    --data @$abs/docknap-host.json http://DOCKNAP:8080/api/hosts

$abs/docknap-host.json is:
  {"name": "$name", "url": "tcp://$url_host:2376", "tls": {"ca": "<ca.pem>", "cert": "<cert.pem>", "key": "<key.pem>"}}
MSG
