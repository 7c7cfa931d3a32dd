package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/raftnode"
)

const exampleBatch = `{"ops":[{"op":"acquire","name":"jobs/a","session":"42"},{"op":"release","name":"jobs/b","session":"42","token":17}]}`

// batch serves POST /v1/batch (api.BatchRequest) → 200 api.BatchResponse.
//
// The whole request is checked first: 1 to api.MaxBatchOps operations, each
// an acquire (a try: no wait, no ephemeral session) or a release with its
// token, by a session, on a valid lock name. Anything else is a 400 that
// names the operation, and nothing is proposed. A follower forwards the
// batch to the leader, as it forwards any write; when no leader is known
// the answer is 503 unavailable.
//
// Then every operation is proposed at once, as concurrent requests would
// be (the node puts them into as few log entries as it can), and each
// result is what its own request would have answered: 200 with the grant,
// 409 lock_held or not_holder, 404 session_not_found, or 503 timeout or
// unavailable (outcome unknown or nothing changed) when the deadline passed
// or leadership moved while the batch ran. Retrying a batch, or any of its
// operations, is safe for the same reasons as retrying those requests.
func (s *Server) batch(c echo.Context) error {
	var req api.BatchRequest
	if err := decodeBody(c, &req, true, exampleBatch); err != nil {
		return err
	}
	if len(req.Ops) == 0 {
		return api.Errorf(api.CodeInvalidArgument, "ops is required: 1 to %d operations, e.g. %s", api.MaxBatchOps, exampleBatch)
	}
	if len(req.Ops) > api.MaxBatchOps {
		return api.Errorf(api.CodeInvalidArgument, "ops has %d operations: at most %d are allowed in one batch", len(req.Ops), api.MaxBatchOps)
	}
	cmds := make([]lock.Command, len(req.Ops))
	for i, op := range req.Ops {
		if err := api.ValidateLockName(op.Name); err != nil {
			return api.Errorf(api.CodeInvalidArgument, "ops[%d]: %v", i, err)
		}
		if op.Session == 0 {
			return api.Errorf(api.CodeInvalidArgument, "ops[%d]: session is required, e.g. %s", i, exampleBatch)
		}
		switch op.Op {
		case api.BatchAcquire:
			if op.Token != 0 {
				return api.Errorf(api.CodeInvalidArgument, "ops[%d]: token is only for a release", i)
			}
			cmds[i] = lock.Command{Op: lock.OpAcquire, Session: uint64(op.Session), Name: op.Name}
		case api.BatchRelease:
			if op.Token == 0 {
				return api.Errorf(api.CodeInvalidArgument, "ops[%d]: token is required for a release and must be > 0: the fencing token of the acquire", i)
			}
			cmds[i] = lock.Command{Op: lock.OpRelease, Session: uint64(op.Session), Name: op.Name, Token: op.Token}
		default:
			return api.Errorf(api.CodeInvalidArgument, "ops[%d]: op %q is not an operation: use %q (a try, without wait) or %q", i, op.Op, api.BatchAcquire, api.BatchRelease)
		}
	}
	if st := s.node.Status(); !st.IsLeader {
		if st.Leader == 0 {
			return raftnode.ErrNoLeader
		}
		return s.proposeFailed(c, &raftnode.NotLeaderError{LeaderID: st.Leader, LeaderClientURL: st.LeaderClientURL}, 0)
	}

	ctx, cancel := s.writeCtx(c)
	defer cancel()
	results := make([]api.BatchResult, len(cmds))
	var wg sync.WaitGroup
	for i := range cmds {
		wg.Go(func() { results[i] = s.batchOp(ctx, c, &cmds[i]) })
	}
	wg.Wait()
	return c.JSONBlob(http.StatusOK, appendBatchResponse(nil, results))
}

// appendBatchResponse appends json.Marshal(api.BatchResponse{results}) to
// b, building the grants of valid lock names (no escaping needed) without
// reflection (TestAppendBatchResponseIsJSONMarshal).
func appendBatchResponse(b []byte, results []api.BatchResult) []byte {
	b = append(b, `{"results":[`...)
	for i, r := range results {
		if i > 0 {
			b = append(b, ',')
		}
		if r.Grant == nil || r.Error != nil || api.ValidateLockName(r.Grant.Name) != nil {
			one, err := json.Marshal(r)
			if err != nil { // strings, integers and pointers to them: cannot fail
				one = []byte(`{"status":500,"error":{"code":"internal","message":"encode result"}}`)
			}
			b = append(b, one...)
			continue
		}
		b = append(b, `{"status":`...)
		b = strconv.AppendInt(b, int64(r.Status), 10)
		b = append(b, `,"grant":{"name":"`...)
		b = append(b, r.Grant.Name...)
		b = append(b, `","session":"`...)
		b = strconv.AppendUint(b, uint64(r.Grant.Session), 10)
		b = append(b, `","token":`...)
		b = strconv.AppendUint(b, r.Grant.Token, 10)
		b = append(b, "}}"...)
	}
	return append(b, "]}"...)
}

// batchOp proposes one operation of a batch and returns its result.
func (s *Server) batchOp(ctx context.Context, c echo.Context, cmd *lock.Command) api.BatchResult {
	token := cmd.Token // a release answers the released token
	res, _, err := s.node.Propose(ctx, cmd)
	switch {
	case errors.Is(err, raftnode.ErrNotLeader):
		// This node was the leader when the batch began.
		err = api.Errorf(api.CodeUnavailable, "leadership moved while the batch ran; this operation was not proposed, retry it")
	case err != nil:
	case res.Code != lock.CodeOK:
		err = resultError(res, cmd.Name, cmd.Session)
	case cmd.Op == lock.OpAcquire:
		token = res.Token
	}
	if err != nil {
		status, body := s.classify(err, c)
		return api.BatchResult{Status: status, Error: &body}
	}
	return api.BatchResult{Status: http.StatusOK, Grant: &api.LockGrant{Name: cmd.Name, Session: api.SessionID(cmd.Session), Token: token}}
}
