package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
)

func TestCampaignProclaimResign(t *testing.T) {
	_, ts := newTestServer(t, nil)
	a := openSession(t, ts, "a")
	b := openSession(t, ts, "b")

	r := must(t, ts, "POST", "/v1/elections/svc/web/campaign", `{"session":"`+a+`","value":"10.0.0.1"}`, 200)
	term := r.num("term")
	if r.str("session") != a || r.str("value") != "10.0.0.1" || r.str("name") != "svc/web" || term == 0 {
		t.Fatalf("campaign: %s", r.raw)
	}
	// A retry answers the same term; a new value is proclaimed (as etcd).
	if r := must(t, ts, "POST", "/v1/elections/svc%2Fweb/campaign", `{"session":"`+a+`","value":"10.0.0.1"}`, 200); r.num("term") != term || r.str("value") != "10.0.0.1" {
		t.Fatalf("campaign retry: %s", r.raw)
	}
	if r := must(t, ts, "POST", "/v1/elections/svc%2Fweb/campaign", `{"session":"`+a+`","value":"other"}`, 200); r.num("term") != term || r.str("value") != "other" {
		t.Fatalf("campaign again with a new value: %s", r.raw)
	}
	must(t, ts, "POST", "/v1/elections/svc/web/proclaim", `{"session":"`+a+`","term":`+fmt.Sprint(term)+`,"value":"10.0.0.1"}`, 200)
	// Without a wait another session is refused with the leader named.
	r = mustErr(t, ts, "POST", "/v1/elections/svc/web/campaign", `{"session":"`+b+`","value":"10.0.0.2"}`, 409, api.CodeNotLeader)
	if l, _ := r.body["error"].(map[string]any)["leader"].(map[string]any); l == nil || l["session"] != a {
		t.Fatalf("not_leader without the leader: %s", r.raw)
	}
	must(t, ts, "POST", "/v1/elections/svc/web/proclaim", `{"session":"`+a+`","term":`+u(term)+`,"value":"10.0.0.9"}`, 200)
	mustErr(t, ts, "POST", "/v1/elections/svc/web/proclaim", `{"session":"`+a+`","term":`+u(term+1)+`,"value":"x"}`, 409, api.CodeNotLeader)
	r = must(t, ts, "GET", "/v1/elections/svc/web", "", 200)
	if l, _ := r.body["leader"].(map[string]any); l == nil || l["value"] != "10.0.0.9" || l["owner"] != "a" || uint64(l["term"].(float64)) != term {
		t.Fatalf("get election: %s", r.raw)
	}
	must(t, ts, "POST", "/v1/elections/svc/web/resign", `{"session":"`+a+`","term":`+u(term)+`}`, 200)
	mustErr(t, ts, "POST", "/v1/elections/svc/web/resign", `{"session":"`+a+`","term":`+u(term)+`}`, 409, api.CodeNotLeader)
	if r := must(t, ts, "GET", "/v1/elections/svc/web", "", 200); r.body["leader"] != nil {
		t.Fatalf("after resign: %s", r.raw)
	}
	if r := must(t, ts, "GET", "/v1/elections?prefix=svc/", "", 200); r.raw != `{"elections":[]}` {
		t.Fatalf("list: %s", r.raw)
	}
	for _, bad := range []struct{ path, body string }{
		{"/v1/elections/svc/campaign", `{"value":"x"}`},
		{"/v1/elections/svc/campaign", `{"session":"` + a + `","wait":"-1s"}`},
		{"/v1/elections/bad name/campaign", `{"session":"` + a + `"}`},
		{"/v1/elections/svc/proclaim", `{"session":"` + a + `","value":"x"}`},
		{"/v1/elections/svc/resign", `{"session":"` + a + `","term":"1"}`},
		{"/v1/elections/svc/campaign", `{"session":"` + a + `","value":"` + string(make([]byte, 0)) + `","x":1}`},
	} {
		if r := do(t, ts, "POST", bad.path, bad.body); r.status != 400 || r.errCode() != api.CodeInvalidArgument {
			t.Errorf("POST %s %s: %d %s, want 400", bad.path, bad.body, r.status, r.raw)
		}
	}
	if r := do(t, ts, "POST", "/v1/elections/svc", `{}`); r.status != 405 {
		t.Errorf("POST without an action: %d %s", r.status, r.raw)
	}
}

