package api

// CheckRequest is the body of POST /v1/locks/{name}/check: is Token the
// current fencing token of the lock? A resource that cannot keep the
// highest token it saw (client/fence) asks this before it accepts a write.
type CheckRequest struct {
	Token uint64 `json:"token"`
	// Session, when set, makes the check current only if this session
	// holds with Token: shared holders and semaphore permits granted in
	// one log entry share a token, so a resource that knows who writes
	// should say so.
	Session SessionID `json:"session,omitempty"`
}

// ExampleCheck is an example body of POST /v1/locks/{name}/check.
const ExampleCheck = `{"token":42}`

// Validate checks a check's body: a token is required.
func (r *CheckRequest) Validate() error {
	if r.Token == 0 {
		return invalid("token is required (a positive number), e.g. %s", ExampleCheck)
	}
	return nil
}

// CheckResponse answers POST /v1/locks/{name}/check and
// /v1/semaphores/{name}/check (200): Current is true when Token is the
// token of a hold of the lock (exclusive or shared), or of a permit of the
// semaphore, now. The answer is linearizable (a ReadIndex round; no log
// entry): Current true means that the holder held it at some moment during
// the request. Holder is the exclusive holder of a lock (null when free or
// held shared); Holders every holder (shared holders, permits).
type CheckResponse struct {
	Name    string   `json:"name"`
	Token   uint64   `json:"token"`
	Current bool     `json:"current"`
	Holder  *Holder  `json:"holder"`
	Holders []Holder `json:"holders,omitempty"`
}
