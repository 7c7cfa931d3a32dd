package raftnode

// The clients of the deterministic simulation (see sim_test.go): each opens
// sessions, keeps them alive, acquires locks (exclusive or shared) and
// semaphore permits (try and wait), cancels, releases, campaigns,
// proclaims, resigns and reads, through proposals to the node it believes
// leads, and records every call and answer for the linearizability check.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/raftlock/raftlock/internal/linearize"
	"github.com/raftlock/raftlock/lock"
)

var (
	simLockNames     = [...]string{"a", "b"}
	simElectionNames = [...]string{"x", "y"}
	// simSemNames are the counting semaphores; every client asks for a
	// permit with the run's limit (sim.semLimit), so that limit_mismatch
	// (not modelled) never happens.
	simSemNames = [...]string{"s"}
)

const (
	simLocks     = len(simLockNames)
	simElections = len(simElectionNames)
	simSems      = len(simSemNames)
	// simSharedLock is the lock that the clients with an even ID take in
	// shared mode (the others, and every client for the other locks,
	// exclusively). A client's mode per lock is fixed for its life, so a
	// session never asks one lock in both modes (mode_mismatch, which the
	// model does not know).
	simSharedLock = 1
	// simOpTimeout is how long a client waits for an answer.
	simOpTimeout = 1500 * simMs
)

// simRequest is one proposal or linearizable read sent to one node.
type simRequest struct {
	c      *simClient // nil for the final probe
	node   int
	inc    int
	cmd    *lock.Command
	p      *proposal
	read   func(m *lock.Machine)
	r      *readReq
	cancel context.CancelFunc // ends a read's context
	handed bool               // the node took it (it may have happened)
	done   bool
	cb     func(r proposalResult, node int)
}

// sendRequest sends rq to node; the answer, an error or the timeout calls
// rq.cb exactly once.
func (s *sim) sendRequest(rq *simRequest, node int, timeout int64) {
	rq.node = node
	s.requests = append(s.requests, rq)
	s.schedule(s.now+100+s.rng.Int64N(900), &simEvent{kind: evRequest, rq: rq})
	s.schedule(s.now+timeout, &simEvent{kind: evTimeout, rq: rq})
}

func (s *sim) arrive(rq *simRequest) {
	if rq.done {
		return
	}
	sn := s.nodes[rq.node]
	if sn.n == nil {
		s.complete(rq, proposalResult{err: errSimRefused})
		return
	}
	rq.inc = sn.inc
	s.enqueue(sn, simInput{rq: rq})
}

// requestInput is the input of the node's loop that Propose and Read would
// send for rq. A read's context ends when rq completes (its answer, or the
// client's timeout), so that the node drops a read nobody waits for.
func (s *sim) requestInput(rq *simRequest) input {
	if rq.read != nil {
		ctx, cancel := context.WithCancel(context.Background())
		rq.cancel = cancel
		rq.r = &readReq{ctx: ctx, fn: rq.read, done: make(chan error, 1)}
		return input{read: rq.r}
	}
	rq.p = &proposal{cmd: rq.cmd, resC: make(chan proposalResult, 1)}
	return input{prop: rq.p}
}

// pollRequests delivers the answers that node sn gave.
func (s *sim) pollRequests(sn *simNode) {
	for _, rq := range slices.Clone(s.requests) {
		if rq.done || !rq.handed || rq.node != sn.idx || rq.inc != sn.inc {
			continue
		}
		if rq.r != nil {
			select {
			case err := <-rq.r.done:
				s.complete(rq, proposalResult{err: err})
			default:
			}
			continue
		}
		select {
		case r := <-rq.p.resC:
			s.complete(rq, r)
		default:
		}
	}
}

func (s *sim) complete(rq *simRequest, r proposalResult) {
	rq.done = true
	if rq.cancel != nil {
		rq.cancel()
	}
	if i := slices.Index(s.requests, rq); i >= 0 {
		s.requests = slices.Delete(s.requests, i, i+1)
	}
	rq.cb(r, rq.node)
}

// after runs f at now+d.
func (s *sim) after(d int64, f func()) {
	s.schedule(s.now+d, &simEvent{kind: evFunc, fn: f})
}

// ---- history

// simOp is one recorded client operation.
type simOp struct {
	client   int
	call     int64
	ret      int64
	in       linearize.Input
	out      linearize.Output
	returned bool
	dropped  bool // certainly never happened: left out of the history
}

func (s *sim) call(client int, in linearize.Input) *simOp {
	s.hclock++
	op := &simOp{client: client, call: s.hclock, in: in}
	s.ops = append(s.ops, op)
	return op
}

