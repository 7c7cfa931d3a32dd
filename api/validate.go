package api

import (
	"fmt"
	"time"
)

// Limits are a server's bounds on the durations of requests. The server
// validates every request against its own; a client may check against the
// defaults (DefaultLimits) before it sends.
type Limits struct {
	MinTTL, MaxTTL time.Duration // session TTL, bounds included
	MaxWait        time.Duration // wait of an acquire or a campaign
}

// DefaultLimits are the bounds of a server with default settings.
func DefaultLimits() Limits {
	return Limits{MinTTL: 2 * time.Second, MaxTTL: time.Hour, MaxWait: 5 * time.Minute}
}

// Examples of request bodies, quoted by the errors that refuse a body.
const (
	ExampleCreateSession = `{"ttl":"10s","owner":"host-a"}`
	ExampleAcquire       = `{"session":"42","wait":"5s"} or {"ttl":"30s","owner":"job-1"}`
	ExampleRelease       = `{"session":"42","token":17}`
	ExampleCancel        = `{"session":"42"}`
	ExampleKeepAlive     = `{"ids":["12","14"]}`
	ExampleCampaign      = `{"session":"42","value":"10.0.0.7:8080","wait":"30s"}`
	ExampleProclaim      = `{"session":"42","term":17,"value":"10.0.0.7:9090"}`
	ExampleResign        = `{"session":"42","term":17}`
	ExampleBatch         = `{"ops":[{"op":"acquire","name":"jobs/a","session":"42"},{"op":"release","name":"jobs/b","session":"42","token":17}]}`
)

// The Validate methods check a decoded request body against the API's
// rules and l (where durations matter) and return an *Error with
// CodeInvalidArgument that says what is wrong, or nil. They check the body
// alone: names in the path are checked by ValidateLockName.

func invalid(format string, args ...any) *Error {
	return Errorf(CodeInvalidArgument, format, args...)
}

func checkTTL(field string, d Duration, l Limits) error {
	if t := time.Duration(d); t < l.MinTTL || t > l.MaxTTL {
		return invalid("%s %v is out of bounds: it must be between %v and %v", field, t, l.MinTTL, l.MaxTTL)
	}
	return nil
}

func checkWait(d Duration, l Limits) error {
	if t := time.Duration(d); t < 0 || t > l.MaxWait {
		return invalid("wait %v is out of bounds: it must be between 0s (try once) and %v", t, l.MaxWait)
	}
	return nil
}

// ValidateOwner checks an owner label (of a session, or a filter): at
// most MaxOwnerLen bytes.
func ValidateOwner(owner string) error { return checkOwner(owner) }

func checkOwner(owner string) error {
	if len(owner) > MaxOwnerLen {
		return invalid("owner is %d bytes long: at most %d are allowed", len(owner), MaxOwnerLen)
	}
	return nil
}

func checkValue(v string) error {
	if len(v) > MaxValueSize {
		return invalid("value is %d bytes long: at most %d are allowed", len(v), MaxValueSize)
	}
	return nil
}

// Validate checks a POST /v1/sessions body: a TTL within l, an owner of at
// most MaxOwnerLen bytes, a request ID of at most MaxRequestIDLen bytes of
// printable ASCII.
func (r *CreateSessionRequest) Validate(l Limits) error {
	if r.TTL == 0 {
		return invalid("ttl is required: a Go duration between %v and %v, e.g. %s", l.MinTTL, l.MaxTTL, ExampleCreateSession)
	}
	if err := checkTTL("ttl", r.TTL, l); err != nil {
		return err
	}
	if err := checkOwner(r.Owner); err != nil {
		return err
	}
	if len(r.RequestID) > MaxRequestIDLen {
		return invalid("request_id is %d bytes long: at most %d are allowed", len(r.RequestID), MaxRequestIDLen)
	}
	if r.LockDelay < 0 || time.Duration(r.LockDelay) > MaxLockDelay {
		return invalid("lock_delay %v: want a Go duration from 0 to %v", time.Duration(r.LockDelay), MaxLockDelay)
	}
	for i := 0; i < len(r.RequestID); i++ {
		if c := r.RequestID[i]; c < 0x21 || c > 0x7e {
			return invalid("request_id has the byte %q at %d: use printable ASCII without spaces (e.g. 32 random hex digits)", c, i)
		}
	}
	return nil
}

// Validate checks a POST /v1/locks/{name}/acquire body: exactly one of
// session and ttl; ttl within l and owner only with it; a wait within l;
// keep_queued only with a session and a wait.
func (r *AcquireRequest) Validate(l Limits) error {
	if (r.Session == 0) == (r.TTL == 0) {
		return invalid("give exactly one of session (acquire for an existing session) or ttl (open an ephemeral session bound to this lock), e.g. %s", ExampleAcquire)
	}
	if r.Session == 0 {
		if err := checkTTL("ttl", r.TTL, l); err != nil {
			return err
		}
		if err := checkOwner(r.Owner); err != nil {
			return err
		}
		if r.KeepQueued {
			return invalid("keep_queued needs a session: an ephemeral session (ttl) exists for this one request, and its place ends with it")
		}
	} else if r.Owner != "" {
		return invalid("owner is only for an ephemeral acquire (with ttl); a session's owner is set when it is opened")
	}
	if err := checkWait(r.Wait, l); err != nil {
		return err
	}
	return checkMode(r.Mode)
}

