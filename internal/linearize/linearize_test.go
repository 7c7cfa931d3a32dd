package linearize

import (
	"bytes"
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

func TestAccepts(t *testing.T) {
	for _, c := range accepted {
		t.Run(c.name, func(t *testing.T) {
			res := recordAll(c.ops).Check(5 * time.Second)
			if !res.Ok {
				t.Fatalf("rejected a correct history: %+v", res)
			}
		})
	}
}

func TestRejects(t *testing.T) {
	for _, c := range rejected {
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

func TestMalformed(t *testing.T) {
	for _, c := range []histCase{
		{"release answers Granted", []ev{op(1, 0, 1, rel("a", 11, 5), granted(5))}},
		{"acquire without name", []ev{op(1, 0, 1, acq("", 11), granted(5))}},
		{"acquire without session", []ev{op(1, 0, 1, acq("a", 0), granted(5))}},
		{"keepalive with a name", []ev{op(1, 0, 1, Input{Kind: KeepAlive, Name: "a", Session: 1}, ok)}},
		{"answer before call", []ev{op(1, 5, 4, getLock("a"), free)}},
		{"unknown kind", []ev{op(1, 0, 1, Input{Kind: 99, Name: "a", Session: 1}, ok)}},
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