func (s *sim) ret(op *simOp, out linearize.Output) {
	s.hclock++
	op.ret, op.out, op.returned = s.hclock, out, true
}

// countOps fills the statistics of the recorded operations.
func (s *sim) countOps() {
	s.stats.ops, s.stats.opsDropped, s.stats.opsUnknown = 0, 0, 0
	s.stats.sharedOps, s.stats.semOps = 0, 0
	for _, op := range s.ops {
		switch {
		case op.dropped:
			s.stats.opsDropped++
		case !op.returned:
			s.stats.opsUnknown++
			s.stats.ops++
		default:
			s.stats.ops++
			switch op.in.Kind {
			case linearize.SemAcquire, linearize.SemTryAcquire, linearize.SemRelease, linearize.GetSemaphore:
				s.stats.semOps++
			case linearize.Acquire, linearize.TryAcquire:
				if op.in.Shared {
					s.stats.sharedOps++
				}
			}
		}
	}
}

func (s *sim) checkHistory() {
	h := linearize.NewHistory()
	for _, op := range s.ops {
		if op.dropped {
			continue
		}
		id := h.Call(op.client, op.call, op.in)
		if op.returned {
			h.Return(id, op.ret, op.out)
		}
	}
	res := h.Check(simLinearizeTimeout)
	s.stats.linOps, s.stats.linPartitions = res.Ops, res.Partitions
	switch {
	case res.TimedOut:
		s.fail("linearizability", "no verdict within %v (a history too hard to check; make runs shorter): %s", simLinearizeTimeout, res.Failed)
	case !res.Ok:
		s.fail("linearizability", "%s", res.Failed)
		if s.opt.trace != nil {
			s.dumpHistory()
		}
	}
}

// dumpHistory prints the recorded operations (with -sim.trace).
func (s *sim) dumpHistory() {
	for i, op := range s.ops {
		if op.dropped {
			continue
		}
		out := "unknown"
		if op.returned {
			out = fmt.Sprintf("%v@%d %+v", op.out.Kind, op.ret, op.out)
		}
		s.opt.trace(fmt.Sprintf("op %d client %d call@%d %v %+v -> %s", i, op.client, op.call, op.in.Kind, op.in, out))
	}
}

// simLinearizeTimeout bounds the check of one lock, semaphore or election.
const simLinearizeTimeout = 60 * time.Second

// ---- clients

type simOutcome uint8

const (
	outOK      simOutcome = iota
	outFailed             // certainly not applied
	outUnknown            // may have been applied, or may still be
)

// simRes is what a client acquires: a lock, a semaphore's permit or an
// election's leadership (each by its index in simLockNames, simSemNames
// or simElectionNames).
type simRes uint8

const (
	resLock simRes = iota
	resSem
	resElection
)

// count is how many resources of kind r the clients use.
func (r simRes) count() int {
	switch r {
	case resLock:
		return simLocks
	case resSem:
		return simSems
	}
	return simElections
}

// name is the name of resource i of kind r.
func (r simRes) name(i int) string {
	switch r {
	case resLock:
		return simLockNames[i]
	case resSem:
		return simSemNames[i]
	}
	return simElectionNames[i]
}

type simClient struct {
	s     *sim
	id    int
	host  *simHost
	hint  int // the node it sends to
	sess  uint64
	ttl   int64 // µs
	held  [simLocks]uint64
	stale [simLocks]uint64 // a token it held before
	// shared is the mode it asks each lock in (fixed: see simSharedLock).
	shared      [simLocks]bool
	permit      [simSems]uint64
	stalePermit [simSems]uint64 // a permit's token it held before
	lead        [simElections]uint64
	old         [simElections]uint64 // a term it led with before
	// retryVal is the value of a campaign whose outcome is not known
	// (the session may lead or wait with it): a new campaign retries it.
	retryVal [simElections]string
	busy     bool
	dead     bool
	vals     int
	// epoch counts the client's crashes: answers to an earlier life are
	// never seen.
	epoch int
}

// slots returns where the client keeps the token (term) of its hold of
// resource i of kind r, and the one it held before.
func (c *simClient) slots(r simRes, i int) (held, stale *uint64) {
	switch r {
	case resLock:
		return &c.held[i], &c.stale[i]
	case resSem:
		return &c.permit[i], &c.stalePermit[i]
	}
	return &c.lead[i], &c.old[i]
}

func (c *simClient) next() {
	c.busy = false
	c.s.schedule(c.s.now+10*simMs+c.s.rng.Int64N(250*simMs), &simEvent{kind: evClient, client: c})
}

func definite(err error) bool {
	return errors.Is(err, errSimRefused) || errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader)
}

