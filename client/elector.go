package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/raftlock/raftlock/api"
)

// Callbacks are the Elector's notifications. Each may be nil.
type Callbacks struct {
	// OnStartedLeading is called, in a goroutine of its own, when the
	// Elector starts leading. Its ctx is cancelled when the leadership ends
	// (lost, or Run's ctx ended) and no later than the session's SafeUntil.
	// It must return soon after ctx is cancelled: Run waits for it before
	// it resigns, calls OnStoppedLeading or campaigns again, so one Elector
	// never runs two of them at once.
	OnStartedLeading func(ctx context.Context)
	// OnStoppedLeading is called when a leadership has ended, only if the
	// Elector led, after OnStartedLeading's ctx was cancelled and it
	// returned (and, when Run's ctx ended, after the resign or the end of
	// the renewals). It is called from Run's goroutine.
	OnStoppedLeading func()
	// OnNewLeader is called when the observed leader's identity (its
	// value) differs from the last one reported, which is initially "":
	// the new identity, or "" when nobody leads. It is called from one
	// goroutine, in the order of the changes; while it runs, no further
	// change is observed.
	OnNewLeader func(identity string)
}

// Elector runs for leadership of an election for as long as its Run's ctx
// lasts, like client-go's leaderelection, but with a fencing token (Term)
// and a leadership that survives a failover of the raftlock cluster (the
// session's lease does).
//
// Set the exported fields before Run and do not change them afterwards.
// IsLeader, Term and Leader are safe for concurrent use, also while Run
// runs; one Elector runs at most one Run at a time.
type Elector struct {
	// Client talks to the cluster. Required.
	Client *Client
	// Name is the election's name (lock name rules). Required.
	Name string
	// Identity is this candidate's value, shown to observers as the
	// leader's identity (e.g. "10.0.0.7:8080"): 1 to 4096 bytes, and the
	// session's owner label (its first 256 bytes). Required.
	Identity string
	// TTL is the session's time to live, within the server's bounds.
	// Default (when zero) 10s. A leader that cannot renew stops leading
	// at SafeUntil (about TTL − TTL/10 after its last renewal); a leader
	// that dies is replaced after at most TTL.
	TTL time.Duration
	// Callbacks are called as leadership starts, stops and changes.
	Callbacks Callbacks
	// ReleaseOnCancel says what Run does with a leadership when its ctx
	// ends: true resigns it (the next candidate leads at once) and closes
	// the session; false just stops renewing the session, so the
	// leadership lasts until the server expires it after the TTL (nobody
	// else leads meanwhile, e.g. while work started by this leader may
	// still be in flight).
	ReleaseOnCancel bool
	// Logger receives Info logs of leadership changes and Warn logs of
	// failures. nil discards them.
	Logger *slog.Logger

	mu      sync.Mutex
	running bool
	sess    *Session        // session of the current leadership, nil when not leading
	el      *Election       // election of the current leadership
	term    uint64          // current leadership's term, 0 when not leading
	lost    <-chan struct{} // current leadership's Lost
	obsRev  uint64          // revision of the last observed leader
	obsID   string
	obsTerm uint64
	obsOK   bool
}

// errElectorRunning is Run's error when the Elector runs already.
var errElectorRunning = errors.New("client: elector: Run is already running")

// validate checks the configuration; its errors match api.ErrInvalidArgument.
func (e *Elector) validate() error {
	switch {
	case e.Client == nil:
		return fmt.Errorf("client: elector: %w: no Client", api.ErrInvalidArgument)
	case e.Identity == "":
		return fmt.Errorf("client: elector %q: %w: no Identity (the value observers see as the leader)", e.Name, api.ErrInvalidArgument)
	case len(e.Identity) > api.MaxValueSize:
		return fmt.Errorf("client: elector %q: %w: Identity is %d bytes long, at most %d are allowed", e.Name, api.ErrInvalidArgument, len(e.Identity), api.MaxValueSize)
	case e.TTL < 0:
		return fmt.Errorf("client: elector %q: %w: TTL %v is negative", e.Name, api.ErrInvalidArgument, e.TTL)
	}
	if err := api.ValidateLockName(e.Name); err != nil {
		return fmt.Errorf("client: elector: %w: election %v", api.ErrInvalidArgument, err)
	}
	return nil
}

