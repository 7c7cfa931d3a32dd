package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/raftlock/raftlock/api"
)

// SnapshotOption sets an optional knob of Client.Snapshot.
type SnapshotOption func(*snapshotOptions)

type snapshotOptions struct {
	stale bool
}

// StaleSnapshot asks the answering node for its own state without a
// ReadIndex round (?consistency=stale): possibly behind the cluster, but
// answered by a member that lost its quorum, which is when a backup may be
// needed most.
func StaleSnapshot() SnapshotOption { return func(o *snapshotOptions) { o.stale = true } }

// Snapshot streams a backup of the cluster's whole state (GET
// /v1/snapshot, admin once auth is on) to w, verifying it on the way, and
// describes it. The file is in api.WriteSnapshot's format; raftlockd
// --restore-from makes a new cluster from it. The state is a linearizable
// read, unless StaleSnapshot.
//
// The answer must begin within Config.RequestTimeout; the transfer then
// runs until ctx ends. While nothing has been written to w, Snapshot
// retries as other calls do (another endpoint after a connection error or
// a 503). Once bytes were written it does not: it returns the error, and
// w holds a partial file, which the caller must discard (write to a
// temporary file and rename it only after Snapshot returned nil, as
// `raftlock snapshot save` does). An answer that is not a whole, intact
// snapshot file gives an error matching api.ErrSnapshotInvalid; a refusal
// of the server its *api.Error (api.ErrPermissionDenied for a principal
// that is not admin). Snapshot is safe for concurrent use; w is written
// from the calling goroutine only.
func (c *Client) Snapshot(ctx context.Context, w io.Writer, opts ...SnapshotOption) (api.SnapshotInfo, error) {
	var o snapshotOptions
	for _, opt := range opts {
		opt(&o)
	}
	cw := &countingWriter{w: w}
	var lastErr error
	for i := 0; i < 2*len(c.eps)+1; i++ {
		if i > 0 {
			if err := sleep(ctx, backoff(i)); err != nil {
				break
			}
		}
		base := c.target()
		info, err := c.snapshotFrom(ctx, base, o, cw)
		if err == nil {
			return info, nil
		}
		if cw.n > 0 {
			return info, fmt.Errorf("client: GET %s from %s: %w (after %d bytes were written: discard them)", api.SnapshotPath, base, err, cw.n)
		}
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code != api.CodeUnavailable && ae.Code != api.CodeTimeout {
			return info, fmt.Errorf("client: GET %s: %w", api.SnapshotPath, err)
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
		c.failed(base)
		c.log.Debug("snapshot failed, retrying", "endpoint", base, "attempt", i+1, "error", err)
	}
	if err := ctx.Err(); err != nil {
		return api.SnapshotInfo{}, fmt.Errorf("client: GET %s: %w (last error: %v)", api.SnapshotPath, err, lastErr)
	}
	return api.SnapshotInfo{}, fmt.Errorf("client: GET %s: %w: no endpoint gave a snapshot: %v", api.SnapshotPath, api.ErrUnavailable, lastErr)
}

// snapshotFrom asks base for the snapshot and copies it to w while it
// verifies it.
func (c *Client) snapshotFrom(ctx context.Context, base string, o snapshotOptions, w io.Writer) (api.SnapshotInfo, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	u := base + api.SnapshotPath
	if o.stale {
		u += "?" + api.QueryConsistency + "=" + api.ConsistencyStale
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return api.SnapshotInfo{}, err
	}
	c.authorize(req)
	// Only the answer's beginning has the request timeout: a large state
	// takes its time to arrive.
	timer := time.AfterFunc(c.timeout, cancel)
	resp, err := c.hc.Do(req)
	if !timer.Stop() && err != nil {
		return api.SnapshotInfo{}, fmt.Errorf("no answer within %v: %w", c.timeout, err)
	}
	if err != nil {
		return api.SnapshotInfo{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
		if err != nil {
			return api.SnapshotInfo{}, err
		}
		return api.SnapshotInfo{}, responseError(resp, b)
	}
	return api.VerifySnapshot(io.TeeReader(resp.Body, w))
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n += int64(n)
	return n, err
}
