package fence_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/client/fence"
)

// FuzzLockName holds the Guard's name rule to the server's: a name is
// refused with ErrInvalidArgument exactly when api.ValidateLockName refuses
// it. (Package fence may not import api; its test may.)
func FuzzLockName(f *testing.F) {
	for _, s := range []string{
		"a", "jobs/nightly", "A-Z_0.9:x/y", "...", "a/.../b", ".a", "a.", strings.Repeat("x", api.MaxLockNameLen),
		"", " ", "a b", "é", "a?b", "a%2Fb", "a\x00", "a*", "/a", "a/", "a//b", ".", "..", "a/./b", "a/..",
		"../a", strings.Repeat("x", api.MaxLockNameLen+1), strings.Repeat("a/", 128),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		var g fence.Guard
		err := g.Check(name, 1)
		want := api.ValidateLockName(name)
		if (err != nil) != (want != nil) || err != nil && !errors.Is(err, fence.ErrInvalidArgument) {
			t.Fatalf("%q: Check: %v; api.ValidateLockName: %v", name, err, want)
		}
	})
}
