package linearize

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ev is one operation of a hand-written history. ret < 0: never returned.
type ev struct {
	client    int
	call, ret int64
	in        Input
	out       Output
}

func op(client int, call, ret int64, in Input, out Output) ev {
	return ev{client: client, call: call, ret: ret, in: in, out: out}
}

// Inputs.
func acq(name string, s uint64) Input { return Input{Kind: Acquire, Name: name, Session: s} }
func try(name string, s uint64) Input { return Input{Kind: TryAcquire, Name: name, Session: s} }
func rel(name string, s, t uint64) Input {
	return Input{Kind: Release, Name: name, Session: s, Token: t}
}
func getLock(name string) Input { return Input{Kind: GetLock, Name: name} }
func keep(s uint64) Input       { return Input{Kind: KeepAlive, Session: s} }
func closeS(s uint64) Input     { return Input{Kind: CloseSession, Session: s} }
func camp(name string, s uint64, v string) Input {
	return Input{Kind: Campaign, Name: name, Session: s, Value: v}
}
func procl(name string, s, term uint64, v string) Input {
	return Input{Kind: Proclaim, Name: name, Session: s, Token: term, Value: v}
}
func resign(name string, s, term uint64) Input {
	return Input{Kind: Resign, Name: name, Session: s, Token: term}
}
func getLeader(name string) Input { return Input{Kind: GetLeader, Name: name} }
func acqS(name string, s uint64) Input {
	return Input{Kind: Acquire, Name: name, Session: s, Shared: true}
}
func tryS(name string, s uint64) Input {
	return Input{Kind: TryAcquire, Name: name, Session: s, Shared: true}
}
func semAcq(name string, s uint64, limit int) Input {
	return Input{Kind: SemAcquire, Name: name, Session: s, Limit: limit}
}
func semTry(name string, s uint64, limit int) Input {
	return Input{Kind: SemTryAcquire, Name: name, Session: s, Limit: limit}
}
func semRel(name string, s, t uint64) Input {
	return Input{Kind: SemRelease, Name: name, Session: s, Token: t}
}
func getSem(name string) Input { return Input{Kind: GetSemaphore, Name: name} }

// Outputs.
var (
	ok        = Output{Kind: OK}
	notHolder = Output{Kind: NotHolder}
	expired   = Output{Kind: SessionExpired}
	cancelled = Output{Kind: Cancelled}
	unknown   = Output{Kind: Unknown}
	free      = Output{Kind: OK}
	noLeader  = Output{Kind: OK}
	never     = Output{} // with ret < 0
)

func granted(t uint64) Output   { return Output{Kind: Granted, Token: t} }
func locked(s, t uint64) Output { return Output{Kind: Locked, Session: s, Token: t} }
func holder(s, t uint64) Output { return Output{Kind: OK, Session: s, Token: t} }
func term(t uint64) Output      { return Output{Kind: OK, Token: t} }

// holders is a GetLock answer with every holder: hs alternates session and
// token, shared holds (all of them if shared).
func holders(shared bool, hs ...uint64) Output {
	o := Output{Kind: OK, Holders: []Hold{}}
	for i := 0; i+1 < len(hs); i += 2 {
		o.Holders = append(o.Holders, Hold{Session: hs[i], Token: hs[i+1], Shared: shared})
	}
	if !shared && len(o.Holders) == 1 {
		o.Session, o.Token = hs[0], hs[1]
	}
	return o
}

// semaphore is a GetSemaphore answer with holders hs.
func semaphore(hs ...Hold) Output { return Output{Kind: OK, Holders: hs} }

// permits is a GetSemaphore answer: hs alternates session and token.
func permits(hs ...uint64) Output {
	o := Output{Kind: OK}
	for i := 0; i+1 < len(hs); i += 2 {
		o.Holders = append(o.Holders, Hold{Session: hs[i], Token: hs[i+1]})
	}
	return o
}
func leader(s uint64, v string, t uint64) Output {
	return Output{Kind: OK, Session: s, Value: v, Token: t}
}
func notLeader(s uint64, v string, t uint64) Output {
	return Output{Kind: NotLeader, Session: s, Value: v, Token: t}
}

func recordAll(evs []ev) *History {
	h := NewHistory()
	for _, e := range evs {
		id := h.Call(e.client, e.call, e.in)
		if e.ret >= 0 {
			h.Return(id, e.ret, e.out)
		}
	}
	return h
}

type histCase struct {
	name string
	ops  []ev
}

