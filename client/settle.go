package client

import (
	"context"
	"errors"
	"time"

	"github.com/raftlock/raftlock/api"
)

// settle runs work, a clean-up that only the server's answer completes
// (leave a queue, release what won the race), until work reports it done:
// first on the caller's goroutine, for up to timeout (cleanupTimeout; not
// cut short by ctx, whose end may be why the caller gave up), then, if it is still
// not done, on a goroutine of its own until it is done or the session ends
// (the server then ends the session's places and holds itself). It reports
// whether it handed the work to that goroutine, which calls release when it
// ends: the caller's turn on its Mutex or Election passes to it, so that
// the next Lock, Campaign, Unlock or Resign waits for the clean-up.
func (s *Session) settle(ctx context.Context, timeout time.Duration, name string, work func(context.Context) bool, release func()) bool {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	for try := 1; ; try++ {
		if work(cctx) {
			return false
		}
		if sleep(cctx, backoff(min(try, 6))) != nil {
			break
		}
	}
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return false // the session ended: nothing is left to clean up
	}
	s.settleWG.Add(1)
	s.mu.Unlock()
	s.log.Warn("the cluster did not answer a clean-up within its timeout: it goes on in the background", "name", name)
	go func() {
		defer s.settleWG.Done()
		defer release()
		for try := 1; s.loopCtx.Err() == nil; try++ {
			ctx, cancel := context.WithTimeout(s.loopCtx, s.c.timeout)
			done := work(ctx)
			cancel()
			if done || sleep(s.loopCtx, backoff(min(try, 6))) != nil {
				return
			}
		}
	}()
	return true
}

// retryable reports whether err leaves a request's effect to be decided by
// a retry: no server answered it (unavailable), or its outcome is unknown.
func retryable(err error) bool {
	return errors.Is(err, api.ErrUnavailable) || errors.Is(err, api.ErrOutcomeUnknown) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
