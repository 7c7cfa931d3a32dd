package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/testserver"
)

func TestCampaignLeadsWithTerm(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	s := newSession(t, c, time.Second, WithOwner("alpha"))
	e := s.NewElection("svc/primary")
	if e.Name() != "svc/primary" || e.Term() != 0 || !isClosed(e.Lost()) {
		t.Fatalf("before campaign: name %q term %d lost closed %v", e.Name(), e.Term(), isClosed(e.Lost()))
	}
	if l, err := e.Leader(ctx); err != nil || l != nil {
		t.Fatalf("Leader before campaign: %+v, %v", l, err)
	}
	if err := e.Campaign(ctx, "10.0.0.1:80"); err != nil {
		t.Fatal(err)
	}
	term := e.Term()
	if term == 0 {
		t.Fatal("leading with term 0")
	}
	lost := e.Lost()
	if isClosed(lost) {
		t.Fatal("Lost closed while leading")
	}
	l, err := e.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l == nil || l.Session != s.ID() || l.Term != term || l.Value != "10.0.0.1:80" || l.Owner != "alpha" {
		t.Fatalf("Leader %+v, want session %s term %d", l, s.ID(), term)
	}
	// Campaigning again while leading changes nothing.
	if err := e.Campaign(ctx, "other"); err != nil || e.Term() != term {
		t.Fatalf("second Campaign: %v, term %d (was %d)", err, e.Term(), term)
	}
	if err := e.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if e.Term() != 0 || !isClosed(e.Lost()) || isClosed(lost) {
		t.Fatalf("after Resign: term %d, Lost closed %v, old Lost closed %v", e.Term(), isClosed(e.Lost()), isClosed(lost))
	}
	if l, err := e.Leader(ctx); err != nil || l != nil {
		t.Fatalf("Leader after Resign: %+v, %v", l, err)
	}
	if err := e.Resign(ctx); err != nil {
		t.Fatalf("Resign when not leading: %v", err)
	}
	if err := s.NewElection("bad name!").Campaign(ctx, "x"); !errors.Is(err, api.ErrInvalidArgument) {
		t.Fatalf("Campaign with a bad name: %v", err)
	}
}

func TestCampaignWaitsForResign(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	s1 := newSession(t, c, time.Second)
	s2 := newSession(t, c, time.Second)
	e1, e2 := s1.NewElection("e"), s2.NewElection("e")
	if err := e1.Campaign(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	t1 := e1.Term()
	done := make(chan error, 1)
	go func() { done <- e2.Campaign(ctx, "two") }()
	await.True(t, 5*time.Second, "the second session queued", func() bool {
		el, err := c.ElectionInfo(ctx, "e")
		return err == nil && len(el.Candidates) == 1 && el.Candidates[0].Session == s2.ID() && el.Candidates[0].Value == "two"
	})
	select {
	case err := <-done:
		t.Fatalf("second Campaign returned while the first leads: %v", err)
	default:
	}
	if e2.Term() != 0 {
		t.Fatalf("queued election has term %d", e2.Term())
	}
	if err := e1.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if t2 := e2.Term(); t2 <= t1 {
		t.Fatalf("new term %d, want > %d", t2, t1)
	}
	l, err := e1.Leader(ctx)
	if err != nil || l == nil || l.Session != s2.ID() || l.Value != "two" || l.Term != e2.Term() {
		t.Fatalf("Leader %+v, %v", l, err)
	}
	if err := e1.Proclaim(ctx, "x"); !errors.Is(err, api.ErrElectionNotLeader) {
		t.Fatalf("Proclaim by the resigned: %v, want api.ErrElectionNotLeader", err)
	}
}

func TestCampaignTimeoutLeavesQueue(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	s1 := newSession(t, c, time.Second)
	s2 := newSession(t, c, time.Second)
	if err := s1.NewElection("q").Campaign(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	e2 := s2.NewElection("q")
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err := e2.Campaign(wctx, "two")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Campaign: %v, want deadline exceeded", err)
	}
	if e2.Term() != 0 || !isClosed(e2.Lost()) {
		t.Fatalf("after a failed Campaign: term %d", e2.Term())
	}
	el, err := c.ElectionInfo(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	if len(el.Candidates) != 0 || el.Leader == nil || el.Leader.Session != s1.ID() {
		t.Fatalf("election after the timeout: %+v", el)
	}
	// A cancelled wait leaves the queue too.
	cctx, ccancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e2.Campaign(cctx, "two") }()
	await.True(t, 5*time.Second, "queued", func() bool {
		el, err := c.ElectionInfo(ctx, "q")
		return err == nil && len(el.Candidates) == 1
	})
	ccancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Campaign: %v", err)
	}
	if el, err := c.ElectionInfo(ctx, "q"); err != nil || len(el.Candidates) != 0 {
		t.Fatalf("election after the cancel: %+v, %v", el, err)
	}
}