// checkMode checks a lock mode: "", "exclusive" or "shared".
func checkMode(mode string) error {
	if mode != "" && mode != ModeExclusive && mode != ModeShared {
		return invalid("mode %q is not a lock mode: use %q (the default) or %q", mode, ModeExclusive, ModeShared)
	}
	return nil
}

// Validate checks a POST /v1/locks/{name}/release body: a session and a
// token, unless it forces the release.
func (r *ReleaseRequest) Validate() error {
	if r.Force {
		return nil
	}
	if r.Session == 0 {
		return invalid("session is required, e.g. %s", ExampleRelease)
	}
	if r.Token == 0 {
		return invalid("token is required and must be > 0: the fencing token of the acquire, e.g. %s", ExampleRelease)
	}
	return nil
}

// Validate checks a cancel body: a session.
func (r *CancelRequest) Validate() error {
	if r.Session == 0 {
		return invalid("session is required, e.g. %s", ExampleCancel)
	}
	return nil
}

// Validate checks a POST /v1/sessions/keepalive body: 1 to MaxKeepAliveIDs
// distinct session IDs.
func (r *KeepAliveRequest) Validate() error {
	if len(r.IDs) == 0 {
		return invalid("ids is required: 1 to %d session IDs, e.g. %s", MaxKeepAliveIDs, ExampleKeepAlive)
	}
	if len(r.IDs) > MaxKeepAliveIDs {
		return invalid("ids has %d session IDs: at most %d are allowed in one keep-alive", len(r.IDs), MaxKeepAliveIDs)
	}
	seen := make(map[SessionID]struct{}, len(r.IDs))
	for i, id := range r.IDs {
		if id == 0 {
			// null in the array: SessionID leaves it zero.
			return invalid("ids[%d] is not a session ID: each must be a decimal string such as \"12\"", i)
		}
		if _, dup := seen[id]; dup {
			return invalid("session %d appears more than once in ids: give each ID once", id)
		}
		seen[id] = struct{}{}
	}
	return nil
}

// Validate checks a POST /v1/elections/{name}/campaign body: a session, a
// value of at most MaxValueSize bytes, a wait within l, keep_queued only
// with a wait.
func (r *CampaignRequest) Validate(l Limits) error {
	if r.Session == 0 {
		return invalid("session is required, e.g. %s", ExampleCampaign)
	}
	if err := checkValue(r.Value); err != nil {
		return err
	}
	if err := checkWait(r.Wait, l); err != nil {
		return err
	}
	if r.KeepQueued && r.Wait == 0 {
		return invalid("keep_queued needs a wait: a try (no wait) never queues")
	}
	return nil
}

// Validate checks a POST /v1/elections/{name}/proclaim body.
func (r *ProclaimRequest) Validate() error {
	if r.Session == 0 || r.Term == 0 {
		return invalid("session and term (> 0, from the campaign) are required, e.g. %s", ExampleProclaim)
	}
	return checkValue(r.Value)
}

// Validate checks a POST /v1/elections/{name}/resign body.
func (r *ResignRequest) Validate() error {
	if r.Session == 0 || r.Term == 0 {
		return invalid("session and term (> 0, from the campaign) are required, e.g. %s", ExampleResign)
	}
	return nil
}

// Validate checks a POST /v1/batch body: 1 to MaxBatchOps operations, each
// valid as the request it stands for (an acquire is a try: no wait, no
// ephemeral session). The error names the first invalid operation.
func (r *BatchRequest) Validate() error {
	if len(r.Ops) == 0 {
		return invalid("ops is required: 1 to %d operations, e.g. %s", MaxBatchOps, ExampleBatch)
	}
	if len(r.Ops) > MaxBatchOps {
		return invalid("ops has %d operations: at most %d are allowed in one batch", len(r.Ops), MaxBatchOps)
	}
	for i := range r.Ops {
		if err := r.Ops[i].Validate(); err != nil {
			e := err.(*Error)
			return invalid("ops[%d]: %s", i, e.Message)
		}
	}
	if r.Atomic {
		if len(r.Ops) > MaxAtomicOps {
			return invalid("an atomic batch takes at most %d locks, not %d", MaxAtomicOps, len(r.Ops))
		}
		seen := map[string]int{}
		for i, o := range r.Ops {
			switch {
			case o.Op != BatchAcquire:
				return invalid("ops[%d]: an atomic batch holds acquires only, not %q", i, o.Op)
			case o.KeepQueued:
				return invalid("ops[%d]: keep_queued is not for an atomic batch: it takes every lock at once or none, and never queues", i)
			case o.Session != r.Ops[0].Session:
				return invalid("ops[%d]: an atomic batch acquires for one session (ops[0] is session %d, this one %d)", i, r.Ops[0].Session, o.Session)
			}
			if j, dup := seen[o.Name]; dup {
				return invalid("ops[%d]: lock %q is already ops[%d]: an atomic batch names each lock once", i, o.Name, j)
			}
			seen[o.Name] = i
		}
	}
	return nil
}

