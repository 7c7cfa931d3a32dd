package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/raftlock/raftlock/api"
)

// Reconnection of an observe stream: a jittered backoff doubling from
// backoffBase up to observeBackoffMax after failed connections, and a
// stream that brings nothing, not even a keep-alive comment, for
// observeIdleTimeout is taken for dead (the server's default keep-alive is
// every 10s).
const (
	observeBackoffMax  = 2 * time.Second
	observeIdleTimeout = 45 * time.Second
	// maxSSELine bounds one line of a stream (values are at most 4 KiB).
	maxSSELine = 1 << 20
)

// LeaderEvent is one message of Client.Observe: the election's leader as of
// Revision (the index of the log entry that made the change). It has the
// fields of api.LeaderEvent, the message on the wire, and converts to it.
type LeaderEvent struct {
	// Revision is the log index of the change; it never decreases along a
	// channel.
	Revision uint64
	// Type is "state" for the first event (the current leader) and for a
	// re-read after the node could not resume the stream (events in
	// between may have been missed), then one of "elected", "proclaimed",
	// "resigned", "expired" or "no_leader". New types may be added.
	Type string
	// Leader is the leader after the change; nil when nobody leads.
	Leader *api.Leader
	// Changes lists, in order, every leader change of this revision when
	// there were several (a leader that resigned or expired and was
	// succeeded in one log entry: ["resigned","elected"], with Type
	// "elected"); nil otherwise.
	Changes []string
}

// ElectionInfo reads election name: its leader and candidates (GET
// /v1/elections/{name}, linearizable). Nobody leading is a nil Leader and
// no candidates. An invalid name is an error matching api.ErrInvalidArgument.
// It is safe for concurrent use.
func (c *Client) ElectionInfo(ctx context.Context, name string) (*api.Election, error) {
	if err := api.ValidateLockName(name); err != nil {
		return nil, fmt.Errorf("client: %w: election %v", api.ErrInvalidArgument, err)
	}
	var e api.Election
	if _, err := c.do(ctx, call{method: http.MethodGet, path: api.ElectionPath(name)}, &e); err != nil {
		return nil, err
	}
	if e.Candidates == nil {
		e.Candidates = []api.Candidate{}
	}
	return &e, nil
}

// Elections returns the elections whose name starts with prefix that have
// a leader or candidates, sorted by name (GET /v1/elections?prefix=,
// linearizable per page), reading every page as Locks does.
func (c *Client) Elections(ctx context.Context, prefix string) ([]api.Election, error) {
	return listAll(ctx, c, "/v1/elections", prefix, func(p *api.ElectionList) ([]api.Election, string) { return p.Elections, p.Next })
}

// Observe streams the leader changes of election name (GET
// /v1/elections/{name}/observe, Server-Sent Events) until ctx ends, when
// the channel is closed. It is safe for concurrent use; each call has its
// own stream and goroutine.
//
// The first event is the current leader (Type "state"), then every change
// in order. Any node serves the stream from its own applied state, so no
// leader is needed. When the stream breaks (node down, connection cut, or
// the server dropped a subscriber that fell behind), Observe reconnects,
// moving to the next endpoint after a failure with a jittered backoff of at
// most 2s, and resumes after the last revision received (Last-Event-ID):
// no change is skipped and none is delivered twice. (The server may send
// the leader events of one log entry as two messages with the same
// revision, e.g. "resigned" with no leader, then "elected": both are
// delivered, the last one is the state after that revision.) If the node no longer
// holds the events after that revision, Observe reads the state afresh and
// delivers it as a "state" event (the changes in between are lost, the
// current leader is not). A "state" event is delivered only if its
// revision is newer than the last delivered one: the channel never goes
// back in time.
//
// The events are not buffered beyond the channel: a consumer that does not
// keep up makes the server drop the stream, and Observe resumes it. An
// invalid name closes the channel at once (there is nothing to observe).
// Failures are logged at Debug level on the Client's logger; a refusal
// (401 unauthenticated, 403 permission_denied: observe needs the read
// action on name) at Warn level, and retried like a failure. A 429
// rate_limited is retried on the same node after its Retry-After.
func (c *Client) Observe(ctx context.Context, name string) <-chan LeaderEvent {
	ch := make(chan LeaderEvent)
	if err := api.ValidateLockName(name); err != nil {
		c.log.Warn("observe: invalid election name", "election", name, "error", err)
		close(ch)
		return ch
	}
	o := &observer{c: c, name: name, out: ch}
	go o.run(ctx)
	return ch
}

// observer is the state of one Observe call, owned by its goroutine.
type observer struct {
	c    *Client
	name string
	out  chan<- LeaderEvent

	delivered bool   // an event was delivered
	last      uint64 // revision of the last delivered event
	resume    bool   // send Last-Event-ID: last on the next connection
}

// errResync asks for a reconnection without Last-Event-ID (compacted).
var errResync = errors.New("client: observe: resume not possible, re-read the state")