// propose sends cmd to the node the client believes leads; a definite
// refusal (not leader, no leader, connection refused) is retried on the
// node it names or another, up to three hops. done gets the outcome and the
// node that answered.
func (c *simClient) propose(cmd *lock.Command, timeout int64, done func(res lock.Result, idx uint64, out simOutcome, node int)) {
	c.proposeHop(cmd, timeout, 0, c.epoch, done)
}

func (c *simClient) proposeHop(cmd *lock.Command, timeout int64, hop, epoch int, done func(lock.Result, uint64, simOutcome, int)) {
	s := c.s
	if c.epoch != epoch {
		return
	}
	send := *cmd
	send.Sessions = slices.Clone(cmd.Sessions)
	rq := &simRequest{c: c, cmd: &send}
	rq.cb = func(r proposalResult, node int) {
		if r.err == nil {
			s.chk.ack(r.index, rq.cmd)
		}
		if c.epoch != epoch {
			return // the client crashed meanwhile
		}
		switch {
		case r.err == nil:
			done(r.res, r.index, outOK, node)
		case errors.Is(r.err, ErrClusterVersion):
			// Shared holds and semaphores need cluster version 6: the
			// leader proposed nothing. The SDK waits until the version
			// allows; this client does something else meanwhile.
			s.stats.versionRefused++
			done(lock.Result{}, 0, outFailed, node)
		case definite(r.err):
			c.rehint(r.err, node)
			if hop >= 3 {
				done(lock.Result{}, 0, outFailed, node)
				return
			}
			s.after(10*simMs+s.rng.Int64N(150*simMs), func() { c.proposeHop(cmd, timeout, hop+1, epoch, done) })
		default:
			c.hint = s.rng.IntN(len(s.nodes))
			done(lock.Result{}, 0, outUnknown, node)
		}
	}
	s.sendRequest(rq, c.hint, timeout)
}

// rehint follows a definite refusal by node: to the leader it named, or
// to a node at random.
func (c *simClient) rehint(err error, node int) {
	s := c.s
	var nle *NotLeaderError
	if errors.As(err, &nle) && nle.LeaderID != 0 && nle.LeaderID != s.nodes[node].id {
		if l := s.byID[nle.LeaderID]; l != nil {
			c.hint = l.idx
			return
		}
	}
	c.hint = s.rng.IntN(len(s.nodes))
}

// read runs fn on a node after a ReadIndex round.
func (c *simClient) read(node int, fn func(m *lock.Machine), done func(ok bool)) {
	rq := &simRequest{c: c, read: fn}
	epoch := c.epoch
	rq.cb = func(r proposalResult, _ int) {
		if c.epoch == epoch {
			done(r.err == nil)
		}
	}
	c.s.sendRequest(rq, node, simOpTimeout)
}

func (c *simClient) act() {
	s := c.s
	if c.busy || c.dead || s.calm {
		return
	}
	c.busy = true
	s.note("client", uint64(c.id))
	if c.sess == 0 {
		c.openSession()
		return
	}
	r := s.rng.IntN(100)
	li, ei, si := s.rng.IntN(simLocks), s.rng.IntN(simElections), s.rng.IntN(simSems)
	switch {
	case r < 18:
		c.acquire(resLock, li, s.rng.IntN(5) < 3)
	case r < 30:
		if !c.releaseSome(resLock, li) {
			c.readLock(li)
		}
	case r < 38:
		c.acquire(resSem, si, s.rng.IntN(5) < 3)
	case r < 46:
		if !c.releaseSome(resSem, si) {
			c.readSemaphore(si)
		}
	case r < 55:
		if c.lead[ei] != 0 {
			c.proclaim(ei)
		} else {
			c.campaign(ei, s.rng.IntN(2) == 0)
		}
	case r < 60:
		c.proclaim(ei)
	case r < 65:
		c.resign(ei)
	case r < 74:
		c.readLock(li)
	case r < 78:
		c.readSemaphore(si)
	case r < 86:
		c.readElection(ei)
	case r < 90:
		c.closeSession()
	case r < 92:
		c.die()
	default:
		c.next()
	}
}

// releaseSome releases (or gives back) what the client holds, or held
// before, of kind r, starting at index i; false if there is nothing.
func (c *simClient) releaseSome(r simRes, i int) bool {
	n := r.count()
	for k := range n {
		j := (i + k) % n
		if held, stale := c.slots(r, j); *held != 0 || *stale != 0 {
			c.release(r, j)
			return true
		}
	}
	return false
}