// accepted lists correct histories.
var accepted = []histCase{
	{"lock sequential", []ev{
		op(1, 0, 1, acq("a", 11), granted(12)),
		op(3, 2, 3, getLock("a"), holder(11, 12)),
		op(2, 4, 5, try("a", 21), locked(11, 12)),
		op(2, 6, 7, try("a", 21), locked(0, 0)),
		op(1, 8, 9, acq("a", 11), granted(12)), // a retry answers the same token
		op(2, 10, 11, rel("a", 21, 12), notHolder),
		op(1, 12, 13, rel("a", 11, 12), ok),
		op(1, 14, 15, rel("a", 11, 12), notHolder), // a retried release
		op(3, 16, 17, getLock("a"), free),
		op(2, 18, 19, try("a", 21), granted(20)),
		op(1, 20, 21, keep(11), ok),
		op(2, 22, 23, keep(21), ok),
		op(3, 24, 25, getLock("a"), holder(21, 20)),
	}},
	{"lock concurrent overlapping", []ev{
		op(1, 0, 10, acq("a", 11), granted(15)),
		op(2, 1, 30, acq("a", 21), granted(18)), // waits, granted by the release
		op(3, 2, 25, getLock("a"), holder(21, 18)),
		op(4, 3, 4, getLock("a"), free), // before 1's grant
		op(1, 11, 20, rel("a", 11, 15), ok),
		op(5, 12, 13, try("a", 31), locked(11, 15)),
		op(5, 14, 40, try("a", 31), locked(21, 0)),
		op(4, 15, 16, getLock("a"), holder(11, 15)),
		op(2, 31, 32, keep(21), ok),
		op(1, 33, 34, keep(11), ok),
	}},
	{"two tries at once: one wins", []ev{
		op(1, 0, 10, try("a", 11), locked(21, 7)),
		op(2, 1, 9, try("a", 21), granted(7)),
		op(1, 11, 12, keep(11), ok),
		op(2, 11, 12, keep(21), ok),
	}},
	{"idempotent re-acquire from a second client of the session", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(2, 2, 10, acq("a", 11), granted(5)),
		op(1, 3, 4, acq("a", 11), granted(5)),
		op(1, 11, 12, rel("a", 11, 5), ok),
		op(3, 13, 14, acq("a", 21), granted(9)),
	}},
	{"unknown acquire that took effect", []ev{
		op(1, 0, -1, acq("a", 11), never),
		op(3, 10, 11, getLock("a"), holder(11, 7)),
		op(2, 12, 13, try("a", 21), locked(11, 0)),
		op(1, 14, 15, rel("a", 11, 7), ok),
		op(2, 16, 17, acq("a", 21), granted(9)),
	}},
	{"unknown acquire whose token shows in a release", []ev{
		op(1, 0, 5, acq("a", 11), unknown),
		op(1, 6, 7, rel("a", 11, 7), ok),
		op(2, 8, 9, acq("a", 21), granted(9)),
	}},
	{"unknown acquire that did not take effect", []ev{
		op(1, 0, 5, acq("a", 11), unknown),
		op(2, 6, 7, acq("a", 21), granted(7)),
		op(1, 8, 9, keep(11), ok),
		op(2, 10, 11, rel("a", 21, 7), ok),
		op(3, 12, 13, getLock("a"), free),
		op(1, 14, 15, keep(11), ok),
	}},
	{"unknown release, either way", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(1, 2, 3, rel("a", 11, 5), unknown),
		op(3, 4, 5, getLock("a"), holder(11, 5)), // not yet
		op(3, 6, 7, getLock("a"), free),          // now
		op(1, 8, 9, keep(11), ok),
	}},
	{"second holder after the first session is deemed expired", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(2, 10, 11, acq("a", 21), granted(9)),
		op(1, 12, 13, keep(11), expired),
		op(1, 14, 15, rel("a", 11, 5), notHolder),
		op(3, 16, 17, getLock("a"), holder(21, 9)),
	}},
	{"holder expires: the lock reads free, then another gets it", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(3, 2, 3, getLock("a"), free),
		op(2, 4, 5, try("a", 21), granted(9)),
		op(1, 6, 7, acq("a", 11), expired),
	}},
	{"close session releases", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(1, 0, 1, acq("b", 11), granted(6)),
		op(1, 2, 3, closeS(11), ok),
		op(3, 4, 5, getLock("a"), free),
		op(2, 6, 7, acq("b", 21), granted(9)),
		op(1, 8, 9, closeS(11), expired), // a retried close
	}},
	{"hand-off through release", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(2, 2, 20, acq("a", 21), granted(8)),
		op(1, 5, 6, rel("a", 11, 5), ok),
		op(3, 7, 8, getLock("a"), holder(21, 8)),
		op(1, 9, 10, keep(11), ok),
	}},
	{"acquire whose wait ran out", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(2, 2, 20, acq("a", 21), locked(11, 5)),
		op(1, 21, 22, keep(11), ok),
		op(2, 21, 22, keep(21), ok),
	}},
	{"cancelled wait never granted", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(2, 2, 10, acq("a", 21), cancelled),
		op(3, 11, 12, getLock("a"), holder(11, 5)),
		op(1, 13, 14, rel("a", 11, 5), ok),
		op(3, 15, 16, getLock("a"), free),
	}},
	{"cancelled wait granted and released within its interval", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(2, 2, 20, acq("a", 21), cancelled),
		op(1, 3, 4, rel("a", 11, 5), ok),
		op(3, 5, 6, getLock("a"), holder(21, 7)), // others see the grant
		op(4, 7, 8, try("a", 31), locked(21, 7)),
		op(3, 21, 22, getLock("a"), free),
		op(4, 23, 24, try("a", 31), granted(9)),
		op(2, 25, 26, keep(21), ok),
	}},
	{"cancelled wait granted, released before its return, then granted to another", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(2, 2, 30, acq("a", 21), cancelled),
		op(1, 3, 4, rel("a", 11, 5), ok),
		op(3, 5, 6, getLock("a"), holder(21, 7)),
		op(4, 10, 11, try("a", 31), granted(9)),
		op(2, 31, 32, keep(21), ok),
		op(1, 31, 32, keep(11), ok),
	}},
	{"many unknown operations, one of which took effect late", []ev{
		op(1, 0, -1, acq("a", 11), never),
		op(2, 1, 2, acq("a", 21), unknown),
		op(3, 1, 5, rel("a", 31, 3), unknown),
		op(4, 2, -1, try("a", 41), never),
		op(5, 6, 7, getLock("a"), free),
		op(6, 8, 9, acq("a", 51), granted(10)),
		op(6, 10, 11, rel("a", 51, 10), ok),
		op(5, 12, 13, getLock("a"), holder(21, 14)),
		op(5, 14, 15, getLock("a"), holder(21, 14)),
		op(1, 16, 17, keep(11), ok),
		op(4, 16, 17, keep(41), ok),
		op(6, 16, 17, keep(51), ok),
	}},
	{"election sequential", []ev{
		op(1, 0, 1, camp("e", 11, "x"), term(5)),
		op(3, 2, 3, getLeader("e"), leader(11, "x", 5)),
		op(2, 4, 5, camp("e", 21, "y"), notLeader(11, "x", 5)),
		op(1, 6, 7, procl("e", 11, 5, "x2"), ok),
		op(1, 6, 7, camp("e", 11, "x2"), term(5)), // a retry changes nothing
		op(1, 8, 9, camp("e", 11, "x3"), term(5)), // a new value is proclaimed (as etcd)
		op(3, 10, 11, getLeader("e"), leader(11, "x3", 5)),
		op(2, 10, 11, procl("e", 21, 5, "z"), notLeader(11, "x3", 5)),
		op(2, 10, 11, resign("e", 21, 5), notLeader(0, "", 0)),
		op(1, 12, 13, resign("e", 11, 5), ok),
		op(3, 14, 15, getLeader("e"), noLeader),
		op(1, 16, 17, resign("e", 11, 5), notLeader(0, "", 0)),
		op(2, 18, 19, camp("e", 21, "y"), term(9)),
		op(1, 20, 21, procl("e", 11, 5, "old"), notLeader(21, "y", 9)),
		op(1, 22, 23, keep(11), ok),
	}},
	{"election hand-off to a waiting candidate", []ev{
		op(1, 0, 1, camp("e", 11, "x"), term(5)),
		op(2, 2, 20, camp("e", 21, "y"), term(8)),
		op(1, 5, 6, resign("e", 11, 5), ok),
		op(3, 7, 8, getLeader("e"), leader(21, "y", 8)),
		op(1, 9, 10, keep(11), ok),
	}},
	{"election: leader deemed expired, a new one leads", []ev{
		op(1, 0, 1, camp("e", 11, "x"), term(5)),
		op(2, 2, 3, camp("e", 21, "y"), term(9)),
		op(1, 4, 5, procl("e", 11, 5, "z"), notLeader(21, "y", 9)),
		op(1, 6, 7, keep(11), expired),
	}},
	{"election: unknown campaign that took effect", []ev{
		op(1, 0, -1, camp("e", 11, "x"), never),
		op(3, 5, 6, getLeader("e"), leader(11, "x", 7)),
		op(1, 7, 8, resign("e", 11, 7), ok),
	}},
	{"election: cancelled campaign", []ev{
		op(1, 0, 1, camp("e", 11, "x"), term(5)),
		op(2, 2, 20, camp("e", 21, "y"), cancelled),
		op(1, 3, 4, resign("e", 11, 5), ok),
		op(3, 5, 6, getLeader("e"), leader(21, "y", 6)),
		op(3, 21, 22, getLeader("e"), noLeader),
		op(1, 23, 24, camp("e", 11, "x"), term(10)),
	}},
	{"election: a campaign retry answers the value of an unknown campaign that won", []ev{
		op(1, 0, -1, camp("e", 11, "v1"), never),
		op(2, 10, 11, camp("e", 11, "v3"), term(15)),
		op(3, 12, 13, getLeader("e"), leader(11, "v1", 15)),
	}},
	{"lock and election of the same name are separate", []ev{
		op(1, 0, 1, acq("n", 11), granted(5)),
		op(2, 0, 1, camp("n", 21, "v"), term(6)),
		op(3, 2, 3, getLock("n"), holder(11, 5)),
		op(3, 4, 5, getLeader("n"), leader(21, "v", 6)),
	}},
}

