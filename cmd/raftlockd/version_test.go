package main

import (
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestVersionFlag(t *testing.T) {
	if _, err := parseFlags([]string{"--version"}, func(string) string { return "" }, io.Discard); !errors.Is(err, errVersion) {
		t.Fatalf("--version: %v", err)
	}
	// The environment sets flags, but not this one.
	env := func(k string) string {
		if k == "RAFTLOCK_VERSION" {
			return "true"
		}
		return ""
	}
	if _, err := parseFlags(nil, env, io.Discard); err != nil {
		t.Fatalf("RAFTLOCK_VERSION must not ask for the version: %v", err)
	}

	// The binary prints the version set at link time, and exits 0.
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "raftlockd")
	build := exec.Command(gobin, "build", "-ldflags", "-X github.com/raftlock/raftlock/version.Version=v0.0.0-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "raftlockd v0.0.0-test ") {
		t.Fatalf("raftlockd --version: %q, %v", out, err)
	}
}
