package fence

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Sentinel errors. Test them with errors.Is.
var (
	// ErrStale matches a *StaleError: a token lower than one already
	// accepted for the same name.
	ErrStale = errors.New("fence: stale token")
	// ErrInvalidArgument matches a refused name or token (token 0, a name
	// that is not a lock name, a missing or malformed header). Nothing was
	// recorded.
	ErrInvalidArgument = errors.New("fence: invalid argument")
)

// StaleError is the error of a stale token: Token is lower than Highest,
// a token already accepted for the lock Name. It matches ErrStale.
type StaleError struct {
	Name    string // the lock's name
	Token   uint64 // the token refused
	Highest uint64 // the highest token accepted for Name, > Token
}

// Error returns `fence: stale token 10 for lock "docs": 12 was accepted`.
func (e *StaleError) Error() string { return "fence: " + e.message() }

// message is Error without the package prefix: the message of the 409
// answer.
func (e *StaleError) message() string {
	return fmt.Sprintf("stale token %d for lock %q: %d was accepted", e.Token, e.Name, e.Highest)
}

// Is reports whether target is ErrStale.
func (e *StaleError) Is(target error) bool { return target == ErrStale }

// invalidError is a refused argument; it matches ErrInvalidArgument. msg
// is the message of the 400 answer.
type invalidError struct{ msg string }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

func (e *invalidError) Error() string        { return "fence: invalid argument: " + e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalidArgument }

// Guard remembers, per lock name, the highest fencing token it accepted,
// and refuses lower ones. The zero value is an empty Guard, ready to use;
// a Guard must not be copied after first use. It is safe for concurrent
// use.
//
// Its memory is one entry per name accepted and not forgotten (see
// Forget), and it lives only in memory: a Guard made after a restart has
// forgotten every token (see the package documentation).
type Guard struct {
	mu sync.Mutex
	m  map[string]*entry // by lock name; nil until the first token
}

// entry is the state of one name. Fields are guarded by Guard.mu.
type entry struct {
	highest uint64 // highest token accepted, > 0

	// Requests admitted by Enter and not yet released, by admission
	// number. They all carry the token runToken (≤ highest); when a
	// higher token is accepted they are superseded: their contexts are
	// cancelled, and requests of the higher token wait on drained until
	// none is left.
	running  map[uint64]context.CancelCauseFunc
	runToken uint64
	seq      uint64        // last admission number
	drained  chan struct{} // closed when running empties; nil if nobody waits
	waiting  int           // Enter calls waiting on drained
}

// Check accepts token for the lock name if it is at least the highest
// token accepted for name so far, and records it; an equal token (the same
// holder writing again) is accepted. The test and the record are one
// atomic step.
//
// It returns a *StaleError (matching ErrStale) for a lower token, and an
// error matching ErrInvalidArgument for token 0 or a name that is not a
// lock name (1 to 256 bytes of ASCII letters, digits and . _ - : /, in
// '/'-separated segments none of which is empty, "." or ".."); either
// way nothing is recorded.
//
// Check does not order the writes of the tokens it accepts: call it in
// the critical section that commits the write, or use Enter. It never
// waits; a token it accepts cancels the contexts of the requests of lower
// tokens that Enter admitted (without waiting for them to end).
func (g *Guard) Check(name string, token uint64) error {
	if err := checkArgs(name, token); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	_, err := g.accept(name, token)
	return err
}