// rejected lists buggy histories.
var rejected = []histCase{
	{"two live holders", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(2, 2, 3, acq("a", 21), granted(9)),
		op(1, 4, 5, keep(11), ok),
	}},
	{"two live holders: the first releases after the second was granted", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(2, 2, 3, acq("a", 21), granted(9)),
		op(1, 4, 5, rel("a", 11, 5), ok),
	}},
	{"token not increasing", []ev{
		op(1, 0, 1, acq("a", 11), granted(10)),
		op(1, 2, 3, rel("a", 11, 10), ok),
		op(2, 4, 5, acq("a", 21), granted(7)),
	}},
	{"token repeated for another session", []ev{
		op(1, 0, 1, acq("a", 11), granted(10)),
		op(1, 2, 3, rel("a", 11, 10), ok),
		op(2, 4, 5, acq("a", 21), granted(10)),
	}},
	{"release accepted with a stale token", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(1, 2, 3, rel("a", 11, 5), ok),
		op(1, 4, 5, acq("a", 11), granted(8)),
		op(1, 6, 7, rel("a", 11, 5), ok),
	}},
	{"release accepted from another session", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(2, 2, 3, rel("a", 21, 5), ok),
	}},
	{"stale read after a completed release", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(1, 2, 3, rel("a", 11, 5), ok),
		op(3, 4, 5, getLock("a"), holder(11, 5)),
	}},
	{"granted after its own session got SessionExpired", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(1, 2, 3, keep(11), expired),
		op(1, 4, 5, acq("b", 11), granted(8)),
		op(1, 6, 7, acq("a", 11), granted(5)),
	}},
	{"keepalive OK after SessionExpired", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(1, 2, 3, keep(11), expired),
		op(1, 4, 5, keep(11), ok),
	}},
	{"locked while free", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(1, 2, 3, rel("a", 11, 5), ok),
		op(2, 4, 5, try("a", 21), locked(0, 0)),
	}},
	{"locked reports the wrong holder", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(2, 4, 5, try("a", 21), locked(31, 0)),
	}},
	{"cancelled wait left the lock granted", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(2, 2, 20, acq("a", 21), cancelled),
		op(1, 3, 4, rel("a", 11, 5), ok),
		op(3, 5, 6, getLock("a"), holder(21, 7)),
		op(3, 21, 22, getLock("a"), holder(21, 7)),
	}},
	{"unknown acquire cannot explain a lower token", []ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(1, 2, 3, rel("a", 11, 5), ok),
		op(2, 4, -1, acq("a", 21), never),
		op(3, 6, 7, getLock("a"), holder(21, 4)),
	}},
	{"a cancelled wait still held after its return", []ev{
		op(2, 2, 30, acq("a", 21), cancelled),
		op(3, 5, 6, getLock("a"), holder(21, 7)),
		op(4, 31, 32, try("a", 31), locked(21, 7)),
		op(2, 33, 34, keep(21), ok),
	}},
	{"an unknown acquire cannot take effect twice for one grant", []ev{
		op(1, 0, 1, acq("a", 11), unknown),
		op(3, 2, 3, getLock("a"), holder(11, 7)),
		op(3, 4, 5, getLock("a"), free),
		op(3, 6, 7, getLock("a"), holder(11, 9)),
		op(1, 8, 9, keep(11), ok),
	}},
	{"election: two leaders at once, both proclaiming", []ev{
		op(1, 0, 1, camp("e", 11, "x"), term(5)),
		op(2, 2, 3, camp("e", 21, "y"), term(9)),
		op(1, 4, 5, procl("e", 11, 5, "x2"), ok),
		op(2, 4, 5, procl("e", 21, 9, "y2"), ok),
	}},
	{"election: term going backwards", []ev{
		op(1, 0, 1, camp("e", 11, "x"), term(10)),
		op(1, 2, 3, resign("e", 11, 10), ok),
		op(2, 4, 5, camp("e", 21, "y"), term(7)),
	}},
	{"election: GetLeader stale after a resign", []ev{
		op(1, 0, 1, camp("e", 11, "x"), term(5)),
		op(1, 2, 3, resign("e", 11, 5), ok),
		op(3, 4, 5, getLeader("e"), leader(11, "x", 5)),
	}},
	{"election: GetLeader shows an old value", []ev{
		op(1, 0, 1, camp("e", 11, "x"), term(5)),
		op(1, 2, 3, procl("e", 11, 5, "x2"), ok),
		op(3, 4, 5, getLeader("e"), leader(11, "x", 5)),
	}},
	{"election: GetLeader shows the value a campaign by the leader replaced", []ev{
		op(1, 0, 1, camp("e", 11, "x"), term(5)),
		op(1, 2, 3, camp("e", 11, "y"), term(5)),
		op(3, 4, 5, getLeader("e"), leader(11, "x", 5)),
	}},
	{"election: campaign NotLeader names a leader that is not", []ev{
		op(1, 0, 1, camp("e", 11, "x"), term(5)),
		op(1, 2, 3, keep(11), ok),
		op(2, 4, 5, camp("e", 21, "y"), notLeader(31, "z", 4)),
		op(1, 6, 7, keep(11), ok),
	}},
	{"election: proclaim with a stale term", []ev{
		op(1, 0, 1, camp("e", 11, "x"), term(5)),
		op(1, 2, 3, resign("e", 11, 5), ok),
		op(1, 4, 5, camp("e", 11, "x"), term(8)),
		op(1, 6, 7, procl("e", 11, 5, "y"), ok),
	}},
}

