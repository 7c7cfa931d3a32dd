//go:build unix

package e2e

// TestChaos runs 3 raftlockd processes whose every directed peer link goes
// through its own TCP proxy (internal/tcpproxy; the wiring is described in
// chaos_net_test.go) and injects a seeded schedule of faults while client
// goroutines take locks, campaign in an election and write to a fenced
// resource through the REST API. Every operation is recorded with its
// precise outcome and checked with porcupine (internal/linearize) at the
// end, together with the resource's log, the convergence of every member to
// the same state, and progress after every fault.
//
// The clients: six workers on two exclusive locks; two in an election; a
// read-write lock ("chaos/rw") with two readers and a writer, each always
// in its own mode; three workers on a semaphore of two permits
// ("chaos/pool"; chaos_primitives_test.go). Lock holders write with their
// token; a shared holder's or a permit holder's write is fenced by the
// server's answer to POST …/check of its token just before the resource
// takes it (their tokens supersede nothing). Every check is recorded as a
// read of the lock or semaphore, so porcupine checks its answers too.
//
// Faults (each healed before the next one; the cluster must be healthy
// again, and a fresh session + lock must succeed, between faults): SIGKILL +
// restart of a member, SIGSTOP … SIGCONT of a member for longer than the
// session TTL, the leader isolated (both ways), the leader's outgoing or
// incoming messages blackholed, one-way and two-way cuts between two
// members, every link cut (no quorum anywhere), every link delayed, every
// connection of a member reset.
//
// Two subtests run the same schedule (same seed): "fenced", whose resource
// refuses writes with a token below one it has seen, must see no stale
// write accepted; "unfenced", whose resource accepts every write of a client
// that believes it holds the lock, must see at least one (a client that
// paused longer than its TTL writes after the next holder did), which shows
// that the test can see the anomaly fencing prevents. The same holds of
// the read-write lock's writer (a reader's write supersedes its token).
// Fenced, the resource takes no shared or permit holder's write that the
// check did not call current, and refuses, in each group, a late write of
// a holder whose pause outlived its session; unfenced, it takes one such.
//
// The default run plans 12 s of faults and takes about 25 s per subtest
// (50 s for both with -race on 2 cores). A longer soak, or another
// schedule:
//
//	go test ./e2e -race -run '^TestChaos$' -count=1 -v -chaos.duration=10m -chaos.seed=42
//
// A failing run prints the command that replays its schedule.

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/tcpproxy"
)

var (
	chaosSeed     = flag.Uint64("chaos.seed", 1, "seed of the chaos test's fault schedule and clients")
	chaosDump     = flag.Bool("chaos.dump", false, "dump every chaos history to a JSON file in $TMPDIR (always done when the test fails or the check takes over 5s)")
	chaosDuration = flag.Duration("chaos.duration", 12*time.Second, "planned fault time of each chaos subtest (faults and the quiet gaps after them; waiting for the cluster to heal comes on top)")
)

const (
	chaosTick         = "50ms" // election timeout 500 ms, minimum TTL 1 s
	chaosElection     = 500 * time.Millisecond
	chaosTTL          = 1500 * time.Millisecond // the clients' sessions
	chaosProgress     = 20 * chaosElection      // bound on "a fresh session + lock" after healing
	chaosCheckTimeout = 60 * time.Second        // porcupine
)

// fault is one entry of the schedule. Its target is picked when it runs
// (the leader, or the pick'th of the others), since who leads is only known
// then.
type fault struct {
	kind   string
	leader bool // the target is the leader (else a follower)
	pick   int  // which follower, or which pair of members
	dur    time.Duration
	delay  time.Duration // kind "delay"
	gap    time.Duration // quiet time once healed
}

const (
	faultKill      = "kill"              // SIGKILL, down for dur, restart
	faultStop      = "stop"              // SIGSTOP for dur (> TTL), SIGCONT
	faultIsolate   = "isolate-leader"    // the leader's links, both ways
	faultLeaderOut = "oneway-leader-out" // the leader's messages to the others
	faultLeaderIn  = "oneway-leader-in"  // the others' messages to the leader
	faultOneWay    = "oneway-pair"       // a → b
	faultPartition = "partition-pair"    // a ↔ b
	faultNoQuorum  = "isolate-all"       // every link, both ways: no quorum anywhere
	faultDelay     = "delay"             // every link
	faultReset     = "reset"             // every connection of a member closed
)

