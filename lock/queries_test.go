package lock

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// TestListLocksPages: a listing by prefix returns the locks in name order,
// page by page, with nothing skipped or repeated, and says whether more
// follow; it stops at the end of the prefix.
func TestListLocksPages(t *testing.T) {
	m := New()
	idx := uint64(1)
	m.Apply(idx, 1, &Command{Op: OpOpenSession, Now: 1, TTL: MaxTTL})
	var all []string
	for _, p := range []string{"a/", "b/", "b/x/", "c"} {
		for i := range 23 {
			name := fmt.Sprintf("%s%02d", p, i)
			all = append(all, name)
			idx++
			if r := m.Apply(idx, 1, &Command{Op: OpAcquire, Now: 1, Session: 1, Name: name}); r.Code != CodeOK {
				t.Fatalf("acquire %s: %v", name, r.Code)
			}
		}
	}
	slices.Sort(all)
	for _, prefix := range []string{"", "a/", "b/", "b/x/", "c", "zz", "b/0"} {
		var want []string
		for _, n := range all {
			if strings.HasPrefix(n, prefix) {
				want = append(want, n)
			}
		}
		for _, limit := range []int{1, 5, 23, 1000} {
			var got []string
			after := ""
			for page := 0; ; page++ {
				ls, more := m.ListLocks(prefix, after, limit)
				if len(ls) > limit {
					t.Fatalf("prefix %q limit %d: page of %d", prefix, limit, len(ls))
				}
				for _, l := range ls {
					got = append(got, l.Name)
				}
				if !more {
					break
				}
				if len(ls) == 0 || page > len(all) {
					t.Fatalf("prefix %q limit %d: more with an empty page", prefix, limit)
				}
				after = ls[len(ls)-1].Name
			}
			if !slices.Equal(got, want) {
				t.Fatalf("prefix %q limit %d: listed %v, want %v", prefix, limit, got, want)
			}
		}
	}
	// A cursor outside the prefix lists nothing past it.
	if ls, more := m.ListLocks("a/", "b/", 10); len(ls) != 0 || more {
		t.Fatalf("after a name past the prefix: %v %v", ls, more)
	}
	if ls, _ := m.ListLocks("b/", "a/zz", 2); len(ls) != 2 || ls[0].Name != "b/00" {
		t.Fatalf("after a name before the prefix: %v", ls)
	}
}

// TestRestoreVersion1: a snapshot written before client request IDs
// (format version 1) restores, and snapshots again as version 2 with the
// same state.
func TestRestoreVersion1(t *testing.T) {
	m := scenario(t)
	v2 := m.Snapshot()
	// Version 1 is version 2 without the sessions' request IDs (all empty
	// in the scenario: one zero byte each after the bound).
	e := encoder{}
	e.byte(1)
	e.uvarint(m.applied)
	e.varint(m.clock)
	e.uvarint(m.term)
	ids := make([]uint64, 0, len(m.sessions))
	for id := range m.sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	e.uvarint(uint64(len(ids)))
	for _, id := range ids {
		s := m.sessions[id]
		if s.requestID != "" {
			t.Fatalf("the scenario has request IDs: version 1 cannot hold them")
		}
		e.uvarint(s.id)
		e.str(s.owner)
		e.varint(s.ttl)
		e.varint(s.deadline)
		e.str(s.bound)
	}
	rest := referenceSnapshot(m)
	d := decoder{b: rest, off: 1}
	d.uvarint("")
	d.varint("")
	d.uvarint("")
	for i, n := 0, d.count(""); i < n; i++ {
		d.uvarint("")
		d.str("")
		d.varint("")
		d.varint("")
		d.str("")
		d.str("")
	}
	v1 := append(e.b, rest[d.off:]...)
	var r Machine
	if err := r.Restore(v1); err != nil {
		t.Fatalf("restore version 1: %v", err)
	}
	if got := r.Snapshot(); string(got) != string(v2) {
		t.Fatal("a version 1 snapshot restores to another state")
	}
}

