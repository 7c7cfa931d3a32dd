package client

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the SDK free of server code and its dependencies:
// a user of package client downloads neither etcd nor echo.
func TestDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", "github.com/raftlock/raftlock/client").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/raftlock/raftlock/raftnode",
		"github.com/raftlock/raftlock/lock",
		"github.com/raftlock/raftlock/wal",
		"github.com/raftlock/raftlock/httpapi",
		"go.etcd.io",
		"github.com/labstack",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") || (strings.HasSuffix(f, ".io") && strings.HasPrefix(dep, f)) {
				t.Errorf("package client depends on %s", dep)
			}
		}
		if !strings.HasPrefix(dep, "github.com/raftlock/raftlock/") {
			if first, _, _ := strings.Cut(dep, "/"); strings.Contains(first, ".") {
				t.Errorf("package client depends on %s: it may import only api and the standard library", dep)
			}
			continue
		}
		if dep != "github.com/raftlock/raftlock/client" && dep != "github.com/raftlock/raftlock/api" {
			t.Errorf("package client depends on %s: it may import only api and the standard library", dep)
		}
	}
	if t.Failed() {
		t.Logf("go list -deps:\n%s", out)
	}
}
