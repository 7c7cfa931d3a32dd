package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/raftlock/raftlock/version"
)

func TestVersionCommand(t *testing.T) {
	r := runCLI(t, nil, "version")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "raftlock ") || !strings.Contains(r.stdout, runtime.Version()) {
		t.Fatalf("raftlock version: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, nil, "version", "-o", "json")
	var v version.Info
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &v) != nil || v.Version == "" || v.Go != runtime.Version() {
		t.Fatalf("raftlock version -o json: %d %q", r.code, r.stdout)
	}
	if r := runCLI(t, nil, "--version"); r.code != exitOK || !strings.HasPrefix(r.stdout, "raftlock "+version.Get().Version) {
		t.Fatalf("raftlock --version: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, nil, "version", "extra"); r.code != exitUsage {
		t.Fatalf("raftlock version extra: exit %d, want %d", r.code, exitUsage)
	}
}