func (f fault) String() string {
	who := "follower"
	if f.leader {
		who = "leader"
	}
	switch f.kind {
	case faultKill, faultStop, faultReset:
		return fmt.Sprintf("%s %s for %v", f.kind, who, f.dur)
	case faultDelay:
		return fmt.Sprintf("%s %v for %v", f.kind, f.delay, f.dur)
	}
	return fmt.Sprintf("%s for %v", f.kind, f.dur)
}

// planFaults draws the schedule from seed: every kind once, in a seeded
// order, then seeded extra faults until the planned time reaches total.
func planFaults(seed uint64, total time.Duration) []fault {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	between := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)).Round(10*time.Millisecond)
	}
	draw := func(kind string) fault {
		f := fault{kind: kind, leader: rng.IntN(2) == 0, pick: rng.IntN(6), gap: between(300*time.Millisecond, time.Second)}
		switch kind {
		case faultKill:
			f.dur = between(300*time.Millisecond, 1500*time.Millisecond)
		case faultStop:
			f.dur = between(chaosTTL+500*time.Millisecond, chaosTTL+1500*time.Millisecond)
		case faultDelay:
			f.dur = between(time.Second, 2500*time.Millisecond)
			f.delay = between(20*time.Millisecond, 250*time.Millisecond)
		case faultReset:
			f.dur = 0
		default:
			f.dur = between(time.Second, 2500*time.Millisecond)
		}
		return f
	}
	kinds := []string{faultKill, faultStop, faultIsolate, faultLeaderOut, faultLeaderIn, faultOneWay, faultPartition, faultNoQuorum, faultDelay, faultReset}
	var plan []fault
	var planned time.Duration
	for _, i := range rng.Perm(len(kinds)) {
		f := draw(kinds[i])
		plan = append(plan, f)
		planned += f.dur + f.gap
	}
	for i := 0; i < 10000 && planned < total; i++ {
		f := draw(kinds[rng.IntN(len(kinds))])
		plan = append(plan, f)
		planned += f.dur + f.gap
	}
	return plan
}

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: not in -short")
	}
	seed := *chaosSeed
	plan := planFaults(seed, *chaosDuration)
	var lines []string
	for i, f := range plan {
		lines = append(lines, fmt.Sprintf("  %2d. %v, then %v quiet", i+1, f, f.gap))
	}
	t.Logf("seed %d, %d faults:\n%s", seed, len(plan), strings.Join(lines, "\n"))
	for _, fenced := range []bool{true, false} {
		name := "unfenced"
		if fenced {
			name = "fenced"
		}
		t.Run(name, func(t *testing.T) {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("replay: go test ./e2e -race -count=1 -v -run '^TestChaos$/^%s$' -chaos.seed=%d -chaos.duration=%v", name, seed, *chaosDuration)
				}
			})
			runChaos(t, seed, plan, fenced)
		})
	}
}

