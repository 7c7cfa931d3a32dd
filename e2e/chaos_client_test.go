//go:build unix

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/linearize"
)

// The clients of the chaos test: goroutines that talk to the cluster with
// raw HTTP and the wire types of api/, record every operation with its
// precise outcome in a linearize.History, and write to a fenced resource
// while they believe they hold a lock.

// chaosRun is one run of the chaos test: a cluster, its clients, their
// history and the resource they write to.
type chaosRun struct {
	t     *testing.T
	c     *cluster
	cn    *chaosNet
	seed  uint64
	ttl   time.Duration // of the clients' sessions
	start time.Time     // history times are time.Since(start)
	hist  *linearize.History
	store *resourceStore
	hc    *http.Client

	calls atomic.Uint64 // for alternate

	mu       sync.Mutex
	ops      []recordedOp   // a copy of the history, to dump
	counts   map[string]int // "op Acquire Granted", "fault kill", ...
	sessions []api.SessionID
	seen     map[api.SessionID]bool
}

func newChaosRun(t *testing.T, c *cluster, cn *chaosNet, seed uint64, ttl time.Duration, fenced bool) *chaosRun {
	tr := &http.Transport{
		Proxy:               nil, // the clients talk to the members directly
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     30 * time.Second,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &chaosRun{
		t:      t,
		c:      c,
		cn:     cn,
		seed:   seed,
		ttl:    ttl,
		start:  time.Now(),
		hist:   linearize.NewHistory(),
		store:  newResourceStore(fenced),
		hc:     &http.Client{Transport: tr},
		counts: map[string]int{},
		seen:   map[api.SessionID]bool{},
	}
}

func (r *chaosRun) now() int64 { return int64(time.Since(r.start)) }

// alternate is true for every other call: tries and releases alternate
// between their own paths and POST /v1/batch.
func (r *chaosRun) alternate() bool { return r.calls.Add(1)%2 == 0 }

func (r *chaosRun) count(key string, n int) {
	r.mu.Lock()
	r.counts[key] += n
	r.mu.Unlock()
}

func (r *chaosRun) counted(prefix string) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.counts {
		if strings.HasPrefix(k, prefix) {
			out[strings.TrimPrefix(k, prefix)] = v
		}
	}
	return out
}

func (r *chaosRun) addSession(id api.SessionID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen[id] {
		r.seen[id] = true
		r.sessions = append(r.sessions, id)
	}
}

// recordedOp is one operation of the history as dumped to JSON (Out.Kind
// Unknown: never returned).
type recordedOp struct {
	Client int
	Call   int64
	Return int64
	In     linearize.Input
	Out    linearize.Output
}

// dump writes the history as JSON to a new temporary file and returns its
// name, to study a failing or slow check offline.
func (r *chaosRun) dump() (string, error) {
	r.mu.Lock()
	b, err := json.Marshal(r.ops)
	r.mu.Unlock()
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp("", "raftlock-chaos-history-*.json")
	if err != nil {
		return "", err
	}
	defer f.Close()
	_, err = f.Write(b)
	return f.Name(), err
}

// restResult is the outcome of one HTTP request.
type restResult struct {
	status int
	body   []byte
	err    error // transport error (or the client's timeout)
	dial   bool  // the connection failed: nothing was sent
}

func (res restResult) apiError() *api.Error {
	var e api.ErrorResponse
	if res.err != nil || res.status < 300 || json.Unmarshal(res.body, &e) != nil {
		return nil
	}
	return &e.Error
}

func (res restResult) String() string {
	if res.err != nil {
		return res.err.Error()
	}
	return fmt.Sprintf("%d %s", res.status, bytes.TrimSpace(res.body))
}

// viaBatch is a request body that rest sends as the only operation of a
// POST /v1/batch instead of to the operation's own path.
type viaBatch struct{ op api.BatchOp }