// Read-write locks: shared holds (Input.Shared).
var acceptedRW = []histCase{
	{"shared holders together, then exclusive after both release", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(2, 2, 3, acqS("a", 21), granted(7)),
		op(3, 4, 5, getLock("a"), holders(true, 11, 5, 21, 7)),
		op(3, 4, 5, getLock("a"), free), // legacy: no exclusive holder
		op(1, 6, 7, rel("a", 11, 5), ok),
		op(3, 8, 9, getLock("a"), holders(true, 21, 7)), // the other keeps its hold
		op(2, 10, 11, rel("a", 21, 7), ok),
		op(3, 12, 13, getLock("a"), holders(true)),
		op(4, 14, 15, try("a", 31), granted(15)),
		op(3, 16, 17, getLock("a"), holders(false, 31, 15)),
		op(3, 16, 17, getLock("a"), holder(31, 15)),
		op(1, 18, 19, keep(11), ok),
		op(2, 18, 19, keep(21), ok),
	}},
	{"shared holders granted in one entry share the token", []ev{
		op(1, 0, 1, try("a", 11), granted(5)),
		op(2, 2, 10, acqS("a", 21), granted(8)),
		op(3, 3, 10, acqS("a", 31), granted(8)),
		op(1, 4, 5, rel("a", 11, 5), ok),
		op(4, 11, 12, getLock("a"), holders(true, 21, 8, 31, 8)),
	}},
	{"a shared grant after an exclusive one's release in the same entry", []ev{
		op(1, 0, 1, try("a", 11), granted(5)),
		op(2, 2, 10, acqS("a", 21), granted(6)),
		op(1, 3, 4, rel("a", 11, 5), ok),
	}},
	{"a retry in the same mode answers the token again", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(1, 2, 3, acqS("a", 11), granted(5)),
		op(2, 4, 5, try("b", 11), granted(6)),
		op(2, 6, 7, acq("b", 11), granted(6)),
	}},
	{"a shared try is refused while only shared holders hold (a queued exclusive waiter)", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(2, 2, 3, tryS("a", 21), locked(11, 5)),
		op(2, 4, 5, tryS("a", 21), Output{Kind: Locked, Holders: []Hold{{11, 5, true}}}),
		op(3, 6, 7, try("a", 31), locked(0, 0)),
		op(1, 8, 9, keep(11), ok),
	}},
	{"a shared holder expires, then an exclusive grant", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(2, 2, 3, tryS("a", 21), granted(6)),
		op(3, 4, 5, try("a", 31), granted(9)),
		op(1, 6, 7, keep(11), expired),
		op(2, 6, 7, keep(21), expired),
		op(4, 8, 9, getLock("a"), holders(false, 31, 9)),
	}},
	{"an unknown shared acquire shows later with a token below a later grant", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(2, 2, 3, acqS("a", 21), unknown),
		op(3, 4, 5, tryS("a", 31), granted(9)),
		op(4, 6, 7, getLock("a"), holders(true, 11, 5, 21, 7, 31, 9)),
	}},
	{"a cancelled shared wait granted and released within its interval", []ev{
		op(1, 0, 1, try("a", 11), granted(5)),
		op(2, 2, 20, acqS("a", 21), cancelled),
		op(1, 3, 4, rel("a", 11, 5), ok),
		op(3, 5, 6, getLock("a"), holders(true, 21, 7)),
		op(4, 7, 8, tryS("a", 31), granted(8)),
		op(3, 9, 10, getLock("a"), holders(true, 21, 7, 31, 8)),
		op(3, 21, 22, getLock("a"), holders(true, 31, 8)),
	}},
}

