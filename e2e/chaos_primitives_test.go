//go:build unix

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/linearize"
)

// The chaos clients of shared locks and semaphores (cluster version 6):
// the REST operations they record, the server's check of a token that
// fences their writes, and the figures and assertions of those writes.

// primitivesVersion is the cluster version from which the members take
// shared locks and semaphores.
const primitivesVersion = 6

func semPath(name string) string { return "/v1/semaphores/" + url.PathEscape(name) }

// semHolds are a semaphore's permit holders as the model reads them (never
// nil).
func semHolds(hs []api.Holder) []linearize.Hold {
	out := make([]linearize.Hold, 0, len(hs))
	for _, h := range hs {
		out = append(out, linearize.Hold{Session: uint64(h.Session), Token: h.Token})
	}
	return out
}

// semAcquire: SemAcquire (wait > 0) or SemTryAcquire of a permit of name,
// whose limit every caller gives the same.
func (r *chaosRun) semAcquire(ctx context.Context, client int, m *member, sess api.SessionID, name string, limit int, wait time.Duration) (verdict, linearize.Output) {
	kind := linearize.SemTryAcquire
	if wait > 0 {
		kind = linearize.SemAcquire
	}
	in := linearize.Input{Kind: kind, Name: name, Session: uint64(sess), Limit: limit}
	body := api.SemaphoreAcquireRequest{Session: sess, Limit: uint32(limit), Wait: api.Duration(wait)}
	v, out, _ := r.op(ctx, client, in, m, "POST", semPath(name)+"/acquire", body, wait+6*time.Second,
		func(res restResult, e *api.Error) (linearize.Output, bool) {
			switch {
			case res.status == http.StatusOK:
				p, ok := decodeJSON[api.Permit](res.body)
				if !ok || p.Session != sess || p.Name != name || p.Token == 0 || (p.Limit != 0 && int(p.Limit) != limit) {
					return linearize.Output{}, false
				}
				return linearize.Output{Kind: linearize.Granted, Token: p.Token}, true
			case res.status == http.StatusConflict && e != nil && e.Code == api.CodeLockHeld:
				if e.Limit != 0 && int(e.Limit) != limit {
					return linearize.Output{}, false
				}
				o := linearize.Output{Kind: linearize.Locked}
				if len(e.Holders) > 0 {
					// Full: every permit holder (a wait that ran out
					// names none).
					o.Holders = semHolds(e.Holders)
				}
				return o, true
			case res.status == http.StatusConflict && e != nil && e.Code == api.CodeDeadlock:
				return linearize.Output{Kind: linearize.Locked}, true
			}
			return linearize.Output{}, false
		})
	return v, out
}

func (r *chaosRun) semRelease(ctx context.Context, client int, m *member, sess api.SessionID, name string, token uint64) (verdict, linearize.Output) {
	in := linearize.Input{Kind: linearize.SemRelease, Name: name, Session: uint64(sess), Token: token}
	v, out, _ := r.op(ctx, client, in, m, "POST", semPath(name)+"/release", api.SemaphoreReleaseRequest{Session: sess, Token: token}, 6*time.Second,
		func(res restResult, e *api.Error) (linearize.Output, bool) {
			switch {
			case res.status == http.StatusOK:
				p, ok := decodeJSON[api.Permit](res.body)
				return linearize.Output{Kind: linearize.OK}, ok && p.Token == token && p.Session == sess && p.Name == name
			case res.status == http.StatusConflict && e != nil && e.Code == api.CodeNotHolder:
				return linearize.Output{Kind: linearize.NotHolder}, true
			}
			return linearize.Output{}, false
		})
	return v, out
}

func (r *chaosRun) getSemaphore(ctx context.Context, client int, m *member, name string) {
	in := linearize.Input{Kind: linearize.GetSemaphore, Name: name}
	r.op(ctx, client, in, m, "GET", semPath(name), nil, 5*time.Second,
		func(res restResult, e *api.Error) (linearize.Output, bool) {
			if res.status != http.StatusOK {
				return linearize.Output{}, false
			}
			sm, ok := decodeJSON[api.Semaphore](res.body)
			if !ok || sm.Name != name {
				return linearize.Output{}, false
			}
			return linearize.Output{Kind: linearize.OK, Holders: semHolds(sm.Holders), Limit: int(sm.Limit)}, true
		})
}