// rest sends one request to m and reads the whole answer within timeout.
// A viaBatch body goes as a batch of one, and its result comes back as the
// status and body its own request would have had (a batch's own failure,
// such as a 503 or a transport error, comes back as it is).
func (r *chaosRun) rest(ctx context.Context, m *member, method, path string, body any, timeout time.Duration) restResult {
	if vb, ok := body.(viaBatch); ok {
		r.count("client via batch "+vb.op.Op, 1)
		res := r.rest(ctx, m, http.MethodPost, api.BatchPath, api.BatchRequest{Ops: []api.BatchOp{vb.op}}, timeout)
		if res.err != nil || res.status != http.StatusOK {
			return res
		}
		br, ok := decodeJSON[api.BatchResponse](res.body)
		if !ok || len(br.Results) != 1 || (br.Results[0].Grant == nil) == (br.Results[0].Error == nil) {
			r.t.Errorf("batch of one on member %d: malformed answer %s", m.id, res.body)
			return restResult{err: errors.New("malformed batch answer")}
		}
		one := br.Results[0]
		var b []byte
		if one.Grant != nil {
			b, _ = json.Marshal(one.Grant)
		} else {
			b, _ = json.Marshal(api.ErrorResponse{Error: *one.Error})
		}
		return restResult{status: one.Status, body: b}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			r.t.Errorf("encode %T: %v", body, err)
			return restResult{err: err, dial: true}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.clientURL+path, rd)
	if err != nil {
		r.t.Errorf("request %s %s: %v", method, path, err)
		return restResult{err: err, dial: true}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		var op *net.OpError
		return restResult{err: err, dial: errors.As(err, &op) && op.Op == "dial"}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return restResult{err: err}
	}
	return restResult{status: resp.StatusCode, body: b}
}

// verdict is what the history makes of an answer.
type verdict int

const (
	definite verdict = iota // record the Output
	noEffect                // nothing was sent, or the server says nothing changed: leave out
	unknown                 // record as Unknown
)

// common classifies the answers every operation may get; ok is false when
// the operation's own decoder must look at the answer.
func (r *chaosRun) common(res restResult) (v verdict, out linearize.Output, ok bool) {
	switch {
	case res.dial:
		return noEffect, out, true
	case res.err != nil:
		return unknown, out, true
	}
	e := res.apiError()
	switch {
	case res.status == http.StatusServiceUnavailable && e != nil && e.Code == api.CodeUnavailable:
		// "Nothing was changed, retry" (README): trusted, and so checked.
		return noEffect, out, true
	case res.status == http.StatusServiceUnavailable && e != nil && e.Code == api.CodeTimeout:
		return unknown, out, true
	case res.status == http.StatusNotFound && e != nil && e.Code == api.CodeSessionNotFound:
		return definite, linearize.Output{Kind: linearize.SessionExpired}, true
	}
	return 0, out, false
}

// op runs one recorded operation: it sends the request, classifies the
// answer with decode (after the common cases) and records it. It returns
// the verdict and Output (Kind Unknown for unknown, 0 for noEffect).
func (r *chaosRun) op(ctx context.Context, client int, in linearize.Input, m *member, method, path string, body any, timeout time.Duration,
	decode func(res restResult, e *api.Error) (linearize.Output, bool)) (verdict, linearize.Output, restResult) {
	call := r.now()
	res := r.rest(ctx, m, method, path, body, timeout)
	ret := r.now()
	v, out, ok := r.common(res)
	if !ok {
		var good bool
		out, good = decode(res, res.apiError())
		v = definite
		if !good {
			if ctx.Err() == nil {
				r.t.Errorf("%s %s on member %d: unexpected answer %v (client %d, %+v, called at %v)", method, path, m.id, res, client, in, time.Duration(call))
			}
			v, out = unknown, linearize.Output{}
		}
	}
	kind := in.Kind.String()
	if in.Shared {
		kind += "(shared)"
	}
	switch v {
	case noEffect:
		r.count("op "+kind+" no-effect", 1)
		return v, linearize.Output{}, res
	case unknown:
		out = linearize.Output{Kind: linearize.Unknown}
		r.hist.Call(client, call, in) // never returned: Unknown
	default:
		id := r.hist.Call(client, call, in)
		r.hist.Return(id, ret, out)
	}
	r.mu.Lock()
	r.ops = append(r.ops, recordedOp{Client: client, Call: call, Return: ret, In: in, Out: out})
	r.mu.Unlock()
	r.count("op "+kind+" "+out.Kind.String(), 1)
	return v, out, res
}

func decodeJSON[T any](b []byte) (T, bool) {
	var v T
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	err := d.Decode(&v)
	return v, err == nil
}