var rejectedRW = []histCase{
	{"exclusive holder beside a shared one", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(2, 2, 3, try("a", 21), granted(9)),
		op(1, 4, 5, keep(11), ok),
	}},
	{"shared holder beside an exclusive one", []ev{
		op(1, 0, 1, try("a", 11), granted(5)),
		op(2, 2, 3, tryS("a", 21), granted(9)),
		op(1, 4, 5, keep(11), ok),
	}},
	{"exclusive grant while the other shared holder keeps its hold", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(2, 2, 3, tryS("a", 21), granted(6)),
		op(1, 4, 5, rel("a", 11, 5), ok),
		op(3, 6, 7, try("a", 31), granted(9)),
		op(2, 8, 9, rel("a", 21, 6), ok),
	}},
	{"exclusive token not above an earlier shared one", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(1, 2, 3, rel("a", 11, 5), ok),
		op(2, 4, 5, try("a", 21), granted(5)),
	}},
	{"shared token below an earlier one", []ev{
		op(1, 0, 1, tryS("a", 11), granted(7)),
		op(2, 2, 3, tryS("a", 21), granted(6)),
	}},
	{"shared grant repeats a token after a release", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(1, 2, 3, rel("a", 11, 5), ok),
		op(2, 4, 5, tryS("a", 21), granted(5)),
	}},
	{"a shared holder's exclusive acquire answers its shared token", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(1, 2, 3, try("a", 11), granted(5)),
	}},
	{"a retry answers another token", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(1, 2, 3, acqS("a", 11), granted(6)),
	}},
	{"a shared try refused on a free lock", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(1, 2, 3, rel("a", 11, 5), ok),
		op(2, 4, 5, tryS("a", 21), locked(0, 0)),
	}},
	{"a shared holder's retry refused", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(2, 2, 3, tryS("a", 21), granted(6)),
		op(1, 4, 5, tryS("a", 11), locked(21, 6)),
		op(1, 6, 7, keep(11), ok),
	}},
	{"Locked names a session that does not hold", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(2, 2, 3, try("a", 21), locked(31, 0)),
		op(1, 4, 5, keep(11), ok),
	}},
	{"Locked shows holders that are not all", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(2, 2, 3, tryS("a", 21), granted(6)),
		op(3, 4, 5, try("a", 31), Output{Kind: Locked, Holders: []Hold{{11, 5, true}}}),
		op(2, 6, 7, keep(21), ok),
	}},
	{"a read shows a shared holder as exclusive", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(3, 2, 3, getLock("a"), holders(false, 11, 5)),
	}},
	{"a read leaves a shared holder out", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(2, 2, 3, tryS("a", 21), granted(6)),
		op(3, 4, 5, getLock("a"), holders(true, 21, 6)),
		op(1, 6, 7, keep(11), ok),
	}},
	{"a read shows a shared-held lock free", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(3, 2, 3, getLock("a"), holders(true)),
		op(1, 4, 5, keep(11), ok),
	}},
	{"a legacy read shows no exclusive holder", []ev{
		op(1, 0, 1, try("a", 11), granted(5)),
		op(3, 2, 3, getLock("a"), free),
		op(1, 4, 5, keep(11), ok),
	}},
	{"a read's Session is not the exclusive holder its Holders show", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(3, 2, 3, getLock("a"), Output{Kind: OK, Session: 11, Token: 5, Holders: []Hold{{11, 5, true}}}),
	}},
	{"an unknown shared acquire cannot show a token above a later grant", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(2, 2, 3, acqS("a", 21), unknown),
		op(4, 4, 5, try("a", 41), locked(21, 0)), // 21 holds by now
		op(3, 6, 7, tryS("a", 31), granted(6)),
		op(4, 8, 9, getLock("a"), holders(true, 11, 5, 21, 7, 31, 6)),
	}},
	{"exclusive token equal to an earlier shared one after its holder expired", []ev{
		op(1, 0, 1, tryS("a", 11), granted(5)),
		op(2, 2, 3, try("a", 21), granted(5)),
		op(1, 4, 5, keep(11), expired),
	}},
}

