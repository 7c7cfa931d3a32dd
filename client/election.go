package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/raftlock/raftlock/api"
)

// Election is a leader election named Name, campaigned in on behalf of a
// Session: the candidates queue in FIFO order and the head leads, with a
// value (the leader's identity or address, proclaimed to observers) and a
// term (the leadership's fencing token: the index of the log entry that
// made it leader, larger than every earlier term of the election).
//
// It is safe for concurrent use: Campaign, Proclaim and Resign are
// serialised, so a Campaign that waits delays a Resign or Proclaim of the
// same Election (cancel the Campaign's ctx to stop waiting). Elections and
// locks are separate namespaces: an election may share a lock's name. Use
// one Election per session and name.
//
// Each successful Campaign starts a leadership with a term (Term) and a lost
// channel (Lost).
type Election struct {
	s    *Session
	name string
	sem  chan struct{} // serialises Campaign, Proclaim and Resign

	mu   sync.Mutex
	lead *hold // current leadership (election hold), nil when not leading
}

// NewElection returns an Election for election name in session s. It does
// not contact the server; an invalid name makes Campaign fail with an error
// matching api.ErrInvalidArgument.
func (s *Session) NewElection(name string) *Election {
	return &Election{s: s, name: name, sem: make(chan struct{}, 1)}
}

// Name returns the election's name.
func (e *Election) Name() string { return e.name }

// Term returns the term of the current leadership (its fencing token), or
// 0 when the Election does not lead or its leadership was lost.
func (e *Election) Term() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lead == nil || e.lead.isLost() {
		return 0
	}
	return e.lead.token
}

// Lost returns a channel of the current leadership, closed when it ends
// for any reason other than Resign: the session ended (lost, past
// SafeUntil, or closed), or the SDK observed that another session leads or
// nobody does (the keep-alive goroutine reads the election after each
// renewal, so this is noticed within about TTL/3; e.g. an operator closed
// the session). Each leadership has its own channel: Resign does not close
// it, and the next Campaign starts a new one. When the Election does not
// lead, Lost returns an already closed channel.
func (e *Election) Lost() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lead == nil {
		return closedC
	}
	return e.lead.lost
}

// Leader returns the election's current leader (a linearizable read of GET
// /v1/elections/{name}), or nil, nil when nobody leads.
func (e *Election) Leader(ctx context.Context) (*api.Leader, error) {
	el, err := e.s.c.ElectionInfo(ctx, e.name)
	if err != nil {
		return nil, err
	}
	return el.Leader, nil
}

// Observe is Client.Observe for this election: its leader changes until
// ctx ends.
func (e *Election) Observe(ctx context.Context) <-chan LeaderEvent {
	return e.s.c.Observe(ctx, e.name)
}

func (e *Election) enter(ctx context.Context) error {
	select {
	case e.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("client: election %q: %w", e.name, ctx.Err())
	}
}

func (e *Election) leave() { <-e.sem }

// leading returns the current leadership if it is not lost.
func (e *Election) leading() *hold {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lead == nil || e.lead.isLost() {
		return nil
	}
	return e.lead
}

