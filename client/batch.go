package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/raftlock/raftlock/api"
)

// A Client has at most maxLockFlights lock requests (acquire tries and
// releases, alone or batched) in flight at once while its batches are
// small, and busyLockFlights once they carry busyBatch operations or more:
// under load, fewer and fuller requests cost the client and the leader
// less CPU per operation.
const (
	maxLockFlights  = 8
	busyLockFlights = 2
	busyBatch       = 4
)

// maxBatchOps is the most operations the SDK puts in one POST /v1/batch.
const maxBatchOps = 256

// batcher coalesces the bounded lock and election requests of a Client's
// goroutines: acquire tries (the first attempt of every Lock, TryLock,
// RLock and TryRLock, exclusive or shared), releases of locks, campaign
// tries (the first attempt of every Campaign) and resigns. A Semaphore's
// requests always go alone (a batch has no semaphore operations).
// While fewer than limit() such requests are in flight, a request goes
// alone, exactly as it would without the batcher. Beyond that it waits in
// a queue, and when a flight ends, everything queued (up to maxBatchOps)
// goes in one POST /v1/batch, unless more than limit() flights are in the
// air (the others take the queue when they land). Under load this divides
// the HTTP work of the client and of the leader by the size of the
// batches; a lone goroutine sees no difference.
//
// A batch is one attempt: when it fails as a whole (a transport error, a
// 503, a 429, a server without /v1/batch), or an operation's own answer is
// a 503 or a 429 rate_limited,
// each of its operations is sent again alone, by its caller, with the usual
// retries, knowing whether the failed attempt may have taken effect. A
// caller whose context ends while its operation is queued withdraws it
// (nothing was sent); once it is sent, the outcome is unknown, as for any
// request.
//
// Waiting acquires never go through the batcher: a flight must be short,
// or a release queued behind acquires that wait for it could never leave.
type batcher struct {
	c *Client
	// off: every request goes alone (Config.UnbatchedLocks, or the server
	// answered a batch with 404 or 405).
	off atomic.Bool

	mu        sync.Mutex
	flights   int        // requests in flight, alone or batched
	queue     []*batchOp // waiting for a flight
	lastBatch int        // operations in the last batch taken from the queue
}

// limit is how many flights may be in the air. b.mu is held.
func (b *batcher) limit() int {
	if b.lastBatch >= busyBatch {
		return busyLockFlights
	}
	return maxLockFlights
}

// batchOp is an operation waiting in the queue or in a batch in flight.
type batchOp struct {
	op   api.BatchOp
	done chan struct{} // closed once res or fail is set
	res  api.BatchResult
	// fail: the batch failed as a whole; unknown: it may have taken
	// effect anyway.
	fail, unknown bool
}

// doLock sends cl, a lock request that answers without waiting (acquire
// without wait, release), the same as c.do would, described also as op for a
// batch. out (may be nil) receives the grant.
func (c *Client) doLock(ctx context.Context, cl call, op api.BatchOp, out *api.LockGrant) (callInfo, error) {
	var dst any // a nil *api.LockGrant must not become a non-nil any
	if out != nil {
		dst = out
	}
	return c.doBatched(ctx, cl, op, dst, func(r *api.BatchResult) bool {
		if r.Grant == nil {
			return false
		}
		if out != nil {
			*out = *r.Grant
		}
		return true
	})
}

// doElection is doLock for an election request that answers without
// waiting (a campaign without wait, a resign): out (may be nil) receives
// the leadership.
func (c *Client) doElection(ctx context.Context, cl call, op api.BatchOp, out *api.Leadership) (callInfo, error) {
	var dst any
	if out != nil {
		dst = out
	}
	return c.doBatched(ctx, cl, op, dst, func(r *api.BatchResult) bool {
		if r.Leadership == nil {
			return false
		}
		if out != nil {
			*out = *r.Leadership
		}
		return true
	})
}

