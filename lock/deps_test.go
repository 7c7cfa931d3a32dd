package lock

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the state machine pure of I/O libraries and of
// this module: it imports the standard library only, in every build (with
// and without the tag raftlock_mutants).
func TestDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go is not on PATH: %v", err)
	}
	for _, tags := range []string{"", "raftlock_mutants"} {
		out, err := exec.Command(gobin, "list", "-tags", tags, "-deps", "-f", "{{.ImportPath}} {{.Standard}}",
			"github.com/raftlock/raftlock/lock").CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps: %v\n%s", err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			path, std, _ := strings.Cut(line, " ")
			if std != "true" && path != "github.com/raftlock/raftlock/lock" {
				t.Errorf("package lock (tags %q) depends on %s: it may import only the standard library", tags, path)
			}
		}
	}
}