// Run campaigns until ctx ends: it opens a session, campaigns with
// Identity as the value, leads until the leadership is lost (calling
// OnStartedLeading, then OnStoppedLeading), closes that session, and
// starts over with a new one. Failures to reach the cluster are logged and
// retried with a backoff of at most 2s. Meanwhile it observes the election
// (OnNewLeader, Leader), and a leadership that the stream shows taken by
// another session, or by nobody, ends at once.
//
// Run returns nil when ctx ends, after OnStoppedLeading (if it led) and
// with every goroutine it started gone. When leading at that moment it
// resigns (ReleaseOnCancel) or stops renewing, with a fresh context of at
// most 5s; when campaigning it leaves the queue. A configuration error
// (no Client, no Identity, a bad Name or TTL, also a TTL the server
// refuses) is returned at once, matching api.ErrInvalidArgument; a second
// concurrent Run returns an error.
func (e *Elector) Run(ctx context.Context) error {
	if err := e.validate(); err != nil {
		return err
	}
	e.mu.Lock()
	if e.running {
		e.mu.Unlock()
		return errElectorRunning
	}
	e.running = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.running = false
		e.mu.Unlock()
	}()
	log := e.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("election", e.Name, "identity", e.Identity)
	ttl := e.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}

	octx, ocancel := context.WithCancel(ctx)
	obsDone := make(chan struct{})
	go func() {
		defer close(obsDone)
		e.observe(octx)
	}()
	defer func() {
		ocancel()
		<-obsDone
	}()

	var s *Session
	closeSession := func() {
		if s == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if err := s.Close(cctx); err != nil {
			log.Warn("close session", "session", s.ID().String(), "error", err)
		}
		s = nil
	}
	fails := 0
	pause := func(what string, err error) {
		fails++
		log.Warn(what, "attempt", fails, "error", err)
		_ = sleep(ctx, observeBackoff(fails))
	}
	for {
		if ctx.Err() != nil {
			closeSession()
			return nil
		}
		if s != nil && s.Err() != nil {
			closeSession()
		}
		if s == nil {
			ns, err := e.Client.NewSession(ctx, WithTTL(ttl), WithOwner(ownerLabel(e.Identity)))
			switch {
			case err == nil:
				s = ns
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, api.ErrInvalidArgument):
				return fmt.Errorf("client: elector %q: %w", e.Name, err)
			default:
				pause("open session", err)
				continue
			}
		}
		el := s.NewElection(e.Name)
		err := el.Campaign(ctx, e.Identity)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			closeSession()
			return nil
		case errors.Is(err, api.ErrInvalidArgument):
			closeSession()
			return fmt.Errorf("client: elector %q: %w", e.Name, err)
		default:
			pause("campaign", err)
			continue
		}
		fails = 0
		if e.lead(ctx, log, s, el) {
			return nil
		}
		closeSession()
	}
}