// Semaphores.
var acceptedSem = []histCase{
	{"limit holders, tokens in one entry or increasing, retries", []ev{
		op(1, 0, 1, semTry("x", 11, 2), granted(5)),
		op(2, 2, 9, semAcq("x", 21, 2), granted(8)),
		op(1, 3, 4, semTry("x", 11, 2), granted(5)),
		op(3, 10, 11, getSem("x"), permits(11, 5, 21, 8)),
		op(3, 10, 11, Input{Kind: GetSemaphore, Name: "x"}, Output{Kind: OK, Limit: 2, Holders: []Hold{{21, 8, false}, {11, 5, false}}}),
		op(4, 12, 13, semTry("x", 31, 2), locked(21, 8)),
		op(4, 12, 13, semTry("x", 31, 2), Output{Kind: Locked, Holders: []Hold{{11, 5, false}, {21, 8, false}}}),
		op(1, 14, 15, semRel("x", 11, 5), ok),
		op(1, 16, 17, semRel("x", 11, 5), notHolder),
		op(4, 18, 19, semAcq("x", 31, 2), granted(20)),
		op(5, 18, 19, semAcq("x", 41, 2), locked(0, 0)),
		op(3, 21, 22, getSem("x"), permits(21, 8, 31, 20)),
		op(2, 23, 24, keep(21), ok),
	}},
	{"two permits granted in one entry", []ev{
		op(1, 0, 1, semTry("x", 11, 3), granted(5)),
		op(2, 2, 3, semTry("x", 21, 3), granted(5)),
		op(3, 4, 5, getSem("x"), permits(11, 5, 21, 5)),
	}},
	{"a holder expires, another takes its permit", []ev{
		op(1, 0, 1, semTry("x", 11, 1), granted(5)),
		op(2, 2, 3, semTry("x", 21, 1), granted(9)),
		op(1, 4, 5, semRel("x", 11, 5), expired),
		op(3, 6, 7, getSem("x"), permits(21, 9)),
	}},
	{"Locked explained by unknown acquires", []ev{
		op(1, 0, 1, semAcq("x", 11, 2), unknown),
		op(2, 0, -1, semTry("x", 21, 2), never),
		op(3, 2, 3, semTry("x", 31, 2), locked(0, 0)),
		op(1, 4, 5, keep(11), ok),
		op(2, 4, 5, keep(21), ok),
	}},
	{"Locked to a holder that died, the semaphore filled by unknown acquires", []ev{
		// Locked does not prove its session alive (nor does it for locks).
		op(1, 0, 1, semTry("x", 11, 2), granted(5)),
		op(2, 0, -1, semTry("x", 21, 2), never),
		op(3, 0, -1, semTry("x", 31, 2), never),
		op(1, 2, 3, semTry("x", 11, 2), locked(0, 0)),
	}},
	{"Locked explained by a cancelled wait", []ev{
		op(1, 0, 1, semTry("x", 11, 2), granted(5)),
		op(2, 2, 10, semAcq("x", 21, 2), cancelled),
		op(3, 3, 4, semTry("x", 31, 2), locked(11, 5)),
		op(3, 11, 12, semTry("x", 31, 2), granted(13)),
		op(2, 14, 15, keep(21), ok),
	}},
	{"an unknown acquire shows later with a token below a later grant", []ev{
		op(1, 0, 1, semTry("x", 11, 3), granted(5)),
		op(2, 2, 3, semTry("x", 21, 3), unknown),
		op(3, 4, 5, semTry("x", 31, 3), granted(9)),
		op(4, 6, 7, getSem("x"), permits(11, 5, 21, 7, 31, 9)),
	}},
	{"semaphore, lock and election of the same name are separate", []ev{
		op(1, 0, 1, semTry("n", 11, 1), granted(5)),
		op(2, 0, 1, try("n", 21), granted(6)),
		op(3, 0, 1, camp("n", 31, "v"), term(7)),
		op(4, 2, 3, getSem("n"), permits(11, 5)),
		op(4, 2, 3, getLock("n"), holder(21, 6)),
	}},
	{"a forgotten semaphore reads limit 0", []ev{
		op(1, 0, 1, semTry("x", 11, 2), granted(5)),
		op(1, 2, 3, semRel("x", 11, 5), ok),
		op(3, 4, 5, getSem("x"), Output{Kind: OK}),
	}},
}

