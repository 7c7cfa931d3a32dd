package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/raftlock/raftlock/api"
)

// maxResponseBytes bounds how much of an answer is read.
const maxResponseBytes = 8 << 20

// Backoff between attempts: doubling from backoffBase, at most backoffMax,
// jittered to [d/2, d].
const (
	backoffBase = 25 * time.Millisecond
	backoffMax  = 500 * time.Millisecond
)

// call describes one API request.
type call struct {
	method string
	path   string
	query  url.Values
	body   any
	// write marks a request that changes state: a lost answer to it has
	// an unknown outcome.
	write bool
	// retryUnknown allows a retry after an unknown outcome (the write is
	// idempotent). Without it such an answer ends the call with an error
	// matching api.ErrOutcomeUnknown.
	retryUnknown bool
	// extra is added to the per-attempt timeout (the wait of an acquire).
	extra time.Duration
	// ifNoneMatch, when set, is sent as If-None-Match; a 304 answer then
	// ends the call with errNotModified.
	ifNoneMatch string
}

// errNotModified ends a call with ifNoneMatch that was answered 304 Not
// Modified: what the caller has is still current.
var errNotModified = errors.New("client: not modified")

// callInfo tells the caller about the attempts of a call.
type callInfo struct {
	// unknownBefore: an earlier attempt's outcome was unknown, so the
	// final answer is the answer to a retry.
	unknownBefore bool
}

// do sends cl, retrying as described on Client, and decodes a 2xx answer
// into out (unless nil). Server errors are returned as *api.Error.
func (c *Client) do(ctx context.Context, cl call, out any) (callInfo, error) {
	var body []byte
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return callInfo{}, fmt.Errorf("client: encode %s %s: %w", cl.method, cl.path, err)
		}
		body = b
	}
	var (
		info    callInfo
		lastErr error
		unreach unreachable   // the attempts that got no answer
		hint    bool          // the last failure named another leader: go there at once
		pause   time.Duration // the server asked to wait this long (Retry-After)
	)
	attempts := 2*len(c.eps) + 1
	for i := 0; i < attempts; i++ {
		if i > 0 && (!hint || pause > 0) {
			if err := sleep(ctx, max(backoff(i), pause)); err != nil {
				break
			}
		}
		if ctx.Err() != nil {
			break
		}
		base := c.target()
		leader, err := c.attempt(ctx, base, cl, body, out)
		hint, pause = false, 0
		if c.acceptLeader(ctx, base, leader) {
			c.setLeader(leader)
			hint = leader != base
		}
		if err == nil || err == errNotModified {
			return info, err
		}
		var ae *api.Error
		switch {
		case errors.As(err, &ae) && ae.Code == api.CodeRateLimited:
			// Refused before anything was done: any call may be sent
			// again, to the same node, once the pause has passed.
			pause = retryAfterOf(err)
			if pause > maxRetryAfter || !fitsDeadline(ctx, pause) {
				return info, fmt.Errorf("client: %s %s: %w (retry after %v: past the call's deadline, or longer than the SDK waits)", cl.method, cl.path, err, pause)
			}
			lastErr = err
			unreach.answered = true
			c.log.Debug("rate limited, retrying", "method", cl.method, "path", cl.path, "endpoint", base, "attempt", i+1, "retry_after", pause)
			continue
		case errors.As(err, &ae) && ae.Code == api.CodeUnavailable:
		case errors.As(err, &ae) && ae.Code == api.CodeTimeout:
			info.unknownBefore = true
			if !cl.retryUnknown {
				return info, fmt.Errorf("client: %s %s: %w", cl.method, cl.path, err)
			}
		case ae != nil:
			// A definite answer (perhaps to a retry: see unknownBefore).
			return info, err
		default:
			// Transport error.
			if cl.write && !isDial(err) {
				info.unknownBefore = true
				if !cl.retryUnknown {
					return info, fmt.Errorf("client: %s %s: %w: %v", cl.method, cl.path, api.ErrOutcomeUnknown, err)
				}
			}
		}
		lastErr = err
		if ctx.Err() != nil {
			break // the caller gave up; base is not to blame
		}
		unreach.add(base, err)
		c.failed(base)
		c.log.Debug("request failed, retrying", "method", cl.method, "path", cl.path, "endpoint", base, "attempt", i+1, "error", err)
	}
	if err := ctx.Err(); err != nil {
		if cl.write && info.unknownBefore {
			return info, fmt.Errorf("client: %s %s: %w: %w (last error: %v)", cl.method, cl.path, err, api.ErrOutcomeUnknown, lastErr)
		}
		if lastErr != nil {
			return info, fmt.Errorf("client: %s %s: %w (last error: %v)", cl.method, cl.path, err, lastErr)
		}
		return info, fmt.Errorf("client: %s %s: %w", cl.method, cl.path, err)
	}
	if info.unknownBefore {
		return info, fmt.Errorf("client: %s %s: retries exhausted: %w (last error: %v)", cl.method, cl.path, api.ErrOutcomeUnknown, lastErr)
	}
	var ae *api.Error
	if errors.As(lastErr, &ae) {
		return info, fmt.Errorf("client: %s %s: retries exhausted: %w", cl.method, cl.path, lastErr)
	}
	if ue := unreach.err(); ue != nil {
		return info, ue
	}
	return info, fmt.Errorf("client: %s %s: %w: no endpoint answered: %v", cl.method, cl.path, api.ErrUnavailable, lastErr)
}