// checkHold asks the server whether token is a current hold of lock name
// (a permit of semaphore name when sem), as a resource does before it
// takes a shared or permit holder's write: POST …/check, on up to two
// members that pick chooses. The answer lists every holder, so it is recorded in the history
// as a read (GetLock, GetSemaphore) and checked with the rest. coHeld is
// true when the token is current only as another session's hold (shared
// holds and permits granted in one entry share their token).
func (r *chaosRun) checkHold(ctx context.Context, client int, pick func() *member, sem bool, name string, sess api.SessionID, token uint64) (answer checkAnswer, coHeld bool) {
	in := linearize.Input{Kind: linearize.GetLock, Name: name}
	path := api.LockPath(name) + "/check"
	if sem {
		in.Kind, path = linearize.GetSemaphore, semPath(name)+"/check"
	}
	for attempt := 0; attempt < 2 && ctx.Err() == nil; attempt++ {
		var current, own bool
		v, _, _ := r.op(ctx, client, in, pick(), "POST", path, api.CheckRequest{Token: token}, 5*time.Second,
			func(res restResult, e *api.Error) (linearize.Output, bool) {
				if res.status != http.StatusOK {
					return linearize.Output{}, false
				}
				cr, ok := decodeJSON[api.CheckResponse](res.body)
				if !ok || cr.Name != name || cr.Token != token {
					return linearize.Output{}, false
				}
				o := linearize.Output{Kind: linearize.OK}
				switch {
				case sem:
					o.Holders = semHolds(cr.Holders)
				case cr.Holder != nil:
					if len(cr.Holders) > 0 {
						return linearize.Output{}, false
					}
					o.Session, o.Token = uint64(cr.Holder.Session), cr.Holder.Token
					o.Holders = []linearize.Hold{{Session: o.Session, Token: o.Token}}
				default:
					o.Holders = lockHolds(cr.Holders)
				}
				held := false
				for _, h := range o.Holders {
					held = held || h.Token == token
					own = own || (h.Token == token && h.Session == uint64(sess))
				}
				current = cr.Current
				// "current" must be what the holders it lists say.
				return o, held == cr.Current
			})
		if v == definite {
			if !current {
				return checkNotCurrent, false
			}
			return checkCurrent, !own
		}
	}
	return checkFailed, false
}

// awaitSessionGone waits (at most d, or until ctx ends) until a
// linearizable read of session s answers that it does not exist; it
// reports whether it saw that.
func (r *chaosRun) awaitSessionGone(ctx context.Context, s api.SessionID, d time.Duration) bool {
	i := 0
	_, ok := await.Within(d, func() bool {
		if ctx.Err() != nil {
			return true
		}
		ms := r.c.clientMembers()
		m := ms[i%len(ms)]
		i++
		res := r.rest(ctx, m, "GET", api.SessionPath(s), nil, 2*time.Second)
		e := res.apiError()
		return res.status == http.StatusNotFound && e != nil && e.Code == api.CodeSessionNotFound
	})
	return ok && ctx.Err() == nil
}

// awaitPrimitives waits until the cluster takes shared locks and
// semaphores (every member has said it reads their commands).
func (r *chaosRun) awaitPrimitives() {
	var last restResult
	if _, ok := await.Within(30*time.Second, func() bool {
		last = r.rest(context.Background(), r.c.leader(r.c.members...), "GET", "/v1/status", nil, 2*time.Second)
		st, ok := decodeJSON[api.Status](last.body)
		return ok && st.ClusterVersion >= primitivesVersion
	}); !ok {
		r.t.Fatalf("cluster version %d not reached within 30s: %v", primitivesVersion, last)
	}
}

// checkCheckedWrites asserts what the store's checked writes (shared
// holds, permits) must show: fenced, no write taken that the server's
// check did not call current, and a late write (after a pause that
// outlived the session) refused by the check in each group; unfenced, a
// late write taken although the check said the token was no longer
// current (the anomaly the check prevents). It returns the figures.
func (r *chaosRun) checkCheckedWrites(fenced bool, groups []string) string {
	accepted, refused := r.store.checkedWrites()
	lateRefused, lateAnomaly := map[string]int{}, map[string]int{}
	for _, w := range accepted {
		if fenced && w.check != checkCurrent {
			r.t.Errorf("the fenced resource took a %s write with token %d of session %s although the check answered %v: %+v", w.group, w.token, w.session, w.check, w)
		}
		if w.paused && w.check == checkNotCurrent {
			lateAnomaly[w.group]++
		}
	}
	for _, w := range refused {
		if w.paused && w.check == checkNotCurrent {
			lateRefused[w.group]++
		}
	}
	for _, g := range groups {
		switch {
		case fenced && lateRefused[g] == 0:
			r.t.Errorf("no late %s write (after a pause that outlived its session) was refused by the check: is the test still able to see the anomaly?", g)
		case !fenced && lateAnomaly[g] == 0:
			r.t.Errorf("the unfenced resource shows no %s anomaly: no late write was taken while the check said its token was no longer current", g)
		}
	}
	return fmt.Sprintf("late writes refused by the check %s; late writes taken though not current (anomalies) %s; all: %s",
		sortedCounts(lateRefused), sortedCounts(lateAnomaly), sortedCounts(r.store.checkedFigures()))
}