func (c *simClient) openSession() {
	ttl := c.host.ttl
	sent := c.s.now
	c.propose(&lock.Command{Op: lock.OpOpenSession, TTL: ttl * 1000, Owner: fmt.Sprintf("client-%d", c.id)}, simOpTimeout,
		func(res lock.Result, _ uint64, out simOutcome, _ int) {
			if out == outOK && res.Code == lock.CodeOK {
				c.s.chk.renewed(res.Session, sent, ttl)
			}
			if out == outOK && res.Code == lock.CodeOK && !c.dead {
				c.sess, c.ttl = res.Session, ttl
				c.held, c.stale, c.lead, c.old = [simLocks]uint64{}, [simLocks]uint64{}, [simElections]uint64{}, [simElections]uint64{}
				c.permit, c.stalePermit = [simSems]uint64{}, [simSems]uint64{}
			}
			c.next()
		})
}

// lost forgets session sess: it expired or was closed (or the client gave
// up on it).
func (c *simClient) lost(sess uint64) {
	if c.sess != sess {
		return
	}
	c.sess = 0
	c.held, c.permit, c.lead = [simLocks]uint64{}, [simSems]uint64{}, [simElections]uint64{}
	c.retryVal = [simElections]string{}
}

// simHost is a client process: it renews the sessions of all its clients
// with one batched keep-alive every TTL/3, as the Go SDK renews the
// sessions of one Client, so that they share deadlines; when it crashes,
// all its clients vanish at once.
type simHost struct {
	s       *sim
	id      int
	clients []*simClient
	ttl     int64      // of its sessions, µs
	ka      *simClient // sends the keep-alives
	busy    bool
}

// keepAlive renews the sessions of the host's clients; each renewal is a
// KeepAlive operation on the lane of its client's keep-alives.
func (h *simHost) keepAlive() {
	s := h.s
	if s.calm {
		return
	}
	period := h.ttl / 3
	s.schedule(s.now+period-period/10+s.rng.Int64N(period/5+1), &simEvent{kind: evKeepAlive, host: h})
	if h.busy {
		return
	}
	var ids []uint64
	var ops []*simOp
	var owners []*simClient
	var epochs []int
	for _, c := range h.clients {
		if !c.dead && c.sess != 0 {
			ids = append(ids, c.sess)
			ops = append(ops, s.call(1000+c.id, linearize.Input{Kind: linearize.KeepAlive, Session: c.sess}))
			owners = append(owners, c)
			epochs = append(epochs, c.epoch)
		}
	}
	if len(ids) == 0 {
		return
	}
	h.busy = true
	sent := s.now
	h.ka.propose(&lock.Command{Op: lock.OpKeepAlive, Sessions: ids}, min(simOpTimeout, period),
		func(res lock.Result, _ uint64, out simOutcome, _ int) {
			h.busy = false
			for _, id := range ids {
				if out == outOK && !slices.Contains(res.Missing, id) {
					s.chk.renewed(id, sent, h.ttl)
				}
			}
			for i, id := range ids {
				c, op := owners[i], ops[i]
				if c.epoch != epochs[i] {
					continue // the client crashed: nobody saw the answer
				}
				switch out {
				case outFailed:
					op.dropped = true
				case outOK:
					if slices.Contains(res.Missing, id) {
						s.ret(op, linearize.Output{Kind: linearize.SessionExpired})
						c.lost(id)
						continue
					}
					s.ret(op, linearize.Output{Kind: linearize.OK})
				}
			}
		})
}

// crash makes every client of the host vanish at once.
func (h *simHost) crash() {
	h.ka.epoch++
	h.busy = false
	for _, c := range h.clients {
		if !c.dead {
			c.crash()
		}
	}
}

// holdsAndWaits reports whether one client of the host holds a lock (a
// permit) that another of its clients waits for.
func (h *simHost) holdsAndWaits() bool {
	for _, r := range [...]simRes{resLock, resSem} {
		for i := range r.count() {
			holds, waits := false, false
			for _, c := range h.clients {
				held, _ := c.slots(r, i)
				holds = holds || (!c.dead && *held != 0)
			}
			for _, w := range h.s.waits {
				waits = waits || (w.res == r && w.i == i && slices.Contains(h.clients, w.c))
			}
			if holds && waits {
				return true
			}
		}
	}
	return false
}

func holderOut(kind linearize.OutKind, h *lock.Holder) linearize.Output {
	o := linearize.Output{Kind: kind}
	if h != nil {
		o.Session, o.Token = h.Session, h.Token
	}
	return o
}

func leaderOut(kind linearize.OutKind, l *lock.Leader) linearize.Output {
	o := linearize.Output{Kind: kind}
	if l != nil {
		o.Session, o.Value, o.Token = l.Session, l.Value, l.Term
	}
	return o
}