// acquire: Acquire (wait > 0) or TryAcquire, shared or exclusive. A
// session must always ask for the same mode of a name (the server answers
// mode_mismatch otherwise, which the model does not take).
func (r *chaosRun) acquire(ctx context.Context, client int, m *member, sess api.SessionID, name string, wait time.Duration, shared bool) (verdict, linearize.Output) {
	kind := linearize.TryAcquire
	if wait > 0 {
		kind = linearize.Acquire
	}
	in := linearize.Input{Kind: kind, Name: name, Session: uint64(sess), Shared: shared}
	mode := ""
	if shared {
		mode = api.ModeShared
	}
	var body any = api.AcquireRequest{Session: sess, Wait: api.Duration(wait), Mode: mode}
	if wait == 0 && r.alternate() {
		body = viaBatch{api.BatchOp{Op: api.BatchAcquire, Name: name, Session: sess, Mode: mode}}
	}
	// A forwarded waiting acquire may take 2 request timeouts + the wait.
	v, out, _ := r.op(ctx, client, in, m, "POST", api.LockPath(name)+"/acquire", body, wait+6*time.Second,
		func(res restResult, e *api.Error) (linearize.Output, bool) {
			switch {
			case res.status == http.StatusOK:
				g, ok := decodeJSON[api.LockGrant](res.body)
				if !ok || g.Session != sess || g.Name != name || g.Token == 0 || g.Mode != mode {
					return linearize.Output{}, false
				}
				return linearize.Output{Kind: linearize.Granted, Token: g.Token}, true
			case res.status == http.StatusConflict && e != nil && e.Code == api.CodeLockHeld:
				o := linearize.Output{Kind: linearize.Locked}
				switch {
				case e.Holder != nil:
					// The exclusive holder: the only one.
					o.Session, o.Token = uint64(e.Holder.Session), e.Holder.Token
					o.Holders = []linearize.Hold{{Session: o.Session, Token: o.Token}}
				case len(e.Holders) > 0:
					o.Holders = lockHolds(e.Holders)
				}
				return o, true
			case res.status == http.StatusConflict && e != nil && e.Code == api.CodeDeadlock:
				// A wait refused as a deadlock left nothing queued: for the
				// model, a wait that gave up at once, the lock held.
				o := linearize.Output{Kind: linearize.Locked}
				if e.Holder != nil {
					o.Session, o.Token = uint64(e.Holder.Session), e.Holder.Token
				}
				return o, true
			}
			return linearize.Output{}, false
		})
	return v, out
}

// lockHolds are a lock's holders as the model reads them (never nil).
func lockHolds(hs []api.Holder) []linearize.Hold {
	out := make([]linearize.Hold, 0, len(hs))
	for _, h := range hs {
		out = append(out, linearize.Hold{Session: uint64(h.Session), Token: h.Token, Shared: h.Mode == api.ModeShared})
	}
	return out
}

func (r *chaosRun) release(ctx context.Context, client int, m *member, sess api.SessionID, name string, token uint64) (verdict, linearize.Output) {
	in := linearize.Input{Kind: linearize.Release, Name: name, Session: uint64(sess), Token: token}
	var body any = api.ReleaseRequest{Session: sess, Token: token}
	if r.alternate() {
		body = viaBatch{api.BatchOp{Op: api.BatchRelease, Name: name, Session: sess, Token: token}}
	}
	v, out, _ := r.op(ctx, client, in, m, "POST", api.LockPath(name)+"/release", body, 6*time.Second,
		func(res restResult, e *api.Error) (linearize.Output, bool) {
			switch {
			case res.status == http.StatusOK:
				g, ok := decodeJSON[api.LockGrant](res.body)
				return linearize.Output{Kind: linearize.OK}, ok && g.Token == token && g.Session == sess
			case res.status == http.StatusConflict && e != nil && e.Code == api.CodeNotHolder:
				return linearize.Output{Kind: linearize.NotHolder}, true
			}
			return linearize.Output{}, false
		})
	return v, out
}

func (r *chaosRun) getLock(ctx context.Context, client int, m *member, name string) {
	in := linearize.Input{Kind: linearize.GetLock, Name: name}
	r.op(ctx, client, in, m, "GET", api.LockPath(name), nil, 5*time.Second,
		func(res restResult, e *api.Error) (linearize.Output, bool) {
			if res.status != http.StatusOK {
				return linearize.Output{}, false
			}
			l, ok := decodeJSON[api.Lock](res.body)
			if !ok || l.Name != name {
				return linearize.Output{}, false
			}
			o := linearize.Output{Kind: linearize.OK, Holders: lockHolds(l.Holders)}
			if l.Holder != nil {
				o.Session, o.Token = uint64(l.Holder.Session), l.Holder.Token
			}
			return o, true
		})
}

func (r *chaosRun) keepAlive(ctx context.Context, client int, m *member, sess api.SessionID, timeout time.Duration) (verdict, linearize.Output) {
	in := linearize.Input{Kind: linearize.KeepAlive, Session: uint64(sess)}
	v, out, _ := r.op(ctx, client, in, m, "POST", api.SessionPath(sess)+"/keepalive", nil, timeout,
		func(res restResult, e *api.Error) (linearize.Output, bool) {
			if res.status != http.StatusOK {
				return linearize.Output{}, false
			}
			s, ok := decodeJSON[api.SessionResponse](res.body)
			return linearize.Output{Kind: linearize.OK}, ok && s.ID == sess
		})
	return v, out
}

