#!/usr/bin/env bash
# Starts a three-node raftlock cluster of real processes on 127.0.0.1:
#   member 1: client http://127.0.0.1:7070, peer http://127.0.0.1:7071
#   member 2: client http://127.0.0.1:7080, peer http://127.0.0.1:7081
#   member 3: client http://127.0.0.1:7090, peer http://127.0.0.1:7091
# Data lives in ./raftlock-cluster/{1,2,3}; run it again to restart the same
# cluster. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/raftlockd
go build -o "$bin" ./cmd/raftlockd
cluster=1=http://127.0.0.1:7071,2=http://127.0.0.1:7081,3=http://127.0.0.1:7091
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' INT TERM EXIT
for i in 1 2 3; do
  "$bin" --id "$i" --data-dir "raftlock-cluster/$i" \
    --listen-client "http://127.0.0.1:70$((i+6))0" --listen-peer "http://127.0.0.1:70$((i+6))1" \
    --initial-cluster "$cluster" &
  pids+=($!)
done
wait