// holdsOut is every holder of a lock or a semaphore as the model takes
// them: never nil, so that an empty list says "free" (nil would say "not
// recorded", and leave the model to guess).
func holdsOut(hs []lock.Holder) []linearize.Hold {
	out := make([]linearize.Hold, len(hs))
	for i, h := range hs {
		out[i] = linearize.Hold{Session: h.Session, Token: h.Token, Shared: h.Mode == lock.Shared}
	}
	return out
}

// lockedOut is a Locked answer with the holders the server listed.
func lockedOut(res lock.Result) linearize.Output {
	o := holderOut(linearize.Locked, res.Holder)
	o.Holders = holdsOut(res.Holders)
	return o
}

// grantOut is the answer of an acquire (campaign) of kind r granted with
// token (term) tok.
func grantOut(r simRes, tok uint64) linearize.Output {
	if r == resElection {
		return linearize.Output{Kind: linearize.OK, Token: tok}
	}
	return linearize.Output{Kind: linearize.Granted, Token: tok}
}

// acquire asks for lock i (in the client's mode for it) or, with resSem,
// a permit of semaphore i: at once, or waiting in the queue.
func (c *simClient) acquire(r simRes, i int, wait bool) {
	s := c.s
	name, sess := r.name(i), c.sess
	in := linearize.Input{Name: name, Session: sess}
	cmd := &lock.Command{Session: sess, Name: name, Wait: wait}
	if r == resSem {
		in.Kind, in.Limit = linearize.SemTryAcquire, s.semLimit
		if wait {
			in.Kind = linearize.SemAcquire
		}
		cmd.Op, cmd.Limit = lock.OpSemAcquire, uint32(s.semLimit)
	} else {
		in.Kind, in.Shared = linearize.TryAcquire, c.shared[i]
		if wait {
			in.Kind = linearize.Acquire
		}
		cmd.Op = lock.OpAcquire
		if c.shared[i] {
			cmd.Mode = lock.Shared
		}
	}
	op := s.call(c.id, in)
	c.propose(cmd, simOpTimeout,
		func(res lock.Result, _ uint64, out simOutcome, node int) {
			switch out {
			case outFailed:
				op.dropped = true
				c.next()
				return
			case outUnknown:
				c.next()
				return
			}
			switch res.Code {
			case lock.CodeOK:
				s.ret(op, grantOut(r, res.Token))
				if held, _ := c.slots(r, i); c.sess == sess {
					*held = res.Token
				}
			case lock.CodeQueued:
				if wait {
					c.wait(op, node, r, i, sess)
					return
				}
				// Still queued by an earlier wait whose outcome it
				// never learnt.
				s.ret(op, lockedOut(res))
			case lock.CodeLockHeld:
				s.ret(op, lockedOut(res))
			case lock.CodeDeadlock:
				// Refused without queueing (cluster version 5): for the
				// model, a wait that gave up at once, the lock (every
				// permit) held.
				s.stats.deadlocks++
				s.ret(op, lockedOut(res))
			case lock.CodeSessionNotFound:
				s.ret(op, linearize.Output{Kind: linearize.SessionExpired})
				c.lost(sess)
			default:
				s.fail("client", "%v of %q by session %d answered %v (%s)", in.Kind, name, sess, res.Code, res.Reason)
			}
			c.next()
		})
}

// release releases lock i or, with resSem, gives back the permit of
// semaphore i, with the token the client holds it with, or sometimes
// (or when it holds none) a token it held before.
func (c *simClient) release(r simRes, i int) {
	s := c.s
	name, sess := r.name(i), c.sess
	held, old := c.slots(r, i)
	tok, stale := *held, false
	if tok == 0 || (*old != 0 && s.rng.IntN(5) == 0) {
		tok, stale = *old, true
	}
	kind, cmd := linearize.Release, &lock.Command{Op: lock.OpRelease, Session: sess, Name: name, Token: tok}
	if r == resSem {
		kind, cmd.Op = linearize.SemRelease, lock.OpSemRelease
	}
	op := s.call(c.id, linearize.Input{Kind: kind, Name: name, Session: sess, Token: tok})
	c.propose(cmd, simOpTimeout,
		func(res lock.Result, _ uint64, out simOutcome, _ int) {
			switch out {
			case outFailed:
				op.dropped = true
			case outOK:
				switch res.Code {
				case lock.CodeOK:
					s.ret(op, linearize.Output{Kind: linearize.OK})
					if c.sess == sess {
						*held, *old = 0, tok
					}
				case lock.CodeNotHolder:
					s.ret(op, linearize.Output{Kind: linearize.NotHolder})
					if !stale && c.sess == sess {
						*held = 0
					}
				default:
					s.fail("client", "%v of %q by session %d answered %v", kind, name, sess, res.Code)
				}
			}
			c.next()
		})
}