func (r *chaosRun) closeSession(ctx context.Context, client int, m *member, sess api.SessionID) (verdict, linearize.Output) {
	in := linearize.Input{Kind: linearize.CloseSession, Session: uint64(sess)}
	v, out, _ := r.op(ctx, client, in, m, "DELETE", api.SessionPath(sess), nil, 6*time.Second,
		func(res restResult, e *api.Error) (linearize.Output, bool) {
			if res.status != http.StatusOK {
				return linearize.Output{}, false
			}
			s, ok := decodeJSON[api.CloseSessionResponse](res.body)
			return linearize.Output{Kind: linearize.OK}, ok && s.ID == sess
		})
	return v, out
}

func leaderOutput(kind linearize.OutKind, l *api.Leader) linearize.Output {
	o := linearize.Output{Kind: kind}
	if l != nil {
		o.Session, o.Value, o.Token = uint64(l.Session), l.Value, l.Term
	}
	return o
}

func (r *chaosRun) campaign(ctx context.Context, client int, m *member, sess api.SessionID, name, value string, wait time.Duration) (verdict, linearize.Output) {
	in := linearize.Input{Kind: linearize.Campaign, Name: name, Session: uint64(sess), Value: value}
	v, out, _ := r.op(ctx, client, in, m, "POST", api.ElectionPath(name)+"/campaign",
		api.CampaignRequest{Session: sess, Value: value, Wait: api.Duration(wait)}, wait+6*time.Second,
		func(res restResult, e *api.Error) (linearize.Output, bool) {
			switch {
			case res.status == http.StatusOK:
				l, ok := decodeJSON[api.Leadership](res.body)
				return linearize.Output{Kind: linearize.OK, Token: l.Term}, ok && l.Session == sess && l.Term > 0
			case res.status == http.StatusConflict && e != nil && e.Code == api.CodeNotLeader:
				return leaderOutput(linearize.NotLeader, e.Leader), true
			}
			return linearize.Output{}, false
		})
	return v, out
}

// proclaimOrResign: kind is linearize.Proclaim or linearize.Resign.
func (r *chaosRun) proclaimOrResign(ctx context.Context, client int, m *member, kind linearize.Kind, sess api.SessionID, name string, term uint64, value string) (verdict, linearize.Output) {
	in := linearize.Input{Kind: kind, Name: name, Session: uint64(sess), Token: term, Value: value}
	var path string
	var body any
	if kind == linearize.Proclaim {
		path, body = "/proclaim", api.ProclaimRequest{Session: sess, Term: term, Value: value}
	} else {
		path, body = "/resign", api.ResignRequest{Session: sess, Term: term}
	}
	v, out, _ := r.op(ctx, client, in, m, "POST", api.ElectionPath(name)+path, body, 6*time.Second,
		func(res restResult, e *api.Error) (linearize.Output, bool) {
			switch {
			case res.status == http.StatusOK:
				l, ok := decodeJSON[api.Leadership](res.body)
				return linearize.Output{Kind: linearize.OK}, ok && l.Session == sess && l.Term == term
			case res.status == http.StatusConflict && e != nil && e.Code == api.CodeNotLeader:
				return leaderOutput(linearize.NotLeader, e.Leader), true
			}
			return linearize.Output{}, false
		})
	return v, out
}

func (r *chaosRun) getLeader(ctx context.Context, client int, m *member, name string) {
	in := linearize.Input{Kind: linearize.GetLeader, Name: name}
	r.op(ctx, client, in, m, "GET", api.ElectionPath(name), nil, 5*time.Second,
		func(res restResult, e *api.Error) (linearize.Output, bool) {
			if res.status != http.StatusOK {
				return linearize.Output{}, false
			}
			el, ok := decodeJSON[api.Election](res.body)
			return leaderOutput(linearize.OK, el.Leader), ok && el.Name == name
		})
}

// openSession opens a session (not an operation of the model: sessions are
// assumed to exist until they are seen dead). Zero when it failed.
func (r *chaosRun) openSession(ctx context.Context, m *member, owner string, ttl time.Duration) api.SessionID {
	res := r.rest(ctx, m, "POST", "/v1/sessions", api.CreateSessionRequest{TTL: api.Duration(ttl), Owner: owner}, 6*time.Second)
	if res.err != nil || res.status != http.StatusCreated {
		r.count("session open failed", 1)
		return 0
	}
	s, ok := decodeJSON[api.SessionResponse](res.body)
	if !ok || s.ID == 0 {
		r.t.Errorf("open session: unexpected answer %v", res)
		return 0
	}
	r.addSession(s.ID)
	r.count("session opened", 1)
	return s.ID
}