// Validate checks one operation of a batch.
func (o *BatchOp) Validate() error {
	if err := ValidateLockName(o.Name); err != nil {
		return invalid("%v", err)
	}
	if (o.Op == BatchAcquire || o.Op == BatchRelease) && (o.Value != "" || o.Term != 0) {
		return invalid("value and term are only for election operations (campaign, resign)")
	}
	switch o.Op {
	case BatchCampaign, BatchResign:
		if o.Token != 0 || o.Mode != "" || o.KeepQueued {
			return invalid("token, mode and keep_queued are only for lock operations (acquire, release)")
		}
		if o.Op == BatchCampaign {
			if o.Term != 0 {
				return invalid("term is only for a resign")
			}
			return (&CampaignRequest{Session: o.Session, Value: o.Value}).Validate(Limits{})
		}
		if o.Value != "" {
			return invalid("value is only for a campaign")
		}
		return (&ResignRequest{Session: o.Session, Term: o.Term}).Validate()
	case BatchAcquire:
		if o.Token != 0 {
			return invalid("token is only for a release")
		}
		if o.Session == 0 {
			return invalid("session is required, e.g. %s", ExampleBatch)
		}
		return checkMode(o.Mode)
	case BatchRelease:
		if o.Mode != "" {
			return invalid("mode is only for an acquire: a release names its token")
		}
		if o.KeepQueued {
			return invalid("keep_queued is only for an acquire")
		}
		return (&ReleaseRequest{Session: o.Session, Token: o.Token}).Validate()
	}
	return invalid("op %q is not an operation: use %q (a try, without wait), %q, %q (a try) or %q", o.Op, BatchAcquire, BatchRelease, BatchCampaign, BatchResign)
}

// ValidateListLimit checks the ?limit= of a listing: 0 (absent: the
// default) or 1 to MaxListLimit.
func ValidateListLimit(limit int) error {
	if limit < 0 || limit > MaxListLimit {
		return invalid("limit %d is out of bounds: it must be between 1 and %d", limit, MaxListLimit)
	}
	return nil
}

// Names are '/'-separated segments (jobs/nightly/db). A segment is never
// empty and never "." or "..": a name is a key, not a path to resolve, and
// a proxy, a shell or a client library that normalises paths would turn
// "a/../b", "a//b" or "./a" into another name. Without a trailing '/' and
// without empty segments, a prefix that ends in '/' ("jobs/") is
// unambiguously a prefix of whole segments, which permissions on name
// prefixes rely on: "jobs/" is a prefix, never a name.

// checkNameSegments reports the first segment rule that name, made of name
// characters, breaks: an empty segment (a leading or trailing '/', or "//")
// or a segment "." or "..". ValidateLockName applies it.
func checkNameSegments(name string) error {
	return checkSegments("lock name", name, false)
}

// validateLockPrefix reports whether prefix may begin a valid lock name:
// empty, or up to MaxLockNameLen name characters whose complete segments
// (all but the last) follow the segment rules. The last segment may be
// empty (a prefix of whole segments, "jobs/"), or "." or ".." (the start
// of a segment such as "..x"). ValidateLockPrefix applies it.
func validateLockPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if len(prefix) > MaxLockNameLen {
		return fmt.Errorf("lock name prefix is %d bytes long: at most %d are allowed", len(prefix), MaxLockNameLen)
	}
	for i := 0; i < len(prefix); i++ {
		if !nameByte(prefix[i]) {
			return fmt.Errorf("lock name prefix %q has the character %q at byte %d: only ASCII letters, digits and . _ - : / are allowed", clipString(prefix), prefix[i], i)
		}
	}
	return checkSegments("lock name prefix", prefix, true)
}

// checkSegments checks the segments of s (a name, or a prefix when
// prefix): none empty, none "." or "..". A prefix's last segment is
// incomplete and may be anything but an empty first segment.
func checkSegments(what, s string, prefix bool) error {
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '/' {
			continue
		}
		seg, last := s[start:i], i == len(s)
		if last && prefix {
			return nil // "jobs/", "jobs/.", "jobs/ni", ".": the start of a segment
		}
		switch {
		case seg == "" && start == 0:
			return fmt.Errorf("%s %q starts with '/': names are '/'-separated segments, none of them empty (no leading or trailing '/', no \"//\")", what, clipString(s))
		case seg == "" && last:
			return fmt.Errorf("%s %q ends with '/': names are '/'-separated segments, none of them empty (a name ending in '/' could not be told from a prefix of names such as %q)", what, clipString(s), clipString(s)+"x")
		case seg == "":
			return fmt.Errorf("%s %q has an empty segment (\"//\") at byte %d: names are '/'-separated segments, none of them empty", what, clipString(s), start-1)
		case seg == "." || seg == "..":
			return fmt.Errorf("%s %q has the segment %q at byte %d: segments \".\" and \"..\" are not allowed (a name is a key, not a path to resolve)", what, clipString(s), seg, start)
		}
		start = i + 1
	}
	return nil
}