func (c *simClient) campaign(ei int, wait bool) {
	s := c.s
	name, sess := simElectionNames[ei], c.sess
	value := c.retryVal[ei]
	if value == "" || s.opt.newCampaignValues || s.rng.IntN(4) == 0 {
		c.vals++
		value = fmt.Sprintf("v%d.%d", c.id, c.vals)
	}
	// Until the outcome is known, a new campaign is usually a retry with
	// the same value (the session may lead or wait with it already), and
	// sometimes comes with a new value, which the leader proclaims and a
	// candidate takes.
	c.retryVal[ei] = value
	op := s.call(c.id, linearize.Input{Kind: linearize.Campaign, Name: name, Session: sess, Value: value})
	c.propose(&lock.Command{Op: lock.OpCampaign, Session: sess, Name: name, Value: value, Wait: wait}, simOpTimeout,
		func(res lock.Result, _ uint64, out simOutcome, node int) {
			switch out {
			case outFailed:
				op.dropped = true
				c.next()
				return
			case outUnknown:
				c.next()
				return
			}
			switch res.Code {
			case lock.CodeOK:
				s.ret(op, linearize.Output{Kind: linearize.OK, Token: res.Token})
				c.lead[ei] = res.Token
			case lock.CodeQueued:
				if wait {
					c.wait(op, node, resElection, ei, sess)
					return
				}
				s.ret(op, leaderOut(linearize.NotLeader, res.Leader))
			case lock.CodeNotLeader:
				c.retryVal[ei] = ""
				s.ret(op, leaderOut(linearize.NotLeader, res.Leader))
			case lock.CodeSessionNotFound:
				s.ret(op, linearize.Output{Kind: linearize.SessionExpired})
				c.lost(sess)
			default:
				s.fail("client", "campaign in %q by session %d answered %v", name, sess, res.Code)
			}
			c.next()
		})
}

// termFor is the term a proclaim or resign presents: the one the client
// leads with, sometimes an old one.
func (c *simClient) termFor(ei int) uint64 {
	if c.lead[ei] == 0 || (c.old[ei] != 0 && c.s.rng.IntN(5) == 0) {
		return c.old[ei]
	}
	return c.lead[ei]
}

func (c *simClient) proclaim(ei int) {
	s := c.s
	name, sess, term := simElectionNames[ei], c.sess, c.termFor(ei)
	if term == 0 {
		c.readElection(ei)
		return
	}
	c.vals++
	value := fmt.Sprintf("v%d.%d", c.id, c.vals)
	op := s.call(c.id, linearize.Input{Kind: linearize.Proclaim, Name: name, Session: sess, Token: term, Value: value})
	c.propose(&lock.Command{Op: lock.OpProclaim, Session: sess, Name: name, Token: term, Value: value}, simOpTimeout,
		func(res lock.Result, _ uint64, out simOutcome, _ int) {
			switch out {
			case outFailed:
				op.dropped = true
			case outOK:
				switch res.Code {
				case lock.CodeOK:
					s.ret(op, linearize.Output{Kind: linearize.OK})
				case lock.CodeNotLeader:
					s.ret(op, leaderOut(linearize.NotLeader, res.Leader))
					if c.sess == sess && c.lead[ei] == term {
						c.lead[ei] = 0
					}
				default:
					s.fail("client", "proclaim in %q by session %d answered %v", name, sess, res.Code)
				}
			}
			c.next()
		})
}

func (c *simClient) resign(ei int) {
	s := c.s
	name, sess, term := simElectionNames[ei], c.sess, c.termFor(ei)
	if term == 0 {
		c.readElection(ei)
		return
	}
	op := s.call(c.id, linearize.Input{Kind: linearize.Resign, Name: name, Session: sess, Token: term})
	c.propose(&lock.Command{Op: lock.OpResign, Session: sess, Name: name, Token: term}, simOpTimeout,
		func(res lock.Result, _ uint64, out simOutcome, _ int) {
			switch out {
			case outFailed:
				op.dropped = true
			case outOK:
				switch res.Code {
				case lock.CodeOK:
					s.ret(op, linearize.Output{Kind: linearize.OK})
					if c.sess == sess && c.lead[ei] == term {
						c.retryVal[ei] = ""
					}
				case lock.CodeNotLeader:
					s.ret(op, leaderOut(linearize.NotLeader, res.Leader))
				default:
					s.fail("client", "resign in %q by session %d answered %v", name, sess, res.Code)
				}
				if c.sess == sess && c.lead[ei] == term {
					c.lead[ei], c.old[ei] = 0, term
				}
			}
			c.next()
		})
}