// resourceStore is the resource the locks and the semaphore protect: per
// name, the writes it accepted.
//
// An exclusive holder's write is fenced by its token: fenced, the store
// refuses a token below the highest it has accepted for that name;
// unfenced, it accepts every write of a client that believes it holds the
// lock.
//
// A shared holder's "write" (a read of the resource) and a permit holder's
// write are "checked": concurrent holders' tokens supersede nothing, so
// the server is asked (POST …/check) whether the token is current just
// before the store decides (client/fence's doc). Fenced, the store takes
// the write only if the answer was "current"; unfenced, it takes it
// whatever the answer, which is only recorded to show the anomaly.
// Accepted checked writes raise the highest token of their name, so an
// exclusive holder's write after a later shared hold's is stale.
type resourceStore struct {
	fenced bool

	mu       sync.Mutex
	highest  map[string]uint64
	accepted []storeWrite
	rejected []storeWrite
	changed  chan struct{} // closed and replaced at every accepted write
}

// checkAnswer is what the server's check of a token answered.
type checkAnswer int

const (
	checkFailed     checkAnswer = iota // no answer (unavailable, timeout): unknown
	checkCurrent                       // the token is a current hold or permit
	checkNotCurrent                    // it is not
)

func (a checkAnswer) String() string {
	return [...]string{checkFailed: "check failed", checkCurrent: "current", checkNotCurrent: "not current"}[a]
}

type storeWrite struct {
	name    string // lock name; "semaphore " + name for a semaphore
	group   string // the workers' group, for the figures ("lock", "rw-reader", ...)
	token   uint64
	session api.SessionID
	client  int
	paused  bool // written after a pause longer than the TTL
	stale   bool // exclusive: below the highest token the store had seen for the name
	// Checked writes only: what the server's check answered, and whether
	// "current" was thanks to another session's hold with the same token
	// (shared holds and permits granted in one entry share it).
	checked bool
	check   checkAnswer
	coHeld  bool
}

func newResourceStore(fenced bool) *resourceStore {
	return &resourceStore{fenced: fenced, highest: map[string]uint64{}, changed: make(chan struct{})}
}

// write is an exclusive holder's write, fenced by its token.
func (s *resourceStore) write(w storeWrite) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.stale = w.token < s.highest[w.name]
	if w.stale && s.fenced {
		s.rejected = append(s.rejected, w)
		return false
	}
	s.acceptLocked(w)
	return true
}

// writeChecked is a shared or permit holder's write, whose token the
// server checked just before (w.check).
func (s *resourceStore) writeChecked(w storeWrite) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.checked = true
	if s.fenced && w.check != checkCurrent {
		s.rejected = append(s.rejected, w)
		return false
	}
	s.acceptLocked(w)
	return true
}

