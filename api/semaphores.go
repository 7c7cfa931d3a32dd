package api

// Counting semaphores: POST /v1/semaphores/{name}/acquire, /release,
// /cancel, /check; GET /v1/semaphores/{name} and /v1/semaphores?prefix=.
// A semaphore has Limit permits, one per session at most; its first
// acquirer sets the limit, and another limit while anybody holds a permit
// is 409 limit_mismatch. Waiters are granted FIFO; a grant's token is the
// index of the log entry that granted it. Semaphores are a namespace of
// their own (semaphore "x" and lock "x" are unrelated); permissions are
// those of locks (the lock action on the name).

// SemaphoreAcquireRequest is the body of POST
// /v1/semaphores/{name}/acquire.
type SemaphoreAcquireRequest struct {
	Session SessionID `json:"session"`
	// Limit is the semaphore's number of permits, 1 to MaxSemaphoreLimit.
	Limit uint32 `json:"limit"`
	// Wait, KeepQueued: as for a lock's acquire.
	Wait       Duration `json:"wait,omitempty"`
	KeepQueued bool     `json:"keep_queued,omitempty"`
}

// MaxSemaphoreLimit bounds a semaphore's limit.
const MaxSemaphoreLimit = 1 << 16

// ExampleSemaphoreAcquire is an example body of a semaphore acquire.
const ExampleSemaphoreAcquire = `{"session":"42","limit":3,"wait":"30s"}`

// Validate checks the body of a semaphore acquire.
func (r *SemaphoreAcquireRequest) Validate(l Limits) error {
	if r.Session == 0 {
		return invalid("session is required, e.g. %s", ExampleSemaphoreAcquire)
	}
	if r.Limit == 0 || r.Limit > MaxSemaphoreLimit {
		return invalid("limit must be 1 to %d (the number of permits), e.g. %s", MaxSemaphoreLimit, ExampleSemaphoreAcquire)
	}
	if err := checkWait(r.Wait, l); err != nil {
		return err
	}
	if r.KeepQueued && r.Wait == 0 {
		return invalid("keep_queued needs a wait: a try (no wait) never queues")
	}
	return nil
}

// Permit answers a successful semaphore acquire (the permit's token) and
// release (the released token).
type Permit struct {
	Name    string    `json:"name"`
	Session SessionID `json:"session"`
	Token   uint64    `json:"token"`
	Limit   uint32    `json:"limit,omitempty"`
}

// SemaphoreReleaseRequest is the body of POST
// /v1/semaphores/{name}/release: the permit of Session with Token.
type SemaphoreReleaseRequest struct {
	Session SessionID `json:"session"`
	Token   uint64    `json:"token"`
}

// Validate checks the body of a semaphore release.
func (r *SemaphoreReleaseRequest) Validate() error {
	if r.Session == 0 || r.Token == 0 {
		return invalid("session and token are required, e.g. %s", `{"session":"42","token":17}`)
	}
	return nil
}

// SemaphoreCancelResponse answers POST /v1/semaphores/{name}/cancel:
// whether the session left the queue, and its permit when the grant won
// the race (the caller's to release).
type SemaphoreCancelResponse struct {
	Left   bool    `json:"left"`
	Permit *Permit `json:"permit"`
}

// Semaphore answers GET /v1/semaphores/{name}. A semaphore nobody holds a
// permit of does not exist: Limit 0 and no holders or waiters.
type Semaphore struct {
	Name  string `json:"name"`
	Limit uint32 `json:"limit"`
	// Holders hold a permit each, in grant order; Waiters are in queue
	// order. Never null.
	Holders []Holder `json:"holders"`
	Waiters []Waiter `json:"waiters"`
}

// SemaphoreList answers GET /v1/semaphores?prefix=p&limit=n&after=name,
// paged as LockList.
type SemaphoreList struct {
	Semaphores []Semaphore `json:"semaphores"`
	Next       string      `json:"next,omitempty"`
}