// lead runs one leadership of el until it is lost or ctx ends; it reports
// whether ctx ended (then the session is dealt with already).
func (e *Elector) lead(ctx context.Context, log *slog.Logger, s *Session, el *Election) bool {
	term, lost := el.Term(), el.Lost()
	if term == 0 {
		return false // lost already
	}
	e.mu.Lock()
	e.sess, e.el, e.term, e.lost = s, el, term, lost
	if term >= e.obsRev {
		e.obsRev, e.obsID, e.obsTerm, e.obsOK = term, e.Identity, term, true
	}
	e.mu.Unlock()
	log.Info("started leading", "term", term, "session", s.ID().String())

	lctx, cancel := context.WithCancel(s.Ctx())
	started := make(chan struct{})
	go func() {
		defer close(started)
		if f := e.Callbacks.OnStartedLeading; f != nil {
			f(lctx)
		}
	}()
	// The session's goroutine ends the session at SafeUntil; this timer
	// makes sure of it even if that goroutine is late.
	timer := time.NewTimer(time.Until(s.SafeUntil()))
	why := ""
wait:
	for {
		select {
		case <-lost:
			why = "leadership lost"
			break wait
		case <-ctx.Done():
			break wait
		case <-timer.C:
			su := s.SafeUntil()
			if !time.Now().Before(su) {
				why = "no renewal before the safe-until time"
				break wait
			}
			timer.Reset(time.Until(su))
		}
	}
	timer.Stop()
	e.mu.Lock()
	e.sess, e.el, e.term, e.lost = nil, nil, 0, nil
	e.mu.Unlock()
	cancel()
	<-started

	ended := why == ""
	if ended {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		if e.ReleaseOnCancel {
			if err := el.Resign(rctx); err != nil {
				log.Warn("resign", "term", term, "error", err)
			}
			if err := s.Close(rctx); err != nil {
				log.Warn("close session", "session", s.ID().String(), "error", err)
			}
			log.Info("stopped leading: resigned", "term", term)
		} else {
			s.abandon()
			log.Info("stopped leading: renewals stopped, the leadership runs out with the TTL", "term", term)
		}
		rcancel()
	} else {
		log.Info("stopped leading", "term", term, "reason", why, "session_error", s.Err())
	}
	if f := e.Callbacks.OnStoppedLeading; f != nil {
		f()
	}
	return ended
}

// observe follows the election's leader until ctx ends: it records it
// for Leader, reports identity changes to OnNewLeader, and ends the
// current leadership when a change after its term shows another
// leader, or none.
func (e *Elector) observe(ctx context.Context) {
	reported := ""
	for ev := range e.Client.Observe(ctx, e.Name) {
		id, term := "", uint64(0)
		if ev.Leader != nil {
			id, term = ev.Leader.Value, ev.Leader.Term
		}
		e.mu.Lock()
		if ev.Revision >= e.obsRev {
			e.obsRev, e.obsID, e.obsTerm, e.obsOK = ev.Revision, id, term, ev.Leader != nil
		}
		s, el, myTerm := e.sess, e.el, e.term
		e.mu.Unlock()
		// At the term's own revision a message may be the first half of
		// a split entry (resigned, then elected): only later ones count.
		if el != nil && ev.Revision > myTerm && (ev.Leader == nil || ev.Leader.Session != s.ID() || ev.Leader.Term != myTerm) {
			el.lose(myTerm)
		}
		if id != reported {
			reported = id
			if f := e.Callbacks.OnNewLeader; f != nil {
				f(id)
			}
		}
	}
}

// IsLeader reports whether the Elector leads now: it has a leadership that
// is not lost, and the time is before its session's SafeUntil, checked at
// the call (a process resumed after a pause longer than the TTL answers
// false at once, before any goroutine has noticed).
func (e *Elector) IsLeader() bool {
	_, ok := e.current()
	return ok
}

// Term returns the current leadership's term (its fencing token) if
// IsLeader, else 0.
func (e *Elector) Term() uint64 {
	t, _ := e.current()
	return t
}

func (e *Elector) current() (uint64, bool) {
	e.mu.Lock()
	s, term, lost := e.sess, e.term, e.lost
	e.mu.Unlock()
	if s == nil || term == 0 {
		return 0, false
	}
	select {
	case <-lost:
		return 0, false
	default:
	}
	if !time.Now().Before(s.SafeUntil()) {
		return 0, false
	}
	return term, true
}

// Leader returns the last observed leader: its identity and term, with ok
// true; ok is false when nobody leads or nothing was observed yet. It is
// the observe stream's view (and this Elector's own leadership as soon as
// it wins), so it may lag the cluster slightly.
func (e *Elector) Leader() (identity string, term uint64, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.obsID, e.obsTerm, e.obsOK
}

// ownerLabel returns s cut to api.MaxOwnerLen bytes on a rune boundary.
func ownerLabel(s string) string {
	if len(s) <= api.MaxOwnerLen {
		return s
	}
	s = s[:api.MaxOwnerLen]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