var rejectedSem = []histCase{
	{"limit+1 permits", []ev{
		op(1, 0, 1, semTry("x", 11, 2), granted(5)),
		op(2, 2, 3, semTry("x", 21, 2), granted(6)),
		op(3, 4, 5, semAcq("x", 31, 2), granted(7)),
		op(1, 6, 7, keep(11), ok),
		op(2, 6, 7, keep(21), ok),
	}},
	{"a permit's token below an earlier one", []ev{
		op(1, 0, 1, semTry("x", 11, 3), granted(7)),
		op(2, 2, 3, semTry("x", 21, 3), granted(6)),
	}},
	{"a permit repeats a token after a release", []ev{
		op(1, 0, 1, semTry("x", 11, 3), granted(5)),
		op(1, 2, 3, semRel("x", 11, 5), ok),
		op(2, 4, 5, semTry("x", 21, 3), granted(5)),
	}},
	{"a holder's acquire answers another token", []ev{
		op(1, 0, 1, semTry("x", 11, 3), granted(5)),
		op(1, 2, 3, semAcq("x", 11, 3), granted(6)),
	}},
	{"Locked on a free semaphore", []ev{
		op(1, 0, 1, semTry("x", 11, 2), locked(0, 0)),
	}},
	{"Locked on a semaphore with a free permit", []ev{
		op(1, 0, 1, semTry("x", 11, 2), granted(5)),
		op(2, 2, 3, semTry("x", 21, 2), locked(11, 5)),
	}},
	{"Locked to a holder", []ev{
		op(1, 0, 1, semTry("x", 11, 1), granted(5)),
		op(1, 2, 3, semTry("x", 11, 1), locked(0, 0)),
	}},
	{"Locked names a session without a permit", []ev{
		op(1, 0, 1, semTry("x", 11, 1), granted(5)),
		op(2, 2, 3, semTry("x", 21, 1), locked(31, 0)),
		op(1, 4, 5, keep(11), ok),
	}},
	{"Locked shows fewer holders than the limit", []ev{
		op(1, 0, 1, semTry("x", 11, 2), granted(5)),
		op(2, 0, 1, semTry("x", 21, 2), granted(6)),
		op(3, 2, 3, semTry("x", 31, 2), Output{Kind: Locked, Holders: []Hold{{11, 5, false}}}),
	}},
	{"Locked filled by one unknown acquire twice", []ev{
		op(1, 0, 1, semAcq("x", 11, 2), unknown),
		op(3, 2, 3, semTry("x", 31, 2), locked(0, 0)),
	}},
	{"a release with the wrong token frees the permit", []ev{
		op(1, 0, 1, semTry("x", 11, 1), granted(5)),
		op(1, 2, 3, semRel("x", 11, 4), ok),
	}},
	{"a release refused to the holder with its token", []ev{
		op(1, 0, 1, semTry("x", 11, 1), granted(5)),
		op(1, 2, 3, semRel("x", 11, 5), notHolder),
		op(1, 4, 5, keep(11), ok),
	}},
	{"a read leaves a holder out", []ev{
		op(1, 0, 1, semTry("x", 11, 2), granted(5)),
		op(2, 2, 3, semTry("x", 21, 2), granted(6)),
		op(3, 4, 5, getSem("x"), permits(21, 6)),
		op(1, 6, 7, keep(11), ok),
	}},
	{"a read shows a released permit", []ev{
		op(1, 0, 1, semTry("x", 11, 2), granted(5)),
		op(1, 2, 3, semRel("x", 11, 5), ok),
		op(3, 4, 5, getSem("x"), permits(11, 5)),
	}},
	{"a read shows another limit", []ev{
		op(1, 0, 1, semTry("x", 11, 2), granted(5)),
		op(3, 2, 3, getSem("x"), Output{Kind: OK, Limit: 3, Holders: []Hold{{11, 5, false}}}),
	}},
	{"a permit of a session that is dead", []ev{
		op(1, 0, 1, keep(11), expired),
		op(1, 2, 3, semTry("x", 11, 2), granted(5)),
	}},
}

func TestAccepts(t *testing.T) {
	for _, c := range slices.Concat(accepted, acceptedRW, acceptedSem) {
		t.Run(c.name, func(t *testing.T) {
			res := recordAll(c.ops).Check(5 * time.Second)
			if !res.Ok {
				t.Fatalf("rejected a correct history: %+v", res)
			}
		})
	}
}

func TestRejects(t *testing.T) {
	for _, c := range slices.Concat(rejected, rejectedRW, rejectedSem) {
		t.Run(c.name, func(t *testing.T) {
			res := recordAll(c.ops).Check(5 * time.Second)
			if res.Ok || res.TimedOut {
				t.Fatalf("accepted a buggy history: %+v", res)
			}
			if !strings.Contains(res.Failed, "not linearizable") {
				t.Fatalf("Failed = %q, want a linearizability violation", res.Failed)
			}
			t.Log(res.Failed)
		})
	}
}

// TestUnknownLaterEffect: an unknown operation may take effect long after
// its call, after other operations that completed.
func TestUnknownLaterEffect(t *testing.T) {
	h := recordAll([]ev{
		op(1, 0, 1, acq("a", 11), granted(5)),
		op(2, 2, -1, acq("a", 21), never),
		op(3, 3, 4, getLock("a"), holder(11, 5)),
		op(1, 5, 6, rel("a", 11, 5), ok),
		op(3, 7, 8, getLock("a"), free),
		op(3, 100, 101, getLock("a"), holder(21, 50)),
	})
	if res := h.Check(5 * time.Second); !res.Ok {
		t.Fatalf("%+v", res)
	}
}

func TestFailedNamesThePartition(t *testing.T) {
	evs := append([]ev{
		op(1, 0, 1, acq("fine", 11), granted(3)),
		op(2, 0, 1, camp("ok", 11, "v"), term(4)),
	}, rejected[0].ops...)
	res := recordAll(evs).Check(5 * time.Second)
	if res.Ok || !strings.HasPrefix(res.Failed, `lock "a": not linearizable`) {
		t.Fatalf("%+v", res)
	}
	if res.Partitions != 3 || res.Ops != len(evs) {
		t.Fatalf("Partitions %d, Ops %d, want 3, %d", res.Partitions, res.Ops, len(evs))
	}
}

