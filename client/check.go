package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/raftlock/raftlock/api"
)

// CheckOption refines a CheckToken or CheckPermit.
type CheckOption func(*api.CheckRequest)

// HeldBy makes the check current only if session holds with the token:
// shared holders and permits granted in one log entry share a token, so a
// resource that knows which session writes should name it.
func HeldBy(session api.SessionID) CheckOption {
	return func(r *api.CheckRequest) { r.Session = session }
}

func checkRequest(token uint64, opts []CheckOption) api.CheckRequest {
	r := api.CheckRequest{Token: token}
	for _, o := range opts {
		o(&r)
	}
	return r
}

// CheckToken asks whether token is the current fencing token of lock name
// (POST /v1/locks/{name}/check), or the token of one of its shared holds:
// a linearizable answer, with the current exclusive holder (nil for a free
// lock or one held shared) and every holder in Holders. A resource that cannot remember the
// highest token it accepted (client/fence does) asks this before it takes
// a write. It is a read: retried on another endpoint like any read.
func (c *Client) CheckToken(ctx context.Context, name string, token uint64, opts ...CheckOption) (*api.CheckResponse, error) {
	if err := api.ValidateLockName(name); err != nil {
		return nil, fmt.Errorf("client: %w: %v", api.ErrInvalidArgument, err)
	}
	var out api.CheckResponse
	if _, err := c.do(ctx, call{method: http.MethodPost, path: api.LockPath(name) + "/check", body: checkRequest(token, opts)}, &out); err != nil {
		return nil, fmt.Errorf("client: check token %d of lock %q: %w", token, name, err)
	}
	return &out, nil
}

// CheckPermit asks whether token is the token of a current permit of
// semaphore name (POST /v1/semaphores/{name}/check): a linearizable
// answer, with the holders of its permits in Holders. It is CheckToken for
// semaphores; a read, retried like any read.
func (c *Client) CheckPermit(ctx context.Context, name string, token uint64, opts ...CheckOption) (*api.CheckResponse, error) {
	if err := api.ValidateLockName(name); err != nil {
		return nil, fmt.Errorf("client: %w: %v", api.ErrInvalidArgument, err)
	}
	var out api.CheckResponse
	if _, err := c.do(ctx, call{method: http.MethodPost, path: semaphorePath(name) + "/check", body: checkRequest(token, opts)}, &out); err != nil {
		return nil, fmt.Errorf("client: check permit %d of semaphore %q: %w", token, name, err)
	}
	return &out, nil
}
