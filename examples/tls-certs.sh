#!/usr/bin/env bash
# Makes, with openssl, what a TLS cluster of three members on 127.0.0.1
# needs, in the directory given (default ./raftlock-tls):
#
#   peer-ca.crt/.key        the CA of the members' peer certificates
#   member{1,2,3}.crt/.key  each member's peer certificate: CN raftlock-member
#                           (pinned with --peer-cert-allowed-cn), usages
#                           serverAuth and clientAuth (a member is server and
#                           client on the peer port), SAN 127.0.0.1, localhost
#   client-ca.crt/.key      the CA of the client port: it signs the members'
#                           client-port certificates and the clients'
#   server{1,2,3}.crt/.key  each member's client-port certificate (serverAuth)
#   client.crt/.key         a client certificate, CN "admin" (clientAuth)
#
# For real hosts, put each host's names and addresses in its certificates'
# subjectAltName (see SANS below) and keep the CA keys off the cluster.
set -euo pipefail
dir=${1:-raftlock-tls}
SANS=${SANS:-IP:127.0.0.1,IP:::1,DNS:localhost}
mkdir -p "$dir"
cd "$dir"
umask 077

ca() { # name, common name
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$1.key" -out "$1.crt" -days 3650 -subj "/CN=$2" 2>/dev/null
}
cert() { # name, CA, common name, extendedKeyUsage, subjectAltName (or "")
  local ext
  ext=$(mktemp)
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=digitalSignature"
    echo "extendedKeyUsage=$4"
    if [ -n "$5" ]; then echo "subjectAltName=$5"; fi
  } >"$ext"
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$1.key" -out "$1.csr" -subj "/CN=$3" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial \
    -out "$1.crt" -days 825 -extfile "$ext" 2>/dev/null
  rm -f "$1.csr" "$ext"
}

ca peer-ca "raftlock peer CA"
ca client-ca "raftlock client CA"
for i in 1 2 3; do
  cert "member$i" peer-ca raftlock-member serverAuth,clientAuth "$SANS"
  cert "server$i" client-ca "raftlock member $i" serverAuth "$SANS"
done
cert client client-ca "${CLIENT_CN:-admin}" clientAuth ""
chmod 644 ./*.crt
echo "certificates in $PWD"