// doBatched sends cl alone (into dst) or as op in a batch, whose 2xx result
// take copies into its destination (false: the result lacks its answer).
func (c *Client) doBatched(ctx context.Context, cl call, op api.BatchOp, dst any, take func(*api.BatchResult) bool) (callInfo, error) {
	b := &c.batch
	if b.off.Load() {
		return c.do(ctx, cl, dst)
	}
	b.mu.Lock()
	if b.flights < b.limit() {
		b.flights++
		b.mu.Unlock()
		info, err := c.do(ctx, cl, dst)
		b.land()
		return info, err
	}
	o := &batchOp{op: op, done: make(chan struct{})}
	b.queue = append(b.queue, o)
	b.mu.Unlock()

	select {
	case <-o.done:
	case <-ctx.Done():
		b.mu.Lock()
		if i := slices.Index(b.queue, o); i >= 0 {
			b.queue = slices.Delete(b.queue, i, i+1)
			b.mu.Unlock()
			return callInfo{}, fmt.Errorf("client: %s %s: %w", cl.method, cl.path, ctx.Err())
		}
		b.mu.Unlock()
		return callInfo{unknownBefore: true}, fmt.Errorf("client: %s %s: %w: %w (sent in a batch)", cl.method, cl.path, ctx.Err(), api.ErrOutcomeUnknown)
	}
	if !o.fail && o.res.Status >= 200 && o.res.Status < 300 && take(&o.res) {
		return callInfo{}, nil
	}
	if !o.fail && o.res.Error != nil && o.res.Status != http.StatusServiceUnavailable && o.res.Error.Code != api.CodeRateLimited {
		return callInfo{}, o.res.Error
	}
	// Go again alone, with the retries of c.do.
	unknown := o.unknown || (o.res.Error != nil && o.res.Error.Code == api.CodeTimeout)
	info, err := c.do(ctx, cl, dst)
	info.unknownBefore = info.unknownBefore || unknown
	return info, err
}

// land ends a flight: the queue, if any, leaves in a batch on it.
func (b *batcher) land() {
	b.mu.Lock()
	if len(b.queue) == 0 || b.flights > b.limit() {
		b.flights--
		b.mu.Unlock()
		return
	}
	ops := b.take()
	b.mu.Unlock()
	go b.fly(ops)
}

// take removes up to maxBatchOps operations from the queue. b.mu is held.
func (b *batcher) take() []*batchOp {
	n := min(len(b.queue), maxBatchOps)
	b.lastBatch = n
	ops := slices.Clone(b.queue[:n])
	b.queue = slices.Delete(b.queue, 0, n)
	return ops
}

// fly sends ops in a batch, then whatever queued meanwhile, until the
// queue is empty; then the flight ends.
func (b *batcher) fly(ops []*batchOp) {
	for {
		b.send(ops)
		b.mu.Lock()
		if len(b.queue) == 0 || b.flights > b.limit() {
			b.flights--
			b.mu.Unlock()
			return
		}
		ops = b.take()
		b.mu.Unlock()
	}
}

// send makes one attempt at POST /v1/batch with ops and delivers the
// results. It is bounded by the Client's RequestTimeout; no caller's
// context ends it.
func (b *batcher) send(ops []*batchOp) {
	c := b.c
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var resp api.BatchResponse
	base := c.target()
	cl := call{method: http.MethodPost, path: api.BatchPath, write: true}
	leader, err := c.attempt(ctx, base, cl, encodeBatch(ops), &resp)
	if c.acceptLeader(ctx, base, leader) {
		c.setLeader(leader)
	}
	if err == nil && len(resp.Results) != len(ops) {
		err = fmt.Errorf("the batch of %d operations got %d results", len(ops), len(resp.Results))
	}
	if err == nil {
		for i, o := range ops {
			o.res = resp.Results[i]
			close(o.done)
		}
		return
	}
	unknown := true
	var ae *api.Error
	switch {
	case errors.As(err, &ae):
		switch ae.Code {
		case api.CodeNotFound, api.CodeMethodNotAllowed:
			// A server from before /v1/batch.
			b.off.Store(true)
			unknown = false
			c.log.Info("the server has no batch endpoint: lock requests go one by one", "endpoint", base, "error", err)
		case api.CodeTimeout, api.CodeInternal:
		default:
			unknown = false
		}
	case isDial(err):
		unknown = false
		c.failed(base)
	}
	c.log.Debug("batch failed, its operations go alone", "endpoint", base, "ops", len(ops), "error", err)
	for _, o := range ops {
		o.fail, o.unknown = true, unknown
		close(o.done)
	}
}