func TestProclaimChangesValue(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	s := newSession(t, c, time.Second)
	e := s.NewElection("p")
	if err := e.Proclaim(ctx, "early"); !errors.Is(err, api.ErrElectionNotLeader) {
		t.Fatalf("Proclaim before Campaign: %v, want api.ErrElectionNotLeader", err)
	}
	if err := e.Campaign(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	term := e.Term()
	if err := e.Proclaim(ctx, "v2"); err != nil {
		t.Fatal(err)
	}
	l, err := e.Leader(ctx)
	if err != nil || l == nil || l.Value != "v2" || l.Term != term {
		t.Fatalf("Leader after Proclaim: %+v, %v", l, err)
	}
	if e.Term() != term || isClosed(e.Lost()) {
		t.Fatalf("Proclaim changed the leadership: term %d", e.Term())
	}
}

func TestElectionLostWhenOperatorClosesSession(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	const ttl = 600 * time.Millisecond
	s, err := c.NewSession(ctx, WithTTL(ttl))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	s2 := newSession(t, c, ttl)
	e := s.NewElection("ops")
	if err := e.Campaign(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	term := e.Term()
	lost := e.Lost()
	e2 := s2.NewElection("ops")
	done := make(chan error, 1)
	go func() { done <- e2.Campaign(ctx, "b") }()
	await.True(t, 5*time.Second, "queued", func() bool {
		el, err := c.ElectionInfo(ctx, "ops")
		return err == nil && len(el.Candidates) == 1
	})
	if err := c.CloseSession(ctx, s.ID()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !closedWithin(lost, 2*ttl) {
		t.Fatal("Lost not closed after the operator closed the session")
	}
	if e.Term() != 0 || e2.Term() <= term {
		t.Fatalf("terms after the loss: old %d, new %d (was %d)", e.Term(), e2.Term(), term)
	}
	if !errors.Is(s.Err(), ErrSessionLost) {
		t.Fatalf("session error %v", s.Err())
	}
	if err := e.Proclaim(ctx, "zombie"); !errors.Is(err, api.ErrElectionNotLeader) {
		t.Fatalf("Proclaim after the loss: %v", err)
	}
	if err := e.Resign(ctx); err != nil {
		t.Fatalf("Resign of a lost leadership: %v", err)
	}
}

func TestElectionLostWhenResignedBySomeoneElse(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	const ttl = 600 * time.Millisecond
	s := newSession(t, c, ttl)
	e := s.NewElection("ext")
	if err := e.Campaign(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	lost := e.Lost()
	// Another handle of the same session and name resigns the term: the
	// keep-alive goroutine's read of the election notices.
	other := s.NewElection("ext")
	other.mu.Lock()
	other.lead = &hold{name: "ext", token: e.Term(), election: true, lost: make(chan struct{})}
	other.mu.Unlock()
	if err := other.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(lost, 2*ttl) {
		t.Fatal("Lost not closed after the leadership ended on the server")
	}
	if e.Term() != 0 || s.Err() != nil {
		t.Fatalf("term %d, session error %v", e.Term(), s.Err())
	}
}