// Campaign makes the session a candidate with value (at most 4096 bytes)
// and blocks until it leads or ctx ends. It returns nil at once if the
// Election already leads (the value is not changed: use Proclaim).
//
// It first tries without waiting (a request that may share a
// POST /v1/batch with other goroutines' requests, see
// Config.UnbatchedLocks); if another session leads, it waits. Each waiting
// request waits on the server for the time left in ctx, at most
// Config.WaitChunk (5 minutes by default, the server's limit), with
// keep_queued: between two chunks the session keeps its place in the
// queue. Connection errors and 503 answers are retried (a campaign by a
// session is idempotent: it keeps its queue place, and a leader's retry
// answers its term) for as long as ctx and the session last.
//
// If ctx ends first, Campaign returns an error matching ctx.Err(), after it
// has left the queue (POST /v1/elections/{name}/cancel, retried until
// answered) and resigned a leadership that won the race; as for
// Mutex.Lock, a clean-up the cluster does not answer within 5 seconds goes
// on in the background, and the Election's next call waits for it. If the
// session ends first, the error matches Session.Err (ErrSessionLost or
// ErrSessionClosed).
func (e *Election) Campaign(ctx context.Context, value string) (err error) {
	if err := api.ValidateLockName(e.name); err != nil {
		return fmt.Errorf("client: campaign: %w: election %v", api.ErrInvalidArgument, err)
	}
	if len(value) > api.MaxValueSize {
		return fmt.Errorf("client: campaign %q: %w: value is %d bytes long, at most %d are allowed", e.name, api.ErrInvalidArgument, len(value), api.MaxValueSize)
	}
	if err := e.enter(ctx); err != nil {
		return err
	}
	turn := true // held until return, or handed to a clean-up
	defer func() {
		if turn {
			e.leave()
		}
	}()
	if e.leading() != nil {
		return nil
	}
	if err := e.s.Err(); err != nil {
		return fmt.Errorf("client: campaign %q: %w", e.name, err)
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(e.s.ctx, cancel)
	defer stop()
	giveUp := func(cause error) error {
		turn = !e.s.settle(ctx, cleanupTimeout, e.name, e.cleanup, e.leave)
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("client: campaign %q: %w", e.name, ctx.Err())
		case e.s.Err() != nil:
			return fmt.Errorf("client: campaign %q: %w", e.name, e.s.Err())
		}
		return fmt.Errorf("client: campaign %q: %w", e.name, cause)
	}

	path := api.ElectionPath(e.name) + "/campaign"
	// The first attempt is a try, which may share a POST /v1/batch with
	// other goroutines' requests (see batcher): most campaigns of a busy
	// client find the election free. A held election is then waited for.
	var l api.Leadership
	_, err = e.s.c.doElection(actx, call{
		method: http.MethodPost, path: path, write: true, retryUnknown: true,
		body: api.CampaignRequest{Session: e.s.id, Value: value},
	}, api.BatchOp{Op: api.BatchCampaign, Name: e.name, Session: e.s.id, Value: value}, &l)
	switch {
	case err == nil:
		return e.won(l.Term)
	case errors.Is(err, api.ErrElectionNotLeader) && actx.Err() == nil:
	case errors.Is(err, api.ErrSessionNotFound):
		e.s.lost(err)
		return fmt.Errorf("client: campaign %q: %w", e.name, e.s.Err())
	case actx.Err() != nil:
		return giveUp(err)
	case errors.Is(err, api.ErrUnavailable) || errors.Is(err, api.ErrOutcomeUnknown):
		// The waits below retry it.
	default:
		return fmt.Errorf("client: campaign %q: %w", e.name, err)
	}
	for try := 1; ; try++ {
		w := e.s.c.waitChunk
		if dl, ok := actx.Deadline(); ok {
			w = min(w, time.Until(dl))
		}
		if w <= 0 {
			<-actx.Done()
			return giveUp(actx.Err())
		}
		_, err := e.s.c.do(actx, call{
			method: http.MethodPost, path: path, write: true, retryUnknown: true, extra: w,
			body: api.CampaignRequest{Session: e.s.id, Value: value, Wait: api.Duration(w), KeepQueued: true},
		}, &l)
		if err == nil {
			return e.won(l.Term)
		}
		switch {
		case errors.Is(err, api.ErrElectionNotLeader) && actx.Err() == nil:
			// The chunk ran out; the session kept its place: wait on.
			continue
		case errors.Is(err, api.ErrSessionNotFound):
			e.s.lost(err)
			return fmt.Errorf("client: campaign %q: %w", e.name, e.s.Err())
		case actx.Err() != nil:
			return giveUp(err)
		case errors.Is(err, api.ErrUnavailable) || errors.Is(err, api.ErrOutcomeUnknown):
			e.s.log.Debug("campaign failed, retrying", "election", e.name, "try", try, "error", err)
			if sleep(actx, backoff(min(try, 6))) != nil {
				return giveUp(err)
			}
		default:
			return fmt.Errorf("client: campaign %q: %w", e.name, err)
		}
	}
}