func (s *resourceStore) acceptLocked(w storeWrite) {
	s.accepted = append(s.accepted, w)
	s.highest[w.name] = max(s.highest[w.name], w.token)
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitAbove waits until the store has seen a token above tok for name, or
// until d has passed or ctx ended; it reports whether it has.
func (s *resourceStore) waitAbove(ctx context.Context, name string, tok uint64, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		above, changed := s.highest[name] > tok, s.changed
		s.mu.Unlock()
		if above {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// check verifies the store's log on its own: per name, who wrote with each
// exclusive token, and (fenced) that no accepted exclusive write was below
// a token accepted before it. It returns the stale exclusive writes
// accepted (anomalies).
func (s *resourceStore) check(t *testing.T) (staleAccepted []storeWrite) {
	s.mu.Lock()
	defer s.mu.Unlock()
	owner := map[string]api.SessionID{}
	highest := map[string]uint64{}
	for _, w := range s.accepted {
		if !w.checked {
			key := fmt.Sprintf("%s@%d", w.name, w.token)
			if o, ok := owner[key]; ok && o != w.session {
				t.Errorf("resource %q: token %d written by sessions %s and %s: two sessions were granted the same token", w.name, w.token, o, w.session)
			}
			owner[key] = w.session
			if w.token < highest[w.name] {
				staleAccepted = append(staleAccepted, w)
			}
		}
		highest[w.name] = max(highest[w.name], w.token)
	}
	return staleAccepted
}

// checkedFigures counts the checked writes by group, outcome and answer,
// e.g. "sem paused accepted current".
func (s *resourceStore) checkedFigures() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	add := func(ws []storeWrite, outcome string) {
		for _, w := range ws {
			if !w.checked {
				continue
			}
			when := "live"
			if w.paused {
				when = "paused"
			}
			out[fmt.Sprintf("%s %s %s %v", w.group, when, outcome, w.check)]++
			if w.coHeld {
				out[fmt.Sprintf("%s %s %s current only through a co-holder's token", w.group, when, outcome)]++
			}
		}
	}
	add(s.accepted, "accepted")
	add(s.rejected, "refused")
	return out
}

// checkedWrites returns copies of the checked writes accepted and refused.
func (s *resourceStore) checkedWrites() (accepted, refused []storeWrite) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.accepted {
		if w.checked {
			accepted = append(accepted, w)
		}
	}
	for _, w := range s.rejected {
		if w.checked {
			refused = append(refused, w)
		}
	}
	return accepted, refused
}

// worker is one client goroutine with its own session, kept alive by a
// second goroutine through REST keep-alives.
type worker struct {
	r     *chaosRun
	id    int // history client ids: 2*id (the worker), 2*id+1 (its keep-alives)
	rng   *rand.Rand
	owner string
	// soft ends when the run is over: no new operation, pauses end; hard
	// ends after the workers have returned: it stops the keep-alives and
	// abandons requests still in flight.
	soft, hard context.Context

	mu        sync.Mutex
	sess      api.SessionID
	safeUntil time.Time // the session is alive at least until then (last keep-alive sent + TTL)
	paused    bool      // a pause stops the keep-alives too, as a GC pause would
}

func (w *worker) member() *member {
	ms := w.r.c.clientMembers()
	return ms[w.rng.IntN(len(ms))]
}

func (w *worker) session() (api.SessionID, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sess, w.safeUntil
}

// ensureSession opens a session if the worker has none.
func (w *worker) ensureSession() api.SessionID {
	if s, _ := w.session(); s != 0 {
		return s
	}
	sent := time.Now()
	s := w.r.openSession(w.hard, w.member(), w.owner, w.r.ttl)
	if s == 0 {
		return 0
	}
	w.mu.Lock()
	w.sess, w.safeUntil = s, sent.Add(w.r.ttl)
	w.mu.Unlock()
	return s
}

// dropSession forgets session s (expired, closed, or abandoned to expire).
func (w *worker) dropSession(s api.SessionID) {
	w.mu.Lock()
	if w.sess == s {
		w.sess = 0
	}
	w.mu.Unlock()
}

func (w *worker) setPaused(p bool) {
	w.mu.Lock()
	w.paused = p
	w.mu.Unlock()
}

// closeAtEnd closes the worker's session when it stops.
func (w *worker) closeAtEnd() {
	if s, _ := w.session(); s != 0 {
		w.r.closeSession(w.hard, 2*w.id, w.member(), s)
		w.dropSession(s)
	}
}

// keepAlives renews the worker's session every TTL/3 until hard ends.
func (w *worker) keepAlives(rng *rand.Rand) {
	tick := time.NewTicker(w.r.ttl / 3)
	defer tick.Stop()
	for i := 0; i < 1000000; i++ {
		select {
		case <-w.hard.Done():
			return
		case <-tick.C:
		}
		w.mu.Lock()
		s, paused := w.sess, w.paused
		w.mu.Unlock()
		if s == 0 || paused {
			continue
		}
		ms := w.r.c.clientMembers()
		m := ms[rng.IntN(len(ms))]
		sent := time.Now()
		_, out := w.r.keepAlive(w.hard, 2*w.id+1, m, s, w.r.ttl/2)
		switch out.Kind {
		case linearize.OK:
			w.mu.Lock()
			if w.sess == s && !w.paused {
				w.safeUntil = sent.Add(w.r.ttl)
			}
			w.mu.Unlock()
		case linearize.SessionExpired:
			w.dropSession(s)
		}
	}
}

// sleep sleeps d or until ctx ends. It paces the scenario (how long a
// fault lasts, a worker's think time, a simulated process pause); it never
// waits for a condition (that is await's job).
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// lockWorker takes the locks (or the semaphore) of names in turn, in its
// one mode, and writes to the store while holding. Its grants numbered in
// pauseAt (from 0) pause before writing; every other one with probability
// pauseP.
type lockWorker struct {
	worker
	names []string
	// mode is how it holds: an exclusive lock (the zero value), a shared
	// one, or a permit of a semaphore of limit permits. A session never
	// asks for the other mode of a name (the server would refuse it).
	mode  holdMode
	limit int
	// group names the worker's kind in the counts ("" for the exclusive
	// lock workers, whose counts keep their names).
	group   string
	pauseAt map[int]bool
	pauseP  float64
	grants  int
}

// holdMode is what a lockWorker holds.
type holdMode int

const (
	holdExclusive holdMode = iota // a lock, exclusive: writes fenced by the token
	holdShared                    // a lock, shared: writes checked with the server
	holdPermit                    // a semaphore's permit: writes checked with the server
)

// tag is the count key prefix + the worker's group + rest.
func (lw *lockWorker) tag(prefix, rest string) string {
	if lw.group == "" {
		return prefix + " " + rest
	}
	return prefix + " " + lw.group + " " + rest
}

func (lw *lockWorker) acquire(s api.SessionID, name string, wait time.Duration) linearize.Output {
	client := 2 * lw.id
	if lw.mode == holdPermit {
		_, out := lw.r.semAcquire(lw.hard, client, lw.member(), s, name, lw.limit, wait)
		return out
	}
	_, out := lw.r.acquire(lw.hard, client, lw.member(), s, name, wait, lw.mode == holdShared)
	return out
}

func (lw *lockWorker) release(s api.SessionID, name string, token uint64) linearize.Output {
	client := 2 * lw.id
	if lw.mode == holdPermit {
		_, out := lw.r.semRelease(lw.hard, client, lw.member(), s, name, token)
		return out
	}
	_, out := lw.r.release(lw.hard, client, lw.member(), s, name, token)
	return out
}

func (lw *lockWorker) run() {
	defer lw.closeAtEnd()
	client := 2 * lw.id
	for i := 0; i < 100000 && lw.soft.Err() == nil; i++ {
		s := lw.ensureSession()
		if s == 0 {
			sleep(lw.soft, 100*time.Millisecond)
			continue
		}
		name := lw.names[lw.rng.IntN(len(lw.names))]
		switch x := lw.rng.IntN(100); {
		case x < 8:
			if lw.mode == holdPermit {
				lw.r.getSemaphore(lw.hard, client, lw.member(), name)
			} else {
				lw.r.getLock(lw.hard, client, lw.member(), name)
			}
			continue
		case x < 11:
			// Close the session and start over with a new one.
			if _, out := lw.r.closeSession(lw.hard, client, lw.member(), s); out.Kind != linearize.Unknown {
				lw.dropSession(s)
			}
			continue
		}
		wait := time.Duration(0)
		if lw.rng.IntN(100) < 70 {
			wait = time.Duration(500+lw.rng.IntN(1000)) * time.Millisecond
		}
		out := lw.acquire(s, name, wait)
		// An unknown outcome: ask again (acquire is idempotent for a
		// session; without a wait it also leaves the queue).
		for retry := 0; retry < 3 && out.Kind == linearize.Unknown && lw.hard.Err() == nil; retry++ {
			out = lw.acquire(s, name, 0)
		}
		switch out.Kind {
		case linearize.Granted:
			lw.hold(s, name, out.Token)
		case linearize.SessionExpired:
			lw.dropSession(s)
		case linearize.Unknown:
			// It may hold the lock without knowing: abandon the session,
			// whose expiry releases whatever it holds.
			lw.r.count("session abandoned", 1)
			lw.dropSession(s)
		default:
			sleep(lw.soft, time.Duration(lw.rng.IntN(50))*time.Millisecond)
		}
	}
}

// hold writes to the resource with token (after a pause, sometimes) and
// releases the lock or permit.
func (lw *lockWorker) hold(s api.SessionID, name string, token uint64) {
	g := lw.grants
	lw.grants++
	if lw.pauseAt[g] || lw.rng.Float64() < lw.pauseP {
		// A process pause (GC, swapped out, SIGSTOP) between "I hold the
		// lock" and the write: longer than the TTL, keep-alives included,
		// so the session expires and the lock goes to the next waiter. To
		// make the anomaly certain rather than likely, the pause also
		// lasts (boundedly) until that waiter has written (exclusive), or
		// until the session is gone (shared, permit: the other holders'
		// tokens supersede nothing).
		lw.setPaused(true)
		lw.r.count(lw.tag("client", "pause"), 1)
		sleep(lw.soft, 2*lw.r.ttl+lw.r.ttl/2)
		if lw.mode == holdExclusive {
			if lw.r.store.waitAbove(lw.soft, name, token, 10*time.Second) {
				lw.r.count(lw.tag("client", "pause overtaken"), 1)
			}
		} else if lw.r.awaitSessionGone(lw.soft, s, 10*time.Second) {
			lw.r.count(lw.tag("client", "pause outlived the session"), 1)
		}
		if lw.soft.Err() == nil {
			// It wakes up believing it still holds the lock, and writes.
			ok := lw.write(s, name, token, true)
			lw.r.count(lw.tag("write", fmt.Sprintf("after pause accepted=%v", ok)), 1)
		}
		lw.setPaused(false)
		// The release (or its keep-alive) now tells it the session is gone.
	} else {
		writes := 1 + lw.rng.IntN(3)
		for i := 0; i < writes; i++ {
			if _, safe := lw.session(); time.Now().After(safe) {
				lw.r.count(lw.tag("write", "skipped: lease may have run out"), 1)
				break
			}
			ok := lw.write(s, name, token, false)
			lw.r.count(lw.tag("write", fmt.Sprintf("accepted=%v", ok)), 1)
			sleep(lw.soft, time.Duration(20+lw.rng.IntN(60))*time.Millisecond)
		}
	}
	out := lw.release(s, name, token)
	for retry := 0; retry < 3 && out.Kind == linearize.Unknown && lw.hard.Err() == nil; retry++ {
		out = lw.release(s, name, token)
	}
	switch out.Kind {
	case linearize.SessionExpired:
		lw.dropSession(s)
	case linearize.Unknown:
		lw.r.count("session abandoned", 1)
		lw.dropSession(s)
	}
}

// write writes to the store with token: fenced by the token for an
// exclusive hold, checked with the server for the others.
func (lw *lockWorker) write(s api.SessionID, name string, token uint64, paused bool) bool {
	w := storeWrite{name: name, group: lw.group, token: token, session: s, client: lw.id, paused: paused}
	if lw.mode == holdExclusive {
		return lw.r.store.write(w)
	}
	if lw.mode == holdPermit {
		w.name = "semaphore " + name
	}
	w.check, w.coHeld = lw.r.checkHold(lw.hard, 2*lw.id, lw.member, lw.mode == holdPermit, name, s, token)
	return lw.r.store.writeChecked(w)
}

// electionWorker campaigns, proclaims, reads and resigns.
type electionWorker struct {
	worker
	name string
}

func (ew *electionWorker) run() {
	defer ew.closeAtEnd()
	client := 2 * ew.id
	for i := 0; i < 100000 && ew.soft.Err() == nil; i++ {
		s := ew.ensureSession()
		if s == 0 {
			sleep(ew.soft, 100*time.Millisecond)
			continue
		}
		if ew.rng.IntN(100) < 15 {
			ew.r.getLeader(ew.hard, client, ew.member(), ew.name)
			continue
		}
		value := fmt.Sprintf("w%d-%d", ew.id, i)
		wait := time.Duration(ew.rng.IntN(2)) * time.Duration(500+ew.rng.IntN(1000)) * time.Millisecond
		_, out := ew.r.campaign(ew.hard, client, ew.member(), s, ew.name, value, wait)
		for retry := 0; retry < 3 && out.Kind == linearize.Unknown && ew.hard.Err() == nil; retry++ {
			_, out = ew.r.campaign(ew.hard, client, ew.member(), s, ew.name, value, 0)
		}
		switch out.Kind {
		case linearize.OK:
			ew.lead(s, out.Token, value)
		case linearize.SessionExpired:
			ew.dropSession(s)
		case linearize.Unknown:
			ew.r.count("session abandoned", 1)
			ew.dropSession(s)
		default:
			sleep(ew.soft, time.Duration(ew.rng.IntN(100))*time.Millisecond)
		}
	}
}

// lead proclaims new values a few times and resigns.
func (ew *electionWorker) lead(s api.SessionID, term uint64, value string) {
	client := 2 * ew.id
	for p := ew.rng.IntN(3); p > 0 && ew.soft.Err() == nil; p-- {
		sleep(ew.soft, time.Duration(20+ew.rng.IntN(80))*time.Millisecond)
		_, o := ew.r.proclaimOrResign(ew.hard, client, ew.member(), linearize.Proclaim, s, ew.name, term, fmt.Sprintf("%s/%d", value, p))
		if o.Kind != linearize.OK {
			break
		}
	}
	_, o := ew.r.proclaimOrResign(ew.hard, client, ew.member(), linearize.Resign, s, ew.name, term, "")
	for retry := 0; retry < 3 && o.Kind == linearize.Unknown && ew.hard.Err() == nil; retry++ {
		_, o = ew.r.proclaimOrResign(ew.hard, client, ew.member(), linearize.Resign, s, ew.name, term, "")
	}
	if o.Kind == linearize.Unknown || o.Kind == linearize.SessionExpired {
		ew.dropSession(s)
	}
}

// sortedCounts formats counts as "k=v, k=v" sorted by key.
func sortedCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