// TestPlaceState: a waiter's view of its place, for both kinds of queue.
func TestPlaceState(t *testing.T) {
	m := New()
	i := uint64(0)
	apply := func(c *Command) Result { i++; c.Now = 1; return m.Apply(i, 1, c) }
	a := apply(&Command{Op: OpOpenSession, TTL: MaxTTL}).Session
	b := apply(&Command{Op: OpOpenSession, TTL: MaxTTL}).Session
	tok := apply(&Command{Op: OpAcquire, Session: a, Name: "x"}).Token
	apply(&Command{Op: OpAcquire, Session: b, Name: "x", Wait: true})
	term := apply(&Command{Op: OpCampaign, Session: a, Name: "x", Value: "va"}).Token
	apply(&Command{Op: OpCampaign, Session: b, Name: "x", Value: "vb", Wait: true})
	for _, c := range []struct {
		p      Place
		exists bool
		queued bool
		holder uint64 // holder or leader session, 0 for none
	}{
		{Place{KindLock, "x", a}, true, false, a},
		{Place{KindLock, "x", b}, true, true, a},
		{Place{KindLock, "y", b}, true, false, 0},
		{Place{KindElection, "x", b}, true, true, a},
		{Place{KindElection, "x", 99}, false, false, a},
	} {
		ps := m.PlaceState(c.p)
		var holder uint64
		switch {
		case ps.Holder != nil:
			holder = ps.Holder.Session
			if ps.Holder.Token != tok {
				t.Errorf("%+v: holder token %d, want %d", c.p, ps.Holder.Token, tok)
			}
		case ps.Leader != nil:
			holder = ps.Leader.Session
			if ps.Leader.Term != term || ps.Leader.Value != "va" {
				t.Errorf("%+v: leader %+v", c.p, ps.Leader)
			}
		}
		if ps.SessionExists != c.exists || ps.Queued != c.queued || holder != c.holder {
			t.Errorf("%+v: %+v, want exists %v queued %v holder %d", c.p, ps, c.exists, c.queued, c.holder)
		}
	}
}

// ListSessions pages through the sessions in ID order, filtered by owner
// and principal, whatever the map's order; a filter that matches rarely
// stops at its scan budget with a cursor, and the pages go on from it.
func TestListSessions(t *testing.T) {
	m := New()
	idx := uint64(0)
	var ids []uint64
	for i := range 25 {
		idx++
		c := &Command{Op: OpOpenSession, TTL: 10e9, Owner: fmt.Sprint("o", i%3), Principal: fmt.Sprint("p", i%2)}
		res := m.Apply(idx, 1, c)
		ids = append(ids, res.Session)
	}
	idx++
	m.Apply(idx, 1, &Command{Op: OpCloseSession, Session: ids[4]})
	var got []uint64
	after := uint64(0)
	for pages := 0; ; pages++ {
		page, next := m.ListSessions(after, 4, "o1", "", true)
		for _, s := range page {
			got = append(got, s.ID)
			if s.Owner != "o1" {
				t.Fatalf("session %d of owner %q", s.ID, s.Owner)
			}
		}
		if next == 0 {
			break
		}
		if pages > 10 || len(page) != 4 {
			t.Fatalf("page %d: %d sessions, next %d", pages, len(page), next)
		}
		after = next
	}
	var want []uint64
	for i, id := range ids {
		if i%3 == 1 && i != 4 {
			want = append(want, id)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages %v, want %v", got, want)
	}
	if page, next := m.ListSessions(0, 100, "", "p1", false); len(page) != 12 || next != 0 {
		t.Fatalf("principal p1: %d sessions, next %d", len(page), next)
	}
	if page, next := m.ListSessions(ids[len(ids)-1], 5, "", "", true); len(page) != 0 || next != 0 {
		t.Fatalf("after the last: %v %d", page, next)
	}
	if page, next := m.ListSessions(math.MaxUint64, 5, "", "", true); len(page) != 0 || next != 0 {
		t.Fatalf("after the largest ID: %v %d", page, next)
	}
	// 2,000 sessions of owner "x", one of owner "rare" at the end: the
	// first page of "rare" stops at the budget (4·1 + 1,000) with a
	// cursor; following the cursors finds it.
	for range 2000 {
		idx++
		m.Apply(idx, 1, &Command{Op: OpOpenSession, TTL: 10e9, Owner: "x"})
	}
	idx++
	rare := m.Apply(idx, 1, &Command{Op: OpOpenSession, TTL: 10e9, Owner: "rare"}).Session
	page, next := m.ListSessions(0, 1, "rare", "", true)
	if len(page) != 0 || next == 0 {
		t.Fatalf("first page of a rare owner: %d sessions, next %d: want an empty page with a cursor", len(page), next)
	}
	var found []uint64
	for steps := 0; next != 0 && steps < 10; steps++ {
		page, next = m.ListSessions(next, 1, "rare", "", true)
		for _, s := range page {
			found = append(found, s.ID)
		}
	}
	if !slices.Equal(found, []uint64{rare}) || next != 0 {
		t.Fatalf("rare owner over the cursors: %v, next %d", found, next)
	}
	if err := checkInvariants(m); err != nil {
		t.Fatal(err)
	}
}