func runChaos(t *testing.T, seed uint64, plan []fault, fenced bool) {
	began := time.Now()
	c, cn := startChaosCluster(t, 3, chaosTick)
	c.leader(c.members...)
	if st := cn.stats(); st.Accepted == 0 {
		t.Fatalf("no peer connection went through the proxies: %+v", st)
	}
	r := newChaosRun(t, c, cn, seed, chaosTTL, fenced)
	r.awaitPrimitives()

	// The clients.
	soft, stopSoft := context.WithCancel(context.Background())
	hard, stopHard := context.WithCancel(context.Background())
	defer stopHard()
	defer stopSoft()
	var workers, keepers sync.WaitGroup
	start := func(w *worker, run func()) {
		workers.Add(1)
		keepers.Add(1)
		krng := rand.New(rand.NewPCG(seed, uint64(1000+w.id)))
		go func() { defer keepers.Done(); w.keepAlives(krng) }()
		go func() { defer workers.Done(); run() }()
	}
	newWorker := func(id int) worker {
		return worker{r: r, id: id, rng: rand.New(rand.NewPCG(seed, uint64(id))), owner: fmt.Sprintf("chaos-%d", id), soft: soft, hard: hard}
	}
	lockNames := []string{"chaos/a", "chaos/b"}
	for i := 0; i < 6; i++ {
		lw := &lockWorker{worker: newWorker(i), names: lockNames, pauseP: 0.06, pauseAt: map[int]bool{}}
		if i < 2 {
			lw.pauseAt[1] = true // certain pauses, on top of the random ones
		}
		start(&lw.worker, lw.run)
	}
	for i := 6; i < 8; i++ {
		ew := &electionWorker{worker: newWorker(i), name: "chaos-leader"}
		start(&ew.worker, ew.run)
	}
	// A read-write lock: two readers, one writer, each always in its
	// mode. A semaphore of two permits for three workers. Each worker's
	// second grant pauses, as do some others.
	rw := []*lockWorker{
		{worker: newWorker(8), names: []string{"chaos/rw"}, mode: holdShared, group: "rw-reader"},
		{worker: newWorker(9), names: []string{"chaos/rw"}, mode: holdShared, group: "rw-reader"},
		{worker: newWorker(10), names: []string{"chaos/rw"}, mode: holdExclusive, group: "rw-writer"},
	}
	for i := 11; i < 14; i++ {
		rw = append(rw, &lockWorker{worker: newWorker(i), names: []string{"chaos/pool"}, mode: holdPermit, limit: 2, group: "sem"})
	}
	for _, lw := range rw {
		lw.pauseP, lw.pauseAt = 0.06, map[int]bool{1: true}
		start(&lw.worker, lw.run)
	}

	// Stop the clients: no new operations (pauses end), then abandon what
	// is in flight. Also when the test fails half-way.
	stopped := false
	stopClients := func() {
		if stopped {
			return
		}
		stopped = true
		stopSoft()
		if !waitTimeout(&workers, 30*time.Second) {
			t.Errorf("the clients did not finish within 30s")
		}
		stopHard()
		if !waitTimeout(&keepers, 30*time.Second) {
			t.Errorf("the keep-alives did not stop within 30s")
		}
	}
	defer stopClients()

	// The schedule.
	var maxProgress time.Duration
	for i, f := range plan {
		if t.Failed() {
			break
		}
		before := r.leaderStatus()
		healed := r.inject(i, f, before)
		took := r.progress(fmt.Sprintf("chaos-probe/%d", i), healed)
		maxProgress = max(maxProgress, took)
		c.leader(c.members...)
		after := r.leaderStatus()
		if after.Term != before.Term {
			r.count("leader changes (term moved)", 1)
		}
		t.Logf("   leader %d term %d before, leader %d term %d after; fresh session + lock %v after healing",
			before.Leader, before.Term, after.Leader, after.Term, took.Round(time.Millisecond))
		sleep(context.Background(), f.gap)
	}
	scheduleDone := time.Now()
	stopClients()
	clientsStopped := time.Now()

	// Every member reaches the same applied index, and then shows the same
	// state; a fresh session and lock still work.
	applied := r.converge()
	r.progress("chaos-probe/final", time.Now())

	// The history is linearizable.
	checkStart := time.Now()
	res := r.hist.Check(chaosCheckTimeout + *chaosDuration)
	checkTook := time.Since(checkStart)
	if !res.Ok || checkTook > 5*time.Second || *chaosDump || t.Failed() {
		if name, err := r.dump(); err == nil {
			t.Logf("history (%d operations, check took %v) dumped to %s", res.Ops, checkTook.Round(time.Millisecond), name)
		}
	}
	if !res.Ok {
		f, err := os.CreateTemp("", "raftlock-chaos-*.html")
		if err == nil {
			if verr := r.hist.Visualize(f); verr == nil {
				t.Logf("porcupine visualization: %s", f.Name())
			}
			f.Close()
		}
		t.Errorf("history of %d operations is not linearizable (timed out: %v): %s", res.Ops, res.TimedOut, res.Failed)
	}

	// The resource.
	stale := r.store.check(t)
	r.store.mu.Lock()
	accepted, rejected := len(r.store.accepted), len(r.store.rejected)
	r.store.mu.Unlock()
	if fenced {
		if len(stale) > 0 {
			t.Errorf("the fenced resource accepted %d stale writes, the first %+v", len(stale), stale[0])
		}
		if rejected == 0 {
			t.Errorf("the fenced resource rejected no stale write: the pauses did not produce one (is the test still able to see the anomaly?)")
		}
	} else if len(stale) == 0 {
		t.Errorf("the unfenced resource shows no anomaly: no write by a client whose lock had been granted to a higher token was seen, so the test cannot tell fencing from no fencing")
	}
	// The read-write lock's writer is fenced by its token like the lock
	// workers, against the readers' writes too: its late writes show.
	writerLate := 0
	if fenced {
		r.store.mu.Lock()
		for _, w := range r.store.rejected {
			if w.group == "rw-writer" && w.paused {
				writerLate++
			}
		}
		r.store.mu.Unlock()
		if writerLate == 0 {
			t.Errorf("the fenced resource refused no late write of the read-write lock's writer (after a pause, once a reader had written)")
		}
	} else {
		for _, w := range stale {
			if w.group == "rw-writer" {
				writerLate++
			}
		}
		if writerLate == 0 {
			t.Errorf("the unfenced resource took no stale write of the read-write lock's writer: the test cannot tell fencing from no fencing there")
		}
	}
	checked := r.checkCheckedWrites(fenced, []string{"rw-reader", "sem"})

	// The members' logs: no panic, no internal error.
	logSummary := r.scanLogs()

	ns := r.counted("fault ")
	st := cn.stats()
	t.Logf("FIGURE: seed %d, fenced %v: %d faults injected (%s); %d of them moved the term", seed, fenced, len(plan), sortedCounts(ns), r.counted("leader changes")[" (term moved)"])
	t.Logf("FIGURE: operations recorded %d (%s)", res.Ops, sortedCounts(r.counted("op ")))
	t.Logf("FIGURE: sessions %s; client events: %s", sortedCounts(r.counted("session ")), sortedCounts(r.countedAll("client ", "write ")))
	if vb := r.counted("client via batch "); vb[api.BatchAcquire]+vb[api.BatchRelease] == 0 {
		t.Errorf("no try or release went through POST /v1/batch")
	}
	t.Logf("FIGURE: resource writes accepted %d, rejected %d, stale exclusive writes accepted (anomalies) %d", accepted, rejected, len(stale))
	t.Logf("FIGURE: late writes of the read-write lock's writer refused (fenced) or stale but taken (unfenced): %d", writerLate)
	t.Logf("FIGURE: checked writes (shared holds, permits): %s", checked)
	t.Logf("FIGURE: porcupine: ok %v, %d partitions, %v", res.Ok, res.Partitions, checkTook.Round(time.Millisecond))
	t.Logf("FIGURE: slowest progress after healing (fresh session + lock): %v (bound %v); all members converged at applied index %d", maxProgress.Round(time.Millisecond), chaosProgress, applied)
	t.Logf("FIGURE: proxies: %d connections, %d reset, %d refused, %d failed dials, %d bytes up, %d bytes down", st.Accepted, st.Reset, st.Refused, st.Failed, st.BytesUp, st.BytesDown)
	t.Logf("FIGURE: warnings and errors in the members' logs: %s", logSummary)
	t.Logf("FIGURE: wall time %v (schedule %v, stopping clients %v, checks %v)", time.Since(began).Round(time.Millisecond),
		scheduleDone.Sub(began).Round(time.Millisecond), clientsStopped.Sub(scheduleDone).Round(time.Millisecond), time.Since(clientsStopped).Round(time.Millisecond))
}