// readLock reads lock li: its exclusive holder, and every holder (an
// empty list when it is free), which keeps the model's search small.
func (c *simClient) readLock(li int) {
	s := c.s
	name := simLockNames[li]
	op := s.call(c.id, linearize.Input{Kind: linearize.GetLock, Name: name})
	var out linearize.Output
	s.stats.reads++
	c.read(s.rng.IntN(len(s.nodes)), func(m *lock.Machine) {
		out = linearize.Output{Kind: linearize.OK, Holders: []linearize.Hold{}}
		if info, ok := m.Lock(name); ok {
			out = holderOut(linearize.OK, info.Holder)
			out.Holders = holdsOut(info.Holders)
		}
	}, func(ok bool) {
		if ok {
			s.ret(op, out)
		} else {
			op.dropped = true // an unanswered read says nothing
		}
		c.next()
	})
}

// readSemaphore reads semaphore si: its permit holders and its limit (0
// when nobody holds: the server forgets it).
func (c *simClient) readSemaphore(si int) {
	s := c.s
	name := simSemNames[si]
	op := s.call(c.id, linearize.Input{Kind: linearize.GetSemaphore, Name: name})
	var out linearize.Output
	s.stats.reads++
	c.read(s.rng.IntN(len(s.nodes)), func(m *lock.Machine) {
		out = linearize.Output{Kind: linearize.OK, Holders: []linearize.Hold{}}
		if info, ok := m.Semaphore(name); ok {
			out.Holders, out.Limit = holdsOut(info.Holders), int(info.Limit)
		}
	}, func(ok bool) {
		if ok {
			s.ret(op, out)
		} else {
			op.dropped = true
		}
		c.next()
	})
}

func (c *simClient) readElection(ei int) {
	s := c.s
	name := simElectionNames[ei]
	op := s.call(c.id, linearize.Input{Kind: linearize.GetLeader, Name: name})
	var out linearize.Output
	s.stats.reads++
	c.read(s.rng.IntN(len(s.nodes)), func(m *lock.Machine) {
		out = linearize.Output{Kind: linearize.OK}
		if info, ok := m.Election(name); ok {
			out = leaderOut(linearize.OK, info.Leader)
		}
	}, func(ok bool) {
		if ok {
			s.ret(op, out)
		} else {
			op.dropped = true
		}
		c.next()
	})
}

func (c *simClient) closeSession() {
	s := c.s
	sess := c.sess
	op := s.call(c.id, linearize.Input{Kind: linearize.CloseSession, Session: sess})
	c.propose(&lock.Command{Op: lock.OpCloseSession, Session: sess}, simOpTimeout,
		func(res lock.Result, _ uint64, out simOutcome, _ int) {
			switch out {
			case outFailed:
				op.dropped = true
			case outOK:
				switch res.Code {
				case lock.CodeOK:
					s.ret(op, linearize.Output{Kind: linearize.OK})
				case lock.CodeSessionNotFound:
					s.ret(op, linearize.Output{Kind: linearize.SessionExpired})
				default:
					s.fail("client", "close of session %d answered %v", sess, res.Code)
				}
			}
			// Closed, gone, or in doubt: either way a new session.
			c.lost(sess)
			c.next()
		})
}

// die makes the client vanish without a word: its session expires.
func (c *simClient) die() {
	s := c.s
	s.note("client-dies", uint64(c.id))
	c.lost(c.sess)
	c.dead = true
	c.busy = false
	s.schedule(s.now+c.ttl+s.rng.Int64N(2*s.maxTTL), &simEvent{kind: evRevive, client: c})
}

// crash makes the client process die at once, whatever it is doing:
// what it waits for stays unanswered (unknown) and its session expires.
func (c *simClient) crash() {
	c.epoch++
	c.die()
}

func (c *simClient) revive() {
	c.dead = false
	c.next()
}

// ---- waiting acquires and campaigns

// simWait is an Acquire, SemAcquire or Campaign queued on a node: it ends
// when that node applies the grant (or election), the session's end, or
// when its wait runs out, the node crashes or loses it: then the client
// withdraws.
type simWait struct {
	c     *simClient
	op    *simOp
	node  int
	inc   int
	res   simRes
	i     int // lock, semaphore or election index
	sess  uint64
	epoch int
	done  bool
}

func (c *simClient) wait(op *simOp, node int, r simRes, i int, sess uint64) {
	s := c.s
	w := &simWait{c: c, op: op, node: node, inc: s.nodes[node].inc, res: r, i: i, sess: sess, epoch: c.epoch}
	s.waits = append(s.waits, w)
	s.schedule(s.now+200*simMs+s.rng.Int64N(3*simSec), &simEvent{kind: evWaitEnd, w: w})
	s.checkWait(w)
}

func (s *sim) checkWaits(sn *simNode) {
	for _, w := range slices.Clone(s.waits) {
		if !w.done && w.node == sn.idx {
			s.checkWait(w)
		}
	}
}