func TestCampaignWaitsThenLeadsOrLeavesTheQueue(t *testing.T) {
	f, ts := newTestServer(t, nil)
	a := openSession(t, ts, "a")
	b := openSession(t, ts, "b")
	c := openSession(t, ts, "c")
	term := must(t, ts, "POST", "/v1/elections/e/campaign", `{"session":"`+a+`","value":"A"}`, 200).num("term")

	got := make(chan reply, 1)
	go func() {
		got <- do(t, ts, "POST", "/v1/elections/e/campaign", `{"session":"`+b+`","value":"B","wait":"30s"}`)
	}()
	f.await(t, "b is a candidate", func(m *lock.Machine) bool {
		ei, ok := m.Election("e")
		return ok && len(ei.Candidates) == 1
	})
	must(t, ts, "POST", "/v1/elections/e/resign", `{"session":"`+a+`","term":`+u(term)+`}`, 200)
	r := <-got
	if r.status != 200 || r.str("session") != b || r.str("value") != "B" || r.num("term") <= term {
		t.Fatalf("waiting campaign: %d %s", r.status, r.raw)
	}
	// A wait that runs out answers not_leader and leaves the queue.
	r = mustErr(t, ts, "POST", "/v1/elections/e/campaign", `{"session":"`+c+`","value":"C","wait":"50ms"}`, 409, api.CodeNotLeader)
	if e := must(t, ts, "GET", "/v1/elections/e", "", 200); len(e.body["candidates"].([]any)) != 0 {
		t.Fatalf("candidate left behind: %s", e.raw)
	}
}

func TestObserveEveryLeaderChangeAndResume(t *testing.T) {
	f, ts := newTestServer(t, nil)
	a := openSession(t, ts, "a")
	b := must(t, ts, "POST", "/v1/sessions", `{"ttl":"5s","owner":"b"}`, 201).str("id")
	s := openStream(t, ts, "/v1/elections/e/observe")
	var le api.LeaderEvent
	m := s.next(t)
	if m.event != api.SSEState || json.Unmarshal([]byte(m.data), &le) != nil || le.Leader != nil {
		t.Fatalf("first message: %+v", m)
	}
	ta := must(t, ts, "POST", "/v1/elections/e/campaign", `{"session":"`+a+`","value":"A"}`, 200).num("term")
	must(t, ts, "POST", "/v1/elections/e/campaign", `{"session":"`+b+`","value":"B","wait":"1ms"}`, 409)
	go func() { do(t, ts, "POST", "/v1/elections/e/campaign", `{"session":"`+b+`","value":"B","wait":"1m"}`) }()
	f.await(t, "b is a candidate", func(m *lock.Machine) bool {
		ei, ok := m.Election("e")
		return ok && len(ei.Candidates) == 1
	})
	must(t, ts, "POST", "/v1/elections/e/proclaim", `{"session":"`+a+`","term":`+u(ta)+`,"value":"A2"}`, 200)
	must(t, ts, "POST", "/v1/elections/e/resign", `{"session":"`+a+`","term":`+u(ta)+`}`, 200)
	// b leads now; then its session expires: "expired" with no leader left.
	f.set(func(f *fakeNode) { f.now = f.now.Add(6 * time.Second) })
	if _, _, err := f.Propose(context.Background(), &lock.Command{Op: lock.OpExpire}); err != nil {
		t.Fatal(err)
	}
	type step struct {
		typ    string
		leader string
		value  string
	}
	want := []step{{"elected", a, "A"}, {"proclaimed", a, "A2"}, {"elected", b, "B"}, {"no_leader", "", ""}}
	var ids []string
	for i, w := range want {
		m := s.next(t)
		var le api.LeaderEvent
		if err := json.Unmarshal([]byte(m.data), &le); err != nil || m.event != api.SSEChange || m.id != strconv.FormatUint(le.Revision, 10) {
			t.Fatalf("message %d: %+v", i, m)
		}
		got := step{typ: le.Type}
		if le.Leader != nil {
			got.leader, got.value = le.Leader.Session.String(), le.Leader.Value
		}
		if got != w {
			t.Fatalf("message %d: %+v, want %+v (%s)", i, got, w, m.data)
		}
		if i == 2 && (len(le.Changes) != 2 || le.Changes[0] != "resigned" || le.Changes[1] != "elected") {
			t.Fatalf("resign and succession in one entry: changes %v, want [resigned elected]", le.Changes)
		}
		ids = append(ids, m.id)
	}
	// Resume after the second message: the rest again, nothing else.
	r := openStream(t, ts, "/v1/elections/e/observe", api.HeaderLastEventID, ids[1])
	for _, id := range ids[2:] {
		if m := r.next(t); m.id != id {
			t.Fatalf("resumed message id %s, want %s", m.id, id)
		}
	}
}