func (r *chaosRun) countedAll(prefixes ...string) map[string]int {
	out := map[string]int{}
	for _, p := range prefixes {
		for k, v := range r.counted(p) {
			out[p+k] = v
		}
	}
	return out
}

// waitTimeout waits for wg for at most d and reports whether it was done.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// leaderStatus waits until the members agree on a leader and returns the
// leader's status.
func (r *chaosRun) leaderStatus() api.Status {
	lead := r.c.leader(r.c.members...)
	res := r.rest(context.Background(), lead, "GET", "/v1/status", nil, 5*time.Second)
	st, ok := decodeJSON[api.Status](res.body)
	if !ok {
		r.t.Fatalf("status of member %d: %v", lead.id, res)
	}
	return st
}

// inject runs fault f and heals it; it returns when it was healed. before
// is the leader's status just before.
func (r *chaosRun) inject(i int, f fault, before api.Status) time.Time {
	c, cn := r.c, r.cn
	var lead *member
	for _, m := range c.members {
		if uint64(m.id) == before.Leader {
			lead = m
		}
	}
	if lead == nil {
		r.t.Fatalf("leader %d is not a member", before.Leader)
	}
	others := c.others(lead)
	target := lead
	if !f.leader {
		target = others[f.pick%len(others)]
	}
	blackhole := tcpproxy.Link{Blackhole: true}
	// pair is the pick'th ordered pair of distinct members.
	pair := func() (a, b *member) {
		n := len(c.members)
		a = c.members[(f.pick/(n-1))%n]
		b = c.members[(a.id+f.pick%(n-1))%n] // never a itself
		return a, b
	}
	var what string
	switch f.kind {
	case faultKill:
		what = fmt.Sprintf("SIGKILL member %d (leader %d) for %v, restart", target.id, lead.id, f.dur)
		c.kill(target)
		sleep(context.Background(), f.dur)
		c.start(target, false)
	case faultStop:
		what = fmt.Sprintf("SIGSTOP member %d (leader %d) for %v, SIGCONT", target.id, lead.id, f.dur)
		if err := target.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			r.t.Fatalf("SIGSTOP member %d: %v", target.id, err)
		}
		sleep(context.Background(), f.dur)
		if err := target.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			r.t.Fatalf("SIGCONT member %d: %v", target.id, err)
		}
	case faultIsolate, faultLeaderOut, faultLeaderIn:
		what = fmt.Sprintf("%s: leader %d for %v", f.kind, lead.id, f.dur)
		for _, o := range others {
			if f.kind != faultLeaderIn {
				cn.setLink(lead.id, o.id, blackhole)
			}
			if f.kind != faultLeaderOut {
				cn.setLink(o.id, lead.id, blackhole)
			}
		}
		sleep(context.Background(), f.dur)
	case faultOneWay, faultPartition:
		a, b := pair()
		what = fmt.Sprintf("%s: %d → %d for %v (leader %d)", f.kind, a.id, b.id, f.dur, lead.id)
		cn.setLink(a.id, b.id, blackhole)
		if f.kind == faultPartition {
			what = fmt.Sprintf("%s: %d ↔ %d for %v (leader %d)", f.kind, a.id, b.id, f.dur, lead.id)
			cn.setLink(b.id, a.id, blackhole)
		}
		sleep(context.Background(), f.dur)
	case faultDelay, faultNoQuorum:
		l := tcpproxy.Link{Delay: f.delay}
		what = fmt.Sprintf("delay every link by %v for %v", f.delay, f.dur)
		if f.kind == faultNoQuorum {
			l, what = blackhole, fmt.Sprintf("%s: every link both ways for %v (leader %d)", f.kind, f.dur, lead.id)
		}
		for _, a := range c.members {
			for _, b := range c.members {
				if a != b {
					cn.setLink(a.id, b.id, l)
				}
			}
		}
		sleep(context.Background(), f.dur)
	case faultReset:
		n := cn.reset(target.id)
		what = fmt.Sprintf("reset the %d peer connections of member %d (leader %d)", n, target.id, lead.id)
	default:
		r.t.Fatalf("unknown fault kind %q", f.kind)
	}
	cn.heal()
	r.count("fault "+f.kind, 1)
	r.t.Logf("fault %d at %v: %s; healed", i+1, time.Since(r.start).Round(time.Millisecond), what)
	return time.Now()
}

