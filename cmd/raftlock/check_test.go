package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/raftlock/raftlock/internal/testserver"
)

// raftlock lock-check exits 0 for the holder's token and 3 for any other,
// and refuses bad arguments as usage errors.
func TestLockCheck(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	env := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}
	a := r.session("10s", "a")
	g := r.acquire("jobs/checked", a)
	tok := strconv.FormatUint(g.Token, 10)
	if got := runCLI(t, env, "lock-check", "jobs/checked", tok); got.code != exitOK || !strings.Contains(got.stdout, "is the current token") {
		t.Fatalf("the holder's token: %+v", got)
	}
	if got := runCLI(t, env, "lock-check", "jobs/checked", strconv.FormatUint(g.Token-1, 10)); got.code != exitHeld || !strings.Contains(got.stdout, "not current") {
		t.Fatalf("an older token: %+v", got)
	}
	if got := runCLI(t, env, "lock-check", "free", "7", "-o", "json"); got.code != exitHeld || !strings.Contains(got.stdout, `"current": false`) {
		t.Fatalf("a free lock, json: %+v", got)
	}
	for _, args := range [][]string{{"lock-check", "x"}, {"lock-check", "x", "0"}, {"lock-check", "x", "-1"}, {"lock-check", "bad name", "3"}} {
		if got := runCLI(t, env, args...); got.code != exitUsage {
			t.Errorf("%q: %+v, want a usage error", args, got)
		}
	}
}
