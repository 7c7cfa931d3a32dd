#!/usr/bin/env bash
# Starts a three-node raftlock cluster on 127.0.0.1 with mutual TLS between
# members and TLS with client certificates on the client port:
#   member 1: client https://127.0.0.1:7070, peer https://127.0.0.1:7071
#   member 2: client https://127.0.0.1:7080, peer https://127.0.0.1:7081
#   member 3: client https://127.0.0.1:7090, peer https://127.0.0.1:7091
# Certificates are made by tls-certs.sh in ./raftlock-tls (once); data lives
# in ./raftlock-tls-cluster/{1,2,3}. Ctrl-C stops all three. Then:
#   curl --cacert raftlock-tls/client-ca.crt --cert raftlock-tls/client.crt \
#     --key raftlock-tls/client.key https://127.0.0.1:7080/v1/status
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/raftlockd
go build -o "$bin" ./cmd/raftlockd
tls=raftlock-tls
[ -f "$tls/client.crt" ] || ./examples/tls-certs.sh "$tls"
cluster=1=https://127.0.0.1:7071,2=https://127.0.0.1:7081,3=https://127.0.0.1:7091
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' INT TERM EXIT
for i in 1 2 3; do
  "$bin" --id "$i" --data-dir "raftlock-tls-cluster/$i" \
    --listen-client "https://127.0.0.1:70$((i+6))0" --listen-peer "https://127.0.0.1:70$((i+6))1" \
    --initial-cluster "$cluster" \
    --cert-file "$tls/server$i.crt" --key-file "$tls/server$i.key" \
    --trusted-ca-file "$tls/client-ca.crt" --client-cert-auth \
    --peer-cert-file "$tls/member$i.crt" --peer-key-file "$tls/member$i.key" \
    --peer-trusted-ca-file "$tls/peer-ca.crt" --peer-client-cert-auth \
    --peer-cert-allowed-cn raftlock-member &
  pids+=($!)
done
wait
