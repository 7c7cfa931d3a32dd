package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPprofFlagAndMux(t *testing.T) {
	o, err := parseFlags(nil, func(k string) string {
		if k == "RAFTLOCK_PPROF_LISTEN" {
			return "127.0.0.1:0"
		}
		return ""
	}, io.Discard)
	if err != nil || o.pprofListen != "127.0.0.1:0" {
		t.Fatalf("RAFTLOCK_PPROF_LISTEN: %q %v", o.pprofListen, err)
	}
	if o, _ := parseFlags(nil, func(string) string { return "" }, io.Discard); o.pprofListen != "" {
		t.Fatalf("pprof is on by default: %q", o.pprofListen)
	}
	ts := httptest.NewServer(pprofMux())
	defer ts.Close()
	for path, want := range map[string]string{"/debug/pprof/": "goroutine", "/debug/pprof/cmdline": "", "/debug/pprof/goroutine?debug=1": "goroutine profile"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d %.100q, want 200 with %q", path, resp.StatusCode, b, want)
		}
	}
}
