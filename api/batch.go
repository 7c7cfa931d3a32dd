package api

// BatchPath is the path of POST /v1/batch.
const BatchPath = "/v1/batch"

// MaxBatchOps is the most operations one POST /v1/batch may carry.
const MaxBatchOps = 1000

// The operations of a batch (BatchOp.Op).
const (
	// BatchAcquire tries to acquire a lock for a session, like
	// POST /v1/locks/{name}/acquire without a wait: the lock is granted if
	// it is free (or already held by the session: the same token), else
	// the answer is lock_held. It never queues and never waits.
	BatchAcquire = "acquire"
	// BatchRelease releases a lock, like POST /v1/locks/{name}/release.
	BatchRelease = "release"
	// BatchCampaign campaigns in election Name with Value, like
	// POST /v1/elections/{name}/campaign without a wait: the session leads
	// if nobody does (or already leads: the same term), else the answer is
	// not_leader. It never queues and never waits.
	BatchCampaign = "campaign"
	// BatchResign gives up the leadership of term Term, like
	// POST /v1/elections/{name}/resign.
	BatchResign = "resign"
)

// BatchRequest is the body of POST /v1/batch: 1 to MaxBatchOps lock and
// election operations carried by one HTTP request. Each operation takes effect, or
// fails, on its own, exactly as the same request sent alone would: a batch
// is not a transaction. The operations run concurrently; their order in the
// list implies no order of effect. A batch with an invalid operation is
// refused whole (400 naming it) and changes nothing.
type BatchRequest struct {
	Ops []BatchOp `json:"ops"`
	// Atomic takes every lock of the batch in one log entry, or none: the
	// operations must be acquires (tries) of one session on distinct
	// names, at most MaxAtomicOps. Granted: 200 with every grant (a new
	// grant's token is that entry's index). A lock held by another
	// session: 409 lock_held for the whole batch, naming that lock and its
	// holder; nothing was taken. It needs cluster version 5 (409
	// failed_precondition before).
	Atomic bool `json:"atomic,omitempty"`
}

// MaxAtomicOps bounds the operations of an atomic batch.
const MaxAtomicOps = 100

// BatchOp is one operation of a batch.
type BatchOp struct {
	// Op is BatchAcquire or BatchRelease.
	Op string `json:"op"`
	// Name is the lock's name.
	Name string `json:"name"`
	// Session acquires or releases; required.
	Session SessionID `json:"session"`
	// Token is the fencing token to release (> 0); only for BatchRelease.
	Token uint64 `json:"token,omitempty"`
	// Mode is the mode of a BatchAcquire: ModeExclusive (the default) or
	// ModeShared.
	Mode string `json:"mode,omitempty"`
	// KeepQueued, only for a BatchAcquire: when the lock is held, the
	// session joins its queue and keeps its place (the answer is 409
	// lock_held with "queued": true), as AcquireRequest.KeepQueued with no
	// wait.
	KeepQueued bool `json:"keep_queued,omitempty"`
	// Value is the value of a BatchCampaign (at most MaxValueSize bytes).
	Value string `json:"value,omitempty"`
	// Term is the leadership term a BatchResign gives up (> 0).
	Term uint64 `json:"term,omitempty"`
}

// BatchResponse answers POST /v1/batch (200): one result per operation, in
// request order.
type BatchResponse struct {
	Results []BatchResult `json:"results"`
}

// BatchResult is the outcome of one operation of a batch: Status is the HTTP
// status the operation would have got as a request of its own, with Grant
// for a 2xx status (what acquire and release answer) and Error otherwise (the
// error object of that answer). A 503 (codes unavailable and timeout) has the
// same meaning as for a request of its own: the operation may be retried.
type BatchResult struct {
	Status int        `json:"status"`
	Grant  *LockGrant `json:"grant,omitempty"`
	Error  *Error     `json:"error,omitempty"`
	// Leadership answers a 2xx campaign or resign (what those requests
	// answer); Grant answers acquires and releases.
	Leadership *Leadership `json:"leadership,omitempty"`
}