// won records a new leadership with term, unless the session ended
// meanwhile (then the leadership is resigned and the session's error
// returned).
func (e *Election) won(term uint64) error {
	h := &hold{name: e.name, token: term, election: true, lost: make(chan struct{})}
	if err := e.s.addHold(h); err != nil {
		e.resignTerm(context.Background(), term)
		return fmt.Errorf("client: campaign %q: %w", e.name, err)
	}
	e.mu.Lock()
	e.lead = h
	e.mu.Unlock()
	e.s.log.Debug("leading", "election", e.name, "term", term)
	return nil
}

// cleanup makes sure the session neither waits in nor leads the election
// on behalf of a caller that has gone: it cancels the candidacy
// (POST /v1/elections/{name}/cancel) and resigns the leadership the answer
// names (one that won the race). It reports whether both were answered by
// the server (see Session.settle, which runs it).
func (e *Election) cleanup(ctx context.Context) bool {
	var out api.ElectionCancelResponse
	_, err := e.s.c.do(ctx, call{
		method: http.MethodPost, path: api.ElectionPath(e.name) + "/cancel", write: true, retryUnknown: true,
		body: api.CancelRequest{Session: e.s.id},
	}, &out)
	switch {
	case errors.Is(err, api.ErrSessionNotFound):
		return true
	case err != nil:
		e.s.log.Debug("clean up after a campaign: cancel", "election", e.name, "error", err)
		return !retryable(err)
	case out.Grant == nil:
		return true
	}
	_, err = e.s.c.do(ctx, call{
		method: http.MethodPost, path: api.ElectionPath(e.name) + "/resign", write: true, retryUnknown: true,
		body: api.ResignRequest{Session: e.s.id, Term: out.Grant.Term},
	}, nil)
	if err != nil && !errors.Is(err, api.ErrElectionNotLeader) && !errors.Is(err, api.ErrSessionNotFound) {
		e.s.log.Debug("clean up after a campaign: resign", "election", e.name, "term", out.Grant.Term, "error", err)
		return !retryable(err)
	}
	return true
}

// resignTerm resigns leadership term, ignoring the answer (clean-up).
func (e *Election) resignTerm(ctx context.Context, term uint64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_, err := e.s.c.do(ctx, call{
		method: http.MethodPost, path: api.ElectionPath(e.name) + "/resign", write: true, retryUnknown: true,
		body: api.ResignRequest{Session: e.s.id, Term: term},
	}, nil)
	if err != nil && !errors.Is(err, api.ErrElectionNotLeader) && !errors.Is(err, api.ErrSessionNotFound) {
		e.s.log.Warn("clean up after a campaign: resign", "election", e.name, "term", term, "error", err)
	}
}