// progress checks that a fresh session can take a fresh lock within
// chaosProgress of healedAt, and returns how long it took.
func (r *chaosRun) progress(name string, healedAt time.Time) time.Duration {
	ctx := context.Background()
	var sess api.SessionID
	var last restResult
	var took time.Duration
	i := 0
	if _, ok := await.Within(time.Until(healedAt.Add(chaosProgress)), func() bool {
		m := r.c.members[i%len(r.c.members)]
		i++
		if sess == 0 {
			res := r.rest(ctx, m, "POST", "/v1/sessions", api.CreateSessionRequest{TTL: api.Duration(2 * time.Second), Owner: "probe"}, time.Second)
			if s, ok := decodeJSON[api.SessionResponse](res.body); ok && res.status == http.StatusCreated {
				sess = s.ID
				r.addSession(sess)
			}
			last = res
		}
		if sess != 0 {
			res := r.rest(ctx, m, "POST", api.LockPath(name)+"/acquire", api.AcquireRequest{Session: sess}, time.Second)
			if g, ok := decodeJSON[api.LockGrant](res.body); ok && res.status == http.StatusOK && g.Session == sess {
				took = time.Since(healedAt)
				r.rest(ctx, m, "DELETE", api.SessionPath(sess), nil, time.Second)
				return true
			}
			if res.status == http.StatusNotFound {
				sess = 0 // expired meanwhile
			}
			last = res
		}
		return false
	}); ok {
		return took
	}
	r.t.Errorf("no progress within %v of healing: a fresh session + lock %q did not succeed (last answer: %v)", chaosProgress, name, last)
	return chaosProgress
}

