package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/testserver"
)

// raftlock elect says once on stderr that another session leads and it
// waits, naming the leader, as raftlock lock does for the holder; --quiet
// says nothing, and nothing is said when nobody leads.
func TestElectSaysItWaits(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	env := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}
	leader := r.session("30s", "other-host")
	l := r.campaign("web", leader, "pod-a")
	since := r.election("web").Leader.Since.UTC().Format(time.RFC3339)

	got := runCLI(t, env, "elect", "--ttl", "1s", "--wait", "300ms", "web", "pod-b", "--", "true")
	want := "raftlock: election web is led by session " + leader.String() + ` (owner "other-host", value "pod-a", since ` + since + "); waiting to lead, at most 300ms\n"
	if got.code != exitHeld || !strings.HasPrefix(got.stderr, want) || strings.Count(got.stderr, "waiting to lead") != 1 {
		t.Errorf("elect behind a leader: exit %d\nstderr %q\nwant a first line %q", got.code, got.stderr, want)
	}
	got = runCLI(t, env, "elect", "--ttl", "1s", "--wait", "300ms", "--quiet", "web", "pod-b", "--", "true")
	if got.code != exitHeld || strings.Contains(got.stderr, "waiting") {
		t.Errorf("--quiet: exit %d, stderr %q", got.code, got.stderr)
	}
	// Without --wait it waits for ever: the line has no bound, and the
	// leader's resign lets it lead.
	b := startCLI(t, env, "elect", "--ttl", "1s", "web", "pod-b", "--", "true")
	line := b.errOut.next(t, 10*time.Second)
	if want := strings.TrimSuffix(want, ", at most 300ms\n"); line != want {
		t.Errorf("elect without --wait: %q, want %q", line, want)
	}
	r.do("POST", "/v1/elections/web/resign", `{"session":"`+leader.String()+`","term":`+strconv.FormatUint(l.Term, 10)+`}`, nil)
	if code := b.wait(t, 10*time.Second); code != exitOK {
		t.Errorf("after the resign: exit %d, stderr %q", code, b.errOut)
	}
	// Nobody leads: nothing to say.
	if got := runCLI(t, env, "elect", "--ttl", "1s", "free", "v", "--", "true"); got.code != exitOK || got.stderr != "" {
		t.Errorf("elect of a free election: exit %d, stderr %q", got.code, got.stderr)
	}
}