// TestPartitionOrder: locks, then elections, then semaphores, each by
// name; Failed names the first that fails.
func TestPartitionOrder(t *testing.T) {
	h := recordAll([]ev{
		op(1, 0, 1, semTry("a", 11, 1), granted(5)),
		op(2, 2, 3, semTry("a", 21, 1), granted(9)), // the violation
		op(1, 4, 5, keep(11), ok),
		op(3, 0, 1, camp("b", 31, "v"), term(4)),
		op(4, 0, 1, try("c", 41), granted(3)),
	})
	res := h.Check(5 * time.Second)
	if res.Ok || !strings.HasPrefix(res.Failed, `semaphore "a": not linearizable`) || res.Partitions != 3 {
		t.Fatalf("%+v", res)
	}
	parts, _, err := partitionHistory(h.ops)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range parts {
		names = append(names, p.name)
	}
	if want := []string{`lock "c"`, `election "b"`, `semaphore "a"`}; !slices.Equal(names, want) {
		t.Fatalf("partitions %q, want %q", names, want)
	}
}

func TestMalformed(t *testing.T) {
	for _, c := range []histCase{
		{"release answers Granted", []ev{op(1, 0, 1, rel("a", 11, 5), granted(5))}},
		{"acquire without name", []ev{op(1, 0, 1, acq("", 11), granted(5))}},
		{"acquire without session", []ev{op(1, 0, 1, acq("a", 0), granted(5))}},
		{"keepalive with a name", []ev{op(1, 0, 1, Input{Kind: KeepAlive, Name: "a", Session: 1}, ok)}},
		{"answer before call", []ev{op(1, 5, 4, getLock("a"), free)}},
		{"unknown kind", []ev{op(1, 0, 1, Input{Kind: 99, Name: "a", Session: 1}, ok)}},
		{"shared release", []ev{op(1, 0, 1, Input{Kind: Release, Name: "a", Session: 1, Token: 5, Shared: true}, ok)}},
		{"semaphore acquire without limit", []ev{op(1, 0, 1, semTry("x", 1, 0), granted(5))}},
		{"lock acquire with a limit", []ev{op(1, 0, 1, Input{Kind: Acquire, Name: "a", Session: 1, Limit: 2}, granted(5))}},
		{"two limits for one semaphore", []ev{
			op(1, 0, 1, semTry("x", 1, 2), granted(5)),
			op(2, 0, 1, semAcq("x", 2, 3), granted(6)),
		}},
		{"a holder read twice", []ev{op(1, 0, 1, getSem("x"), permits(1, 5, 1, 5))}},
		{"a hold without a token", []ev{op(1, 0, 1, getLock("a"), holders(true, 1, 0))}},
		{"Locked shows a hold without a session", []ev{op(1, 0, 1, semTry("x", 1, 1), Output{Kind: Locked, Holders: []Hold{{0, 5, false}}})}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := recordAll(c.ops).Check(time.Second)
			if res.Ok || !strings.HasPrefix(res.Failed, "malformed history: ") {
				t.Fatalf("%+v", res)
			}
		})
	}
}

func TestReturnPanics(t *testing.T) {
	h := NewHistory()
	id := h.Call(1, 0, getLock("a"))
	h.Return(id, 1, free)
	for _, f := range []func(){
		func() { h.Return(id, 2, free) },
		func() { h.Return(id+1, 2, free) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		}()
	}
}

func TestVisualize(t *testing.T) {
	h := NewHistory()
	if err := h.Visualize(&bytes.Buffer{}); err == nil {
		t.Fatal("Visualize before Check: no error")
	}
	h = recordAll(append(append([]ev{}, accepted[0].ops...), rejected[0].ops...))
	if res := h.Check(5 * time.Second); res.Ok {
		t.Fatalf("%+v", res)
	}
	var b bytes.Buffer
	if err := h.Visualize(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "<html") || !strings.Contains(b.String(), "KeepAlive(s11)") {
		t.Fatalf("not the visualization: %.200s", b.String())
	}
	h = recordAll(accepted[0].ops)
	if res := h.Check(5 * time.Second); !res.Ok {
		t.Fatalf("%+v", res)
	}
	b.Reset()
	if err := h.Visualize(&b); err != nil || !strings.Contains(b.String(), "TryAcquire(s21)") {
		t.Fatalf("%v, %.200s", err, b.String())
	}
	h = recordAll(slices.Concat(acceptedRW[0].ops, acceptedSem[0].ops, rejectedSem[0].ops))
	if res := h.Check(5 * time.Second); res.Ok {
		t.Fatalf("%+v", res)
	}
	b.Reset()
	if err := h.Visualize(&b); err != nil || !strings.Contains(b.String(), "SemAcquire(s31, limit 2)") {
		t.Fatalf("%v, %.200s", err, b.String())
	}
}

// TestConcurrentRecording records from many goroutines (run with -race).
func TestConcurrentRecording(t *testing.T) {
	h := NewHistory()
	var wg sync.WaitGroup
	var clock sync.Mutex
	var now int64
	tick := func() int64 {
		clock.Lock()
		defer clock.Unlock()
		now++
		return now
	}
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				id := h.Call(c, tick(), getLock("a"))
				h.Return(id, tick(), free)
			}
		}()
	}
	wg.Wait()
	if h.Len() != 400 {
		t.Fatalf("Len %d", h.Len())
	}
	if res := h.Check(5 * time.Second); !res.Ok || res.Ops != 400 {
		t.Fatalf("%+v", res)
	}
}

// TestTimedOut: a timeout too short for any verdict gives TimedOut, not Ok.
func TestTimedOut(t *testing.T) {
	h := genHistory(defaultConfig(1, fourLocks, nil))
	res := h.Check(time.Nanosecond)
	if res.Ok || !res.TimedOut || !strings.Contains(res.Failed, "no verdict within 1ns") {
		t.Fatalf("%+v", res)
	}
}