// converge waits until every member has applied the same index (and knows
// nothing more committed), then compares stale reads of the locks,
// elections and every session from each member: they must be identical. It
// returns the applied index.
func (r *chaosRun) converge() uint64 {
	ctx := context.Background()
	statuses := func() ([]api.Status, bool) {
		var out []api.Status
		for _, m := range r.c.members {
			res := r.rest(ctx, m, "GET", "/v1/status", nil, 2*time.Second)
			st, ok := decodeJSON[api.Status](res.body)
			if !ok || res.status != http.StatusOK {
				return nil, false
			}
			out = append(out, st)
		}
		return out, true
	}
	same := func(sts []api.Status) bool {
		for _, st := range sts {
			if st.Applied != sts[0].Applied || st.Commit != st.Applied || st.Leader == 0 || st.Leader != sts[0].Leader {
				return false
			}
		}
		return true
	}
	r.mu.Lock()
	sessions := slices.Clone(r.sessions)
	r.mu.Unlock()
	slices.Sort(sessions)
	state := func(m *member) string {
		var b bytes.Buffer
		paths := []string{"/v1/locks?consistency=stale", "/v1/elections?consistency=stale", "/v1/semaphores?consistency=stale"}
		for _, s := range sessions {
			paths = append(paths, api.SessionPath(s)+"?consistency=stale")
		}
		for _, p := range paths {
			res := r.rest(ctx, m, "GET", p, nil, 2*time.Second)
			fmt.Fprintf(&b, "GET %s: %d %s\n", p, res.status, bytes.TrimSpace(res.body))
		}
		return b.String()
	}
	var lastSts []api.Status
	var applied uint64
	if _, ok := await.Within(60*time.Second, func() bool {
		sts, ok := statuses()
		lastSts = sts
		if !ok || !same(sts) {
			return false
		}
		var states []string
		for _, m := range r.c.members {
			states = append(states, state(m))
		}
		after, ok := statuses()
		if !ok || !same(after) || after[0].Applied != sts[0].Applied {
			return false // something was applied meanwhile (an expiry): again
		}
		for k := 1; k < len(states); k++ {
			if states[k] != states[0] {
				r.t.Errorf("members %d and %d applied index %d but show different states:\n%s",
					r.c.members[0].id, r.c.members[k].id, sts[0].Applied, diffLines(states[0], states[k]))
			}
		}
		applied = sts[0].Applied
		return true
	}); !ok {
		r.t.Errorf("the members did not reach the same applied index within 60s: %+v", lastSts)
		return 0
	}
	r.t.Logf("all members at applied index %d show the same state (%d locks/elections/semaphores/sessions reads each)", applied, len(sessions)+3)
	return applied
}

// scanLogs reads the members' logs: a panic or an internal error fails the
// test; warnings and errors are summarized by message.
func (r *chaosRun) scanLogs() string {
	counts := map[string]int{}
	for _, m := range r.c.members {
		b, err := os.ReadFile(m.logPath)
		if err != nil {
			r.t.Errorf("log of member %d: %v", m.id, err)
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "panic") || strings.Contains(line, "internal error") {
				r.t.Errorf("member %d logged: %s", m.id, line)
			}
			level, rest, ok := strings.Cut(line, " level=")
			if !ok || level == "" {
				continue
			}
			lvl, rest, _ := strings.Cut(rest, " ")
			if lvl != "WARN" && lvl != "ERROR" {
				continue
			}
			msg := strings.TrimPrefix(rest, "msg=")
			if strings.HasPrefix(msg, `"`) {
				if i := strings.Index(msg[1:], `"`); i >= 0 {
					msg = msg[1 : i+1]
				}
			} else {
				msg, _, _ = strings.Cut(msg, " ")
			}
			counts[lvl+" "+msg]++
		}
	}
	if len(counts) == 0 {
		return "none"
	}
	return sortedCounts(counts)
}

// diffLines shows the lines of a and b that differ.
func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, "- "+x, "+ "+y)
		}
	}
	return strings.Join(out, "\n")
}
