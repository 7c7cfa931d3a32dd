package fence_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps package fence on the standard library alone: a
// resource that checks tokens needs neither the SDK nor its wire types.
func TestDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	const self = "github.com/raftlock/raftlock/client/fence"
	out, err := exec.Command(gobin, "list", "-deps", self).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == self {
			continue
		}
		if first, _, _ := strings.Cut(dep, "/"); strings.Contains(first, ".") {
			t.Errorf("package fence depends on %s: it may import only the standard library", dep)
		}
	}
	if t.Failed() {
		t.Logf("go list -deps:\n%s", out)
	}
}
