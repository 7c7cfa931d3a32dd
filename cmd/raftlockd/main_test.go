package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestFlagsDefaultsEnvAndPrecedence(t *testing.T) {
	env := map[string]string{
		"RAFTLOCK_DATA_DIR":      "/from/env",
		"RAFTLOCK_TICK":          "50ms",
		"RAFTLOCK_LISTEN_CLIENT": "http://127.0.0.1:9999",
	}
	o, err := parseFlags([]string{"--listen-client", "http://127.0.0.1:8888"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.dataDir != "/from/env" || o.tick != 50*time.Millisecond {
		t.Fatalf("environment not applied: %+v", o)
	}
	if o.listenClient != "http://127.0.0.1:8888" || o.advertiseClient != "http://127.0.0.1:8888" {
		t.Fatalf("a flag must win over the environment and be the default advertise URL: %+v", o)
	}
	if o.listenPeer != "http://127.0.0.1:7071" || o.id != 0 {
		t.Fatalf("defaults: %+v", o)
	}
	if _, err := parseFlags(nil, func(k string) string {
		if k == "RAFTLOCK_TICK" {
			return "soon"
		}
		return ""
	}, io.Discard); err == nil || !strings.Contains(err.Error(), "RAFTLOCK_TICK") {
		t.Fatalf("bad env value: %v, want an error naming RAFTLOCK_TICK", err)
	}
}

func TestParseCluster(t *testing.T) {
	peers, err := parseCluster("1=http://127.0.0.1:1,2=http://127.0.0.1:2")
	if err != nil || len(peers) != 2 || peers[2] != "http://127.0.0.1:2" {
		t.Fatalf("%v %v", peers, err)
	}
	for _, bad := range []string{"", "1", "0=http://a:1", "x=http://a:1", "1=ftp://a:1", "1=http://a", "1=http://a:1,1=http://b:2",
		// rafthttp panics on a peer URL with a path, after the WAL recorded it.
		"1=http://127.0.0.1:7071/", "1=http://127.0.0.1:7071/raft", "1=http://127.0.0.1:7071?x=1", "1=http://u:p@127.0.0.1:7071"} {
		if _, err := parseCluster(bad); err == nil {
			t.Errorf("parseCluster(%q) accepted", bad)
		}
	}
}
