package e2e

import (
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/await"
)

// others returns the members of c other than the given ones.
func (c *cluster) others(not ...*member) []*member {
	var out []*member
next:
	for _, m := range c.members {
		for _, n := range not {
			if m == n {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// acquireRetrying acquires like an SDK: on a transport error or a 503 it
// retries the same request (safe: acquire is idempotent for a session) on
// the next live member, until it gets a definite answer (for at most 10s:
// then it returns the last transport error, nil after a 503).
func acquireRetrying(ms []*member, name string, body map[string]any) (reply, error) {
	var got reply
	var last error
	i := 0
	if _, ok := await.Within(10*time.Second, func() bool {
		m := ms[i%len(ms)]
		i++
		got, last = do("POST", m.clientURL+"/v1/locks/"+name+"/acquire", body)
		return last == nil && got.status != 503
	}); !ok {
		return reply{}, last
	}
	return got, nil
}

func TestLeaderSIGKILLKeepsLocksAndTokens(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.leader(c.members...)
	fol := c.others(lead)
	x, y := fol[0], fol[1]

	// Two sessions, opened on different members (followers forward).
	a := c.must("POST", x.clientURL+"/v1/sessions", map[string]any{"ttl": "30s", "owner": "a"}, 201).body["id"].(string)
	b := c.must("POST", lead.clientURL+"/v1/sessions", map[string]any{"ttl": "30s", "owner": "b"}, 201).body["id"].(string)

	ra := c.must("POST", x.clientURL+"/v1/locks/nightly-job/acquire", map[string]any{"session": a}, 200)
	tokenA := num(ra.body["token"])
	if tokenA == 0 {
		t.Fatalf("acquire gave no token: %v", ra)
	}
	if ra.header.Get("Raftlock-Leader") != lead.clientURL {
		t.Fatalf("Raftlock-Leader header %q, want %q", ra.header.Get("Raftlock-Leader"), lead.clientURL)
	}

	// B waits (through follower y, which forwards to the leader).
	type res struct {
		r   reply
		err error
	}
	bDone := make(chan res, 1)
	go func() {
		r, err := acquireRetrying([]*member{y, x}, "nightly-job", map[string]any{"session": b, "wait": "60s"})
		bDone <- res{r, err}
	}()
	await.True(t, 10*time.Second, "B queued, visible from the third member", func() bool {
		r, err := do("GET", y.clientURL+"/v1/locks/nightly-job", nil)
		if err != nil || r.status != 200 {
			return false
		}
		ws, _ := r.body["waiters"].([]any)
		s, tok := holderOf(r)
		return s == a && tok == tokenA && len(ws) == 1 && ws[0].(map[string]any)["session"] == b
	})

	// SIGKILL the leader.
	killedAt := time.Now()
	c.kill(lead)
	newLead := c.leader(x, y)
	if newLead == lead {
		t.Fatal("the killed member is still leader")
	}
	t.Logf("FIGURE: SIGKILL of leader %d to new leader %d agreed by both survivors: %v", lead.id, newLead.id, time.Since(killedAt).Round(time.Millisecond))

	// A's lock and token survived.
	r := c.must("GET", y.clientURL+"/v1/locks/nightly-job", nil, 200)
	if s, tok := holderOf(r); s != a || tok != tokenA {
		t.Fatalf("after failover the lock is %v, want holder %s with token %d", r, a, tokenA)
	}
	// A releases through a survivor; B is granted, with a larger token.
	c.must("POST", x.clientURL+"/v1/locks/nightly-job/release", map[string]any{"session": a, "token": tokenA}, 200)
	var got res
	select {
	case got = <-bDone:
	case <-time.After(60 * time.Second):
		t.Fatal("B was not granted after A released")
	}
	if got.err != nil || got.r.status != 200 {
		t.Fatalf("B's acquire: %v %v", got.r, got.err)
	}
	tokenB := num(got.r.body["token"])
	if tokenB <= tokenA || got.r.body["session"] != b {
		t.Fatalf("B granted %v, want session %s with a token above %d", got.r, b, tokenA)
	}

	// The killed member restarts from its data dir alone and catches up.
	restartAt := time.Now()
	c.start(lead, false)
	took := await.True(t, 30*time.Second, "the restarted member catches up", func() bool {
		r, err := do("GET", lead.clientURL+"/v1/locks/nightly-job?consistency=stale", nil)
		if err != nil || r.status != 200 {
			return false
		}
		s, tok := holderOf(r)
		return s == b && tok == tokenB
	})
	t.Logf("FIGURE: restart of member %d to caught up (stale read shows B's grant): %v (process start included)", lead.id, took.Round(time.Millisecond))
	_ = restartAt
	c.leader(c.members...)
}

func TestQuorumLossAnswers503AndKeepsAcknowledgedWrites(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.leader(c.members...)
	s := c.must("POST", lead.clientURL+"/v1/sessions", map[string]any{"ttl": "60s"}, 201).body["id"].(string)
	tokens := map[string]uint64{}
	for _, name := range []string{"a", "b/c", "d"} {
		r := c.must("POST", lead.clientURL+"/v1/locks/"+name+"/acquire", map[string]any{"session": s}, 200)
		tokens[name] = num(r.body["token"])
	}
	// The leader survives alone: it believes it leads until CheckQuorum
	// makes it step down, so this is the harder case for "no hang".
	survivor := lead
	for _, m := range c.others(survivor) {
		c.kill(m)
	}
	// Without a quorum a write answers 503 within its deadline (2 s here),
	// not a hang and not a success.
	start := time.Now()
	r, err := do("POST", survivor.clientURL+"/v1/sessions", map[string]any{"ttl": "10s"})
	if err != nil {
		t.Fatalf("write without quorum: %v after %v", err, time.Since(start))
	}
	if r.status != 503 {
		t.Fatalf("write without quorum: %v, want 503", r)
	}
	if e, _ := r.body["error"].(map[string]any); e == nil || e["code"] == "" {
		t.Fatalf("503 without a JSON error: %v", r)
	}
	t.Logf("FIGURE: write without quorum answered %d in %v", r.status, time.Since(start).Round(time.Millisecond))
	// A linearizable read cannot be served either; a stale one can.
	if r, err := do("GET", survivor.clientURL+"/v1/locks/a", nil); err != nil || r.status != 503 {
		t.Fatalf("linearizable read without quorum: %v %v, want 503", r, err)
	}
	// Everything acknowledged is still there after the restart.
	for _, m := range c.others(survivor) {
		c.start(m, false)
	}
	c.leader(c.members...)
	for _, m := range c.members {
		for name, tok := range tokens {
			r := c.must("GET", m.clientURL+"/v1/locks/"+name, nil, 200)
			if hs, ht := holderOf(r); hs != s || ht != tok {
				t.Fatalf("member %d: lock %s is %v, want %s with token %d", m.id, name, r, s, tok)
			}
		}
	}
	c.must("POST", survivor.clientURL+"/v1/sessions/"+s+"/keepalive", nil, 200)
}
