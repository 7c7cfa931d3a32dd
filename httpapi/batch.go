package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/raftnode"
)

// batch serves POST /v1/batch (api.BatchRequest) → 200 api.BatchResponse.
//
// The whole request is checked first: 1 to api.MaxBatchOps operations, each
// an acquire (a try: no wait, no ephemeral session) or a release with its
// token, or a campaign (a try) or a resign with its term, by a session, on
// a valid name. Anything else is a 400 that
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
	if err := decodeBody(c, &req, true, api.ExampleBatch); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	cmds := make([]lock.Command, len(req.Ops))
	for i, op := range req.Ops {
		switch op.Op {
		case api.BatchAcquire:
			cmds[i] = lock.Command{Op: lock.OpAcquire, Session: uint64(op.Session), Name: op.Name, Mode: lockMode(op.Mode), Wait: op.KeepQueued}
		case api.BatchRelease:
			cmds[i] = lock.Command{Op: lock.OpRelease, Session: uint64(op.Session), Name: op.Name, Token: op.Token}
		case api.BatchCampaign:
			cmds[i] = lock.Command{Op: lock.OpCampaign, Session: uint64(op.Session), Name: op.Name, Value: op.Value}
		case api.BatchResign:
			cmds[i] = lock.Command{Op: lock.OpResign, Session: uint64(op.Session), Name: op.Name, Token: op.Term}
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
	if req.Atomic {
		return s.atomicBatch(ctx, c, &req)
	}
	results := make([]api.BatchResult, len(cmds))
	if all, ok := s.node.(allProposer); ok {
		// One input for the loop: the whole batch shares one Ready.
		var (
			send []*lock.Command
			at   []int
		)
		for i := range cmds {
			if res, denied := s.stamp(c, &cmds[i]); denied {
				results[i] = s.batchResult(c, &cmds[i], res, nil)
				continue
			}
			send = append(send, &cmds[i])
			at = append(at, i)
		}
		if len(send) > 0 {
			for k, o := range all.ProposeAll(ctx, send) {
				results[at[k]] = s.batchResult(c, send[k], o.Result, o.Err)
			}
		}
		return c.JSONBlob(http.StatusOK, appendBatchResponse(nil, results))
	}
	var wg sync.WaitGroup
	for i := range cmds {
		wg.Go(func() {
			res, _, err := s.propose(c, ctx, &cmds[i])
			results[i] = s.batchResult(c, &cmds[i], res, err)
		})
	}
	wg.Wait()
	return c.JSONBlob(http.StatusOK, appendBatchResponse(nil, results))
}

// allProposer is a node that proposes many commands in one input
// (raftnode.Node.ProposeAll); the batch uses it when the node has it.
type allProposer interface {
	ProposeAll(ctx context.Context, cmds []*lock.Command) []raftnode.Outcome
}

// batchResult is the result of one operation of a batch whose proposal
// answered res or err.
func (s *Server) batchResult(c echo.Context, cmd *lock.Command, res lock.Result, err error) api.BatchResult {
	token := cmd.Token // a release answers the released token
	switch {
	case errors.Is(err, raftnode.ErrNotLeader):
		// This node was the leader when the batch began.
		err = api.Errorf(api.CodeUnavailable, "leadership moved while the batch ran; this operation was not proposed, retry it")
	case err != nil:
	case cmd.Op == lock.OpCampaign || cmd.Op == lock.OpResign:
		return s.electionResult(c, cmd, res)
	case res.Code == lock.CodeQueued:
		err = queuedError(res, cmd.Name, cmd.Session) // keep_queued: in the queue now
	case res.Code != lock.CodeOK:
		err = resultError(res, cmd.Name, cmd.Session)
	case cmd.Op == lock.OpAcquire:
		token = res.Token
	}
	if err != nil {
		return s.errorResult(c, err)
	}
	g := lockGrant(cmd.Name, cmd.Session, token, cmd.Mode)
	return api.BatchResult{Status: http.StatusOK, Grant: &g}
}

// errorResult is the batch result of err: the status and body its own
// request would get.
func (s *Server) errorResult(c echo.Context, err error) api.BatchResult {
	status, body := s.classify(err, c)
	return api.BatchResult{Status: status, Error: &body}
}

// electionResult is the batch result of a campaign (a try) or resign
// whose entry answered res: what the request of its own answers (see
// campaign and resign).
func (s *Server) electionResult(c echo.Context, cmd *lock.Command, res lock.Result) api.BatchResult {
	if err, ok := authResultError(res); ok {
		return s.errorResult(c, err)
	}
	switch {
	case res.Code == lock.CodeSessionNotFound:
		return s.errorResult(c, sessionNotFound(api.SessionID(cmd.Session)))
	case cmd.Op == lock.OpResign && res.Code == lock.CodeOK:
		return api.BatchResult{Status: http.StatusOK, Leadership: &api.Leadership{Name: cmd.Name, Session: api.SessionID(cmd.Session), Term: cmd.Token}}
	case cmd.Op == lock.OpResign:
		return s.errorResult(c, notLeader(cmd.Name, res.Leader, fmt.Sprintf("session %d does not lead with term %d", cmd.Session, cmd.Token)))
	case res.Code == lock.CodeOK:
		return api.BatchResult{Status: http.StatusOK, Leadership: electionStake(cmd.Name, cmd.Session, res.Leader).leadership}
	case res.Code == lock.CodeNotLeader:
		return s.errorResult(c, notLeader(cmd.Name, res.Leader, "not leading"))
	}
	return s.errorResult(c, api.Errorf(api.CodeInvalidArgument, "session %d cannot campaign in %q (an ephemeral session is bound to its one lock)", cmd.Session, cmd.Name))
}

// lockMode is the lock.Mode of an API mode (validated).
func lockMode(mode string) lock.Mode {
	if mode == api.ModeShared {
		return lock.Shared
	}
	return lock.Exclusive
}

// atomicBatch proposes an atomic batch (validated: acquires of one session
// on distinct names) as one lock.OpAcquireAll and answers every grant, or
// the refusal of the whole batch.
func (s *Server) atomicBatch(ctx context.Context, c echo.Context, req *api.BatchRequest) error {
	ops := slices.Clone(req.Ops)
	slices.SortFunc(ops, func(a, b api.BatchOp) int { return strings.Compare(a.Name, b.Name) })
	names := make([]string, len(ops))
	var modes []lock.Mode // nil: all exclusive (command format 5)
	for i, op := range ops {
		names[i] = op.Name
		if op.Mode == api.ModeShared && modes == nil {
			modes = make([]lock.Mode, len(ops))
		}
	}
	for i, op := range ops {
		if modes != nil {
			modes[i] = lockMode(op.Mode)
		}
	}
	session := uint64(req.Ops[0].Session)
	res, _, err := s.propose(c, ctx, &lock.Command{Op: lock.OpAcquireAll, Session: session, Names: names, Modes: modes})
	if err != nil {
		return s.proposeFailed(c, err, 0)
	}
	switch res.Code {
	case lock.CodeOK:
	case lock.CodeLockHeld:
		e := lockHeldBy(res.Reason, res.Holder, res.Holders, "")
		e.Message += fmt.Sprintf("; none of the %d locks of the atomic batch was taken", len(names))
		return e
	default:
		return resultError(res, "", session)
	}
	token := make(map[string]uint64, len(names))
	for i, n := range names {
		token[n] = res.Tokens[i]
	}
	results := make([]api.BatchResult, len(req.Ops))
	for i, op := range req.Ops {
		g := lockGrant(op.Name, uint64(op.Session), token[op.Name], lockMode(op.Mode))
		results[i] = api.BatchResult{Status: http.StatusOK, Grant: &g}
	}
	return c.JSONBlob(http.StatusOK, appendBatchResponse(nil, results))
}