// Proclaim changes the value of the current leadership (POST proclaim with
// its term), e.g. to announce a new address without an election. If the
// Election does not lead (or its leadership was lost) it returns an error
// matching api.ErrElectionNotLeader without contacting the server. If the server
// answers that the session does not lead with this term, the leadership is
// over: Lost is closed, Term becomes 0 and the error matches api.ErrElectionNotLeader
// (or api.ErrSessionNotFound). On other failures (unavailable, ctx ended) the
// leadership is kept and the value may or may not have changed; Proclaim
// may be called again.
func (e *Election) Proclaim(ctx context.Context, value string) error {
	if len(value) > api.MaxValueSize {
		return fmt.Errorf("client: proclaim %q: %w: value is %d bytes long, at most %d are allowed", e.name, api.ErrInvalidArgument, len(value), api.MaxValueSize)
	}
	if err := e.enter(ctx); err != nil {
		return err
	}
	defer e.leave()
	h := e.leading()
	if h == nil {
		return fmt.Errorf("client: proclaim %q: %w", e.name, api.ErrElectionNotLeader)
	}
	_, err := e.s.c.do(ctx, call{
		method: http.MethodPost, path: api.ElectionPath(e.name) + "/proclaim", write: true, retryUnknown: true,
		body: api.ProclaimRequest{Session: e.s.id, Term: h.token, Value: value},
	}, nil)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, api.ErrElectionNotLeader), errors.Is(err, api.ErrSessionNotFound):
		if errors.Is(err, api.ErrSessionNotFound) {
			e.s.lost(err)
		}
		e.s.loseHold(h)
		h.lose()
		e.mu.Lock()
		if e.lead == h {
			e.lead = nil
		}
		e.mu.Unlock()
	}
	return fmt.Errorf("client: proclaim %q: %w", e.name, err)
}

// Resign gives up the current leadership (POST resign with its term): the
// next candidate leads at once. Term becomes 0; Lost is not closed. Resign
// returns nil when the Election does not lead (there is nothing to give
// up), and for a not_leader answer to a retry of this very resign whose
// first attempt had an unknown outcome. A leadership already lost (Lost
// closed) is still resigned, in case the server still grants it (the SDK
// gives up at SafeUntil, before the server does); the server's answer that
// it does not is then success too. Otherwise, if the server answers that
// the session does not lead with this term (the leadership had ended
// meanwhile), the leadership is dropped, Lost is closed and the error
// matches api.ErrElectionNotLeader (or api.ErrSessionNotFound). On other failures
// (unavailable, ctx ended) the leadership is kept and Resign may be called
// again.
func (e *Election) Resign(ctx context.Context) error {
	if err := e.enter(ctx); err != nil {
		return err
	}
	defer e.leave()
	e.mu.Lock()
	h := e.lead
	e.mu.Unlock()
	if h == nil {
		return nil
	}
	wasLost := h.isLost()
	h.releasing.Store(true)
	info, err := e.s.c.doElection(ctx, call{
		method: http.MethodPost, path: api.ElectionPath(e.name) + "/resign", write: true, retryUnknown: true,
		body: api.ResignRequest{Session: e.s.id, Term: h.token},
	}, api.BatchOp{Op: api.BatchResign, Name: e.name, Session: e.s.id, Term: h.token}, nil)
	var ret error
	switch {
	case err == nil, info.unknownBefore && errors.Is(err, api.ErrElectionNotLeader),
		wasLost && (errors.Is(err, api.ErrElectionNotLeader) || errors.Is(err, api.ErrSessionNotFound)):
		if errors.Is(err, api.ErrSessionNotFound) {
			e.s.lost(err)
		}
		e.s.removeHold(h)
	case errors.Is(err, api.ErrElectionNotLeader), errors.Is(err, api.ErrSessionNotFound):
		if errors.Is(err, api.ErrSessionNotFound) {
			e.s.lost(err)
		}
		e.s.loseHold(h)
		h.lose()
		ret = fmt.Errorf("client: resign %q: %w", e.name, err)
	default:
		h.releasing.Store(false)
		return fmt.Errorf("client: resign %q: %w", e.name, err)
	}
	e.mu.Lock()
	if e.lead == h {
		e.lead = nil
	}
	e.mu.Unlock()
	e.s.log.Debug("resigned", "election", e.name, "term", h.token)
	return ret
}

// lose ends leadership term as lost (the Elector observed another leader
// or none), unless a Resign of it is under way.
func (e *Election) lose(term uint64) {
	e.mu.Lock()
	h := e.lead
	e.mu.Unlock()
	if h == nil || h.token != term || h.releasing.Load() {
		return
	}
	e.s.log.Info("leadership lost", "election", e.name, "term", term)
	e.s.loseHold(h)
	h.lose()
}
