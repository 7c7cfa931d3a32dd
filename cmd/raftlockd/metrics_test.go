package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestListenMetrics: --listen-metrics serves GET /metrics (and nothing
// else) on a listener of its own, without auth; a bad address is refused
// before anything starts.
func TestListenMetrics(t *testing.T) {
	o, err := parseFlags([]string{"--listen-metrics", "nonsense"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.checkURLs(); err == nil || !strings.Contains(err.Error(), "--listen-metrics") {
		t.Fatalf("--listen-metrics nonsense: %v, want an error naming the flag", err)
	}
	dir := t.TempDir()
	var ports [3]string
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().String()
		ln.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	errC := make(chan error, 1)
	go func() {
		errC <- run(ctx, []string{"--data-dir", filepath.Join(dir, "data"), "--listen-client", "http://" + ports[0],
			"--listen-peer", "http://" + ports[1], "--listen-metrics", ports[2], "--tick", "10ms"},
			func(string) string { return "" }, io.Discard)
	}()
	defer http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(20 * time.Second)
	var body string
	for {
		resp, err := http.Get("http://" + ports[2] + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if resp.StatusCode == 200 && strings.Contains(body, "raftlock_raft_is_leader 1") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics listener: %v %.300q", err, body)
		}
		select {
		case err := <-errC:
			t.Fatalf("run returned %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	for _, want := range []string{"# HELP raftlock_locks_held ", "# TYPE raftlock_wal_save_duration_seconds histogram"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics listener: no %q", want)
		}
	}
	if resp, err := http.Get("http://" + ports[2] + "/v1/status"); err != nil || resp.StatusCode != 404 {
		t.Errorf("GET /v1/status on the metrics listener: %v %v, want 404", err, resp)
	} else {
		resp.Body.Close()
	}
	cancel()
	if err := <-errC; err != nil {
		t.Fatalf("run: %v", err)
	}
}