func (o *observer) run(ctx context.Context) {
	defer close(o.out)
	fails := 0
	for ctx.Err() == nil {
		base := o.c.target()
		progressed, err := o.stream(ctx, base)
		if ctx.Err() != nil {
			return
		}
		switch {
		case errors.Is(err, errResync):
			o.resume = false
			o.c.log.Debug("observe: cannot resume, re-reading the state", "election", o.name, "endpoint", base, "after", o.last)
			continue
		case err == nil:
			// The server ended the stream (we fell behind, or it stops):
			// resume at once.
			fails = 0
			continue
		}
		if progressed {
			fails = 0
		}
		fails++
		pause := observeBackoff(fails)
		switch {
		case errors.Is(err, api.ErrRateLimited):
			// The node refused the stream for now: back to it after
			// its Retry-After, not to another node.
			pause = max(pause, min(retryAfterOf(err), maxRetryAfter))
			o.c.log.Debug("observe: rate limited, reconnecting", "election", o.name, "endpoint", base, "retry_after", pause)
		case errors.Is(err, api.ErrUnauthenticated), errors.Is(err, api.ErrPermissionDenied):
			// No other node will decide otherwise; say it louder than
			// a broken connection, and go on trying (a token or a
			// permission may yet be granted).
			o.c.log.Warn("observe: refused, retrying", "election", o.name, "endpoint", base, "attempt", fails, "error", err)
			o.c.failed(base)
		default:
			o.c.log.Debug("observe: stream failed, reconnecting", "election", o.name, "endpoint", base, "attempt", fails, "error", err)
			o.c.failed(base)
		}
		if sleep(ctx, pause) != nil {
			return
		}
	}
}

// observeBackoff returns the jittered pause after the n-th failure in a row.
func observeBackoff(n int) time.Duration {
	d := min(backoffBase<<min(n-1, 10), observeBackoffMax)
	return d/2 + rand.N(d/2+1)
}

// stream reads one connection's stream to base until it ends. progressed
// reports whether it delivered anything; err is nil when the server ended
// the stream cleanly, errResync when it could not resume.
func (o *observer) stream(ctx context.Context, base string) (progressed bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, base+api.ElectionPath(o.name)+"/observe", nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	o.c.authorize(req)
	if o.resume {
		req.Header.Set(api.HeaderLastEventID, strconv.FormatUint(o.last, 10))
	}
	// The connection is given up when it stays silent (a dead peer that
	// sends no RST); every line read re-arms the timer.
	idle := time.AfterFunc(o.c.timeout+observeIdleTimeout, cancel)
	defer idle.Stop()
	resp, err := o.c.hc.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
		return false, responseError(resp, b)
	}
	idle.Reset(observeIdleTimeout)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4096), maxSSELine)
	var event, data string
	for sc.Scan() {
		idle.Reset(observeIdleTimeout)
		line := sc.Text()
		if line != "" {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "": // a comment (keep-alive, or the end of the stream)
			case "event":
				event = value
			case "data":
				if data != "" {
					data += "\n"
				}
				data += value
			}
			continue
		}
		// A blank line dispatches the message.
		ev, d := event, data
		event, data = "", ""
		if d == "" {
			continue
		}
		switch ev {
		case api.SSEState, api.SSEChange:
			var le api.LeaderEvent
			if err := json.Unmarshal([]byte(d), &le); err != nil {
				return progressed, fmt.Errorf("client: observe %q: %s message does not decode: %v", o.name, ev, err)
			}
			if le.Type == "" {
				le.Type = ev
			}
			ok, err := o.deliver(ctx, le, progressed)
			if err != nil {
				return progressed, err
			}
			progressed = progressed || ok
		case api.SSEError:
			var er api.ErrorResponse
			if err := json.Unmarshal([]byte(d), &er); err != nil || er.Error.Code == "" {
				return progressed, fmt.Errorf("client: observe %q: error message: %s", o.name, d)
			}
			if er.Error.Code == api.CodeCompacted {
				return progressed, errResync
			}
			return progressed, &er.Error
		}
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() == nil && sctx.Err() != nil {
			return progressed, fmt.Errorf("client: observe %q: no data for %v", o.name, observeIdleTimeout)
		}
		return progressed, err
	}
	if sctx.Err() != nil && ctx.Err() == nil {
		return progressed, fmt.Errorf("client: observe %q: no data for %v", o.name, observeIdleTimeout)
	}
	return progressed, nil
}

// deliver sends le unless it is older than the last delivered event, or
// a "state" not newer than it (a re-read stream may repeat one); it reports
// whether it sent. A "change" at the last delivered revision on the same
// connection is sent: the server may split the leader events of one log
// entry into two messages with the same id (e.g. resigned, then elected).
// From now on a reconnection resumes after le.
func (o *observer) deliver(ctx context.Context, le api.LeaderEvent, sameConn bool) (bool, error) {
	if o.delivered && (le.Revision < o.last || le.Revision == o.last && (le.Type == api.SSEState || !sameConn)) {
		o.resume = true
		return false, nil
	}
	select {
	case o.out <- LeaderEvent(le): // every field the server sent
	case <-ctx.Done():
		return false, ctx.Err()
	}
	o.delivered, o.last, o.resume = true, le.Revision, true
	return true, nil
}