// holdOf returns the token (term) with which session sess holds resource
// i of kind r in m, and false if it does not.
func holdOf(m *lock.Machine, r simRes, i int, sess uint64) (uint64, bool) {
	var hs []lock.Holder
	switch r {
	case resElection:
		if info, ok := m.Election(simElectionNames[i]); ok && info.Leader.Session == sess {
			return info.Leader.Term, true
		}
		return 0, false
	case resLock:
		info, _ := m.Lock(simLockNames[i])
		hs = info.Holders
	case resSem:
		info, _ := m.Semaphore(simSemNames[i])
		hs = info.Holders
	}
	for _, h := range hs {
		if h.Session == sess {
			return h.Token, true
		}
	}
	return 0, false
}

func (s *sim) checkWait(w *simWait) {
	if w.c.epoch != w.epoch {
		// The client crashed while it waited: nobody is there to see
		// the grant or to withdraw.
		s.endWait(w, false)
		return
	}
	sn := s.nodes[w.node]
	if sn.n == nil || sn.inc != w.inc {
		s.endWait(w, false)
		return
	}
	m := sn.n.machine
	if _, ok := m.Session(w.sess); !ok {
		// The session ended while it waited: it may have been granted in
		// between, and lost the grant with the session.
		s.endWait(w, true)
		s.ret(w.op, linearize.Output{Kind: linearize.Cancelled})
		w.c.lost(w.sess)
		w.c.next()
		return
	}
	if tok, ok := holdOf(m, w.res, w.i, w.sess); ok {
		s.endWait(w, true)
		s.ret(w.op, grantOut(w.res, tok))
		if held, _ := w.c.slots(w.res, w.i); w.c.sess == w.sess {
			*held = tok
		}
		w.c.next()
	}
}

// endWait stops watching; unless settled, the client withdraws from the
// queue (OpCancel, OpSemCancel, or OpResign with term 0) and answers by
// its result.
func (s *sim) endWait(w *simWait, settled bool) {
	if w.done {
		return
	}
	w.done = true
	if i := slices.Index(s.waits, w); i >= 0 {
		s.waits = slices.Delete(s.waits, i, i+1)
	}
	if !settled && w.c.epoch == w.epoch {
		w.c.withdraw(w, 0)
	}
}

func (c *simClient) withdraw(w *simWait, attempt int) {
	s := c.s
	cmd := &lock.Command{Op: lock.OpCancel, Session: w.sess, Name: w.res.name(w.i)}
	switch w.res {
	case resSem:
		cmd.Op = lock.OpSemCancel
	case resElection:
		cmd.Op = lock.OpResign
	}
	c.propose(cmd, simOpTimeout, func(res lock.Result, _ uint64, out simOutcome, _ int) {
		if out != outOK {
			if attempt < 3 {
				s.after(50*simMs+s.rng.Int64N(200*simMs), func() { c.withdraw(w, attempt+1) })
				return
			}
			// In doubt: the session may still wait and be granted.
			// Leave it to expire; the Acquire stays unanswered.
			c.lost(w.sess)
			c.next()
			return
		}
		switch {
		case res.Code == lock.CodeSessionNotFound:
			// Granted and lost with the session, or never granted.
			s.ret(w.op, linearize.Output{Kind: linearize.Cancelled})
			c.lost(w.sess)
		case res.Code == lock.CodeOK && res.Token != 0:
			// The grant won the race.
			s.ret(w.op, grantOut(w.res, res.Token))
			if held, _ := c.slots(w.res, w.i); c.sess == w.sess {
				*held = res.Token
			}
		case res.Code == lock.CodeOK:
			s.ret(w.op, linearize.Output{Kind: linearize.Cancelled})
			if w.res == resElection && c.sess == w.sess {
				c.retryVal[w.i] = ""
			}
		default:
			s.fail("client", "withdraw of session %d from %q answered %v", w.sess, cmd.Name, res.Code)
		}
		c.next()
	})
}

// ---- the final liveness probe

func (s *sim) probeStep() {
	if s.probe.done {
		return
	}
	node := s.rng.IntN(len(s.nodes))
	if l := s.leader(); l != nil {
		node = l.idx
	}
	rq := &simRequest{cmd: &lock.Command{Op: lock.OpTick}}
	rq.cb = func(r proposalResult, _ int) {
		if r.err == nil {
			s.chk.ack(r.index, rq.cmd)
			s.probe.done, s.probe.committedAt, s.probe.index = true, s.now, r.index
			return
		}
		s.after(50*simMs, s.probeStep)
	}
	s.sendRequest(rq, node, simOpTimeout)
}