// Enter admits a request that carries token for the lock name, in order:
// it accepts and records token as Check does, then, if requests admitted
// with a lower token for name are still running, cancels their contexts
// and waits until they have all called their release function. So a
// request admitted with a token never runs at the same time as, or before,
// one admitted with a lower token of the same name; requests with the same
// token run concurrently.
//
// On success it returns a context derived from ctx, to use for the
// request's work, and a release function that the caller must call once
// the request ends (further calls do nothing). The context is cancelled
// when release is called, and as soon as a higher token is accepted for
// name, with a *StaleError as its cause (context.Cause): a request that
// gives up at once lets the next holder in sooner; one that goes on still
// completes before the next holder's requests start.
//
// It returns the errors of Check, and, if ctx ends while it waits, an
// error wrapping context.Cause(ctx); the token stays recorded. A request
// that ignores its context keeps the next holder waiting: bound the
// request's duration (an http.Server's ReadTimeout and WriteTimeout, a
// deadline on ctx).
func (g *Guard) Enter(ctx context.Context, name string, token uint64) (context.Context, func(), error) {
	if err := checkArgs(name, token); err != nil {
		return nil, nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		e, err := g.accept(name, token)
		if err != nil {
			return nil, nil, err
		}
		// Here token == e.highest.
		if len(e.running) == 0 || e.runToken == token {
			return g.admit(ctx, e, token)
		}
		// Requests of a lower token are draining.
		if e.drained == nil {
			e.drained = make(chan struct{})
		}
		drained := e.drained
		e.waiting++
		g.mu.Unlock()
		select {
		case <-drained:
		case <-ctx.Done():
		}
		g.mu.Lock()
		e.waiting--
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("fence: wait for the requests of lower tokens of lock %q: %w", name, context.Cause(ctx))
		}
		// Again: a higher token may have come meanwhile.
	}
}

// admit starts a request of token, the running token of e (or e runs
// nothing). g.mu is held.
func (g *Guard) admit(ctx context.Context, e *entry, token uint64) (context.Context, func(), error) {
	if len(e.running) == 0 {
		e.runToken = token
		if e.running == nil {
			e.running = make(map[uint64]context.CancelCauseFunc)
		}
	}
	rctx, cancel := context.WithCancelCause(ctx)
	e.seq++
	id := e.seq
	e.running[id] = cancel
	var once sync.Once
	release := func() {
		once.Do(func() {
			cancel(context.Canceled)
			g.mu.Lock()
			defer g.mu.Unlock()
			delete(e.running, id)
			if len(e.running) > 0 {
				return
			}
			e.running = nil // an idle name keeps no map
			if e.drained != nil {
				close(e.drained)
				e.drained = nil
			}
		})
	}
	return rctx, release, nil
}

// accept records token for name if it is not stale, and cancels the
// running requests of a lower token. It returns the name's entry. g.mu is
// held.
func (g *Guard) accept(name string, token uint64) (*entry, error) {
	e := g.m[name]
	if e == nil {
		if g.m == nil {
			g.m = make(map[string]*entry)
		}
		e = &entry{}
		g.m[name] = e
	}
	if token < e.highest {
		return nil, &StaleError{Name: name, Token: token, Highest: e.highest}
	}
	e.highest = token
	if len(e.running) > 0 && e.runToken < token {
		cause := &StaleError{Name: name, Token: e.runToken, Highest: token}
		for _, cancel := range e.running {
			cancel(cause)
		}
	}
	return e, nil
}

// Highest returns the highest token accepted for name, or 0 if none was
// (or it was forgotten).
func (g *Guard) Highest(name string) uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e := g.m[name]; e != nil {
		return e.highest
	}
	return 0
}

// Forget drops what g remembers of name, so that any token is accepted
// again for it, and frees its memory. Use it for names that will not be
// used again: forgetting a name still in use would let a paused holder of
// it in. It reports whether it forgot: it does not forget a name that has
// requests admitted by Enter running or waiting (true if name is
// unknown).
func (g *Guard) Forget(name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.m[name]
	if e == nil {
		return true
	}
	if len(e.running) > 0 || e.waiting > 0 {
		return false
	}
	delete(g.m, name)
	return true
}

// Len returns the number of names g remembers: its memory is about that
// many times (100 bytes + the name's length).
func (g *Guard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.m)
}

// checkArgs refuses token 0 and names that are not lock names.
func checkArgs(name string, token uint64) error {
	if err := validateName(name); err != nil {
		return err
	}
	if token == 0 {
		return invalidf("token 0 for lock %q: fencing tokens start at 1", name)
	}
	return nil
}
