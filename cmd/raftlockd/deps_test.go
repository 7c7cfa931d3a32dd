package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestServerBinaryHasNoTestMachinery keeps test machinery out of the server:
// the package testing and the test helpers under internal/ are not among
// its dependencies, and the binary holds no known bug to inject (the
// mutants of lock and raftnode exist only in a build with the tag
// raftlock_mutants, and their branches compile away without it).
func TestServerBinaryHasNoTestMachinery(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go is not on PATH: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "github.com/raftlock/raftlock/cmd/raftlockd").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "testing" || strings.HasPrefix(dep, "testing/") || strings.HasPrefix(dep, "github.com/raftlock/raftlock/internal/") {
			t.Errorf("raftlockd depends on %s", dep)
		}
	}

	bin := filepath.Join(t.TempDir(), "raftlockd")
	if out, err := exec.Command(gobin, "build", "-o", bin, "github.com/raftlock/raftlock/cmd/raftlockd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err = exec.Command(gobin, "tool", "nm", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool nm: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		sym := f[len(f)-1]
		if strings.HasPrefix(sym, "github.com/raftlock/raftlock/") && strings.Contains(strings.ToLower(sym), "mutant") {
			t.Errorf("the raftlockd binary holds %s", sym)
		}
	}
}
