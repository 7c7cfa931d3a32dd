#!/usr/bin/env bash
# Starts a three-node raftlock cluster of real processes on 127.0.0.1:
#   member 1: client http://127.0.0.1:7070, peer http://127.0.0.1:7071
#   member 2: client http://127.0.0.1:7080, peer http://127.0.0.1:7081
#   member 3: client http://127.0.0.1:7090, peer http://127.0.0.1:7091
# The binaries are built into ./raftlockd and ./raftlock (the repository's
# root), data lives in ./raftlock-cluster/{1,2,3}; run it again to restart
# the same cluster. Ctrl-C stops all three. It prints how to restart one
# member by hand after you killed it.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o raftlockd ./cmd/raftlockd
go build -o raftlock ./cmd/raftlock
mkdir -p raftlock-cluster
cluster=1=http://127.0.0.1:7071,2=http://127.0.0.1:7081,3=http://127.0.0.1:7091
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' INT TERM EXIT
for i in 1 2 3; do
  ./raftlockd --id "$i" --data-dir "raftlock-cluster/$i" \
    --listen-client "http://127.0.0.1:70$((i+6))0" --listen-peer "http://127.0.0.1:70$((i+6))1" \
    --initial-cluster "$cluster" 2>>"raftlock-cluster/$i.log" &
  pids+=($!)
  echo "member $i: pid $!, log raftlock-cluster/$i.log"
done
cat <<'TXT'

The three members run; see them with: ./raftlock status
Kill one (kill -9 PID) and restart it from another shell, in this directory,
with its data dir alone (it remembers its URLs):
  ./raftlockd --data-dir raftlock-cluster/1
  ./raftlockd --data-dir raftlock-cluster/2
  ./raftlockd --data-dir raftlock-cluster/3
TXT
wait