// attempt sends one HTTP request to base. It returns the leader named by
// the answer's Raftlock-Leader header ("" if none) and an *api.Error for an
// error answer, or the transport error.
func (c *Client) attempt(ctx context.Context, base string, cl call, body []byte, out any) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout+cl.extra)
	defer cancel()
	u := base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, rd)
	if err != nil {
		return "", err
	}
	// The header values are shared, read-only slices: Header.Set would
	// canonicalise the key and allocate a slice per request.
	if body != nil {
		req.Header["Content-Type"] = jsonHeader
	}
	req.Header["Accept"] = jsonHeader
	if cl.ifNoneMatch != "" {
		req.Header["If-None-Match"] = []string{cl.ifNoneMatch}
	}
	c.authorize(req)
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	_, _ = io.Copy(io.Discard, resp.Body) // drain, so the connection is reused
	// The leader named, normalised; the caller decides whether to go
	// there (acceptLeader).
	leader := c.leaderFromHeader(resp.Header.Get(api.HeaderLeader))
	if err != nil {
		return leader, err
	}
	if resp.StatusCode == http.StatusNotModified && cl.ifNoneMatch != "" {
		return leader, errNotModified
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if br, ok := out.(*api.BatchResponse); ok && decodeBatchFast(b, br) {
			return leader, nil // the server's compact form (fastbatch.go)
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				return leader, &api.Error{Code: api.CodeInternal, Message: fmt.Sprintf("%s %s answered %d with a body that does not decode: %v", cl.method, u, resp.StatusCode, err)}
			}
		}
		return leader, nil
	}
	return leader, responseError(resp, b)
}

// authorize adds the Authorization header of Config.AuthToken to req.
func (c *Client) authorize(req *http.Request) {
	if c.auth != nil {
		req.Header[api.HeaderAuthorization] = c.auth
	}
}

// maxRetryAfter is the longest Retry-After the SDK waits for: a longer one
// ends the call with the rate_limited error at once.
const maxRetryAfter = time.Minute

// retryAfterError is a rate_limited answer with its Retry-After. It
// unwraps to the *api.Error, so errors.Is(err, api.ErrRateLimited) and
// errors.As(err, **api.Error) hold.
type retryAfterError struct {
	err   *api.Error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// responseError returns the error of the error answer resp with body b:
// an *api.Error, wrapped in a *retryAfterError when it is rate_limited
// with a Retry-After header.
func responseError(resp *http.Response, b []byte) error {
	ae := errorFromResponse(resp.StatusCode, b)
	if ae.Code == api.CodeRateLimited {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return &retryAfterError{err: ae, after: d}
		}
	}
	return ae
}

// retryAfterOf returns the Retry-After carried by err, 0 if none.
func retryAfterOf(err error) time.Duration {
	var ra *retryAfterError
	if errors.As(err, &ra) {
		return ra.after
	}
	return 0
}

// parseRetryAfter parses a Retry-After value: delay seconds or an HTTP
// date (then relative to now, 0 if past).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// fitsDeadline reports whether ctx lasts at least d more.
func fitsDeadline(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > d
}

// jsonHeader is the value of the Content-Type and Accept headers. Never
// modify it.
var jsonHeader = []string{"application/json"}

// leaderURL is a Raftlock-Leader header value and its normalised URL.
type leaderURL struct{ raw, norm string }

// leaderFromHeader returns the normalised leader URL of a Raftlock-Leader
// header value h ("" for none or an invalid one). Every answer carries the
// header, almost always with the same value: the last one is cached.
func (c *Client) leaderFromHeader(h string) string {
	if h == "" {
		return ""
	}
	if l := c.lastLeader.Load(); l != nil && l.raw == h {
		return l.norm
	}
	n, err := normalizeURL(h)
	if err != nil {
		return ""
	}
	c.lastLeader.Store(&leaderURL{raw: h, norm: n})
	return n
}

// errorFromResponse decodes an error answer into an *api.Error. A body that
// is not the API's error JSON (a proxy's page) gets a code from the status.
func errorFromResponse(status int, b []byte) *api.Error {
	var er api.ErrorResponse
	if err := json.Unmarshal(b, &er); err == nil && er.Error.Code != "" {
		return &er.Error
	}
	code := api.CodeInternal
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		code = api.CodeUnavailable
	case http.StatusGatewayTimeout:
		code = api.CodeTimeout
	case http.StatusNotFound:
		code = api.CodeNotFound
	case http.StatusBadRequest:
		code = api.CodeInvalidArgument
	case http.StatusUnauthorized:
		code = api.CodeUnauthenticated
	case http.StatusForbidden:
		code = api.CodePermissionDenied
	case http.StatusTooManyRequests:
		code = api.CodeRateLimited
	case http.StatusInsufficientStorage:
		code = api.CodeNoSpace
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return &api.Error{Code: code, Message: fmt.Sprintf("HTTP %d without an API error body: %q", status, msg)}
}

// target returns the URL to send the next request to: the leader if
// known, else the current endpoint.
func (c *Client) target() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader != "" {
		return c.leader
	}
	return c.eps[c.cur]
}

// setLeader remembers the leader named by an answer.
func (c *Client) setLeader(u string) {
	c.mu.Lock()
	c.leader = u
	c.mu.Unlock()
}

// failed notes that base did not serve a request: forget it as the leader
// and move past it in the endpoint list.
func (c *Client) failed(base string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader == base {
		c.leader = ""
	}
	if c.eps[c.cur] == base {
		c.cur = (c.cur + 1) % len(c.eps)
	}
}

// backoff returns the jittered pause before attempt i (i ≥ 1).
func backoff(i int) time.Duration {
	d := backoffBase << min(i-1, 10)
	d = min(d, backoffMax)
	return d/2 + rand.N(d/2+1)
}

// sleep waits for d or until ctx ends (then it returns ctx.Err()).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
