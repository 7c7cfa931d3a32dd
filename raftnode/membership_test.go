package raftnode

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/raftlock/raftlock/lock"
)

// change asks tn for a membership change, ticking the cluster until it
// answers.
func (c *testCluster) change(tn *testNode, ch MemberChange) (uint64, error) {
	c.t.Helper()
	type out struct {
		id  uint64
		err error
	}
	res := make(chan out, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		id, err := tn.n.ChangeMembership(ctx, ch)
		res <- out{id, err}
	}()
	var o out
	c.tickUntil("membership change answered", 2000, func() bool {
		select {
		case o = <-res:
			return true
		default:
			return false
		}
	})
	return o.id, o.err
}

// join starts member id as a joiner of the running cluster.
func (c *testCluster) join(id uint64, clusterID uint64) *testNode {
	c.t.Helper()
	c.peers[id] = fmt.Sprintf("mem://%d", id)
	c.dirs[id] = c.t.TempDir()
	prev := c.mutateC
	c.mutateC = func(cfg *Config) {
		if prev != nil {
			prev(cfg)
		}
		if cfg.ID == id {
			cfg.Join, cfg.ClusterID = true, clusterID
		}
	}
	return c.start(id)
}

func refusedWith(t *testing.T, err error, code string) {
	t.Helper()
	var mce *MemberChangeError
	if !errors.As(err, &mce) || mce.Code != code {
		t.Fatalf("got %v, want a refusal %q", err, code)
	}
}

func voters(tn *testNode) (v, l []uint64) {
	for _, m := range tn.n.Status().Members {
		if m.Learner {
			l = append(l, m.ID)
		} else {
			v = append(v, m.ID)
		}
	}
	return v, l
}

func TestMembershipGrowPromoteRemoveNeverReusesIDs(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	lead := c.leader()
	c.tickUntil("a single member raises the cluster version", 100, func() bool {
		return lead.n.Status().ClusterVersion == lock.MaxCommandVersion
	})
	res, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Minute)})
	c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: res.Session, Name: "jobs/a"})

	id, err := c.change(lead, MemberChange{Kind: MemberAddLearner, PeerURL: "mem://2"})
	if err != nil || id != 2 {
		t.Fatalf("add learner: id %d, %v", id, err)
	}
	if _, l := voters(lead); !slices.Equal(l, []uint64{2}) {
		t.Fatalf("learners %v", l)
	}
	// Not started: it cannot be promoted.
	_, err = c.change(lead, MemberChange{Kind: MemberPromote, ID: 2})
	refusedWith(t, err, "learner_not_ready")
	_, err = c.change(lead, MemberChange{Kind: MemberAddLearner, PeerURL: "mem://2"})
	refusedWith(t, err, "peer_url_in_use")

	two := c.join(2, lead.n.ClusterID())
	c.tickUntil("the learner catches up", 500, func() bool {
		for _, m := range lead.n.Status().Members {
			if m.ID == 2 && m.Progress != nil && m.Progress.Reachable && m.Progress.Behind == 0 {
				return true
			}
		}
		return false
	})
	if _, err := c.change(lead, MemberChange{Kind: MemberPromote, ID: 2}); err != nil {
		t.Fatalf("promote: %v", err)
	}
	if id, err = c.change(lead, MemberChange{Kind: MemberAdd, PeerURL: "mem://3"}); err != nil || id != 3 {
		t.Fatalf("add voter: id %d, %v", id, err)
	}
	c.join(3, lead.n.ClusterID())
	c.converged()
	if v, _ := voters(two); !slices.Equal(v, []uint64{1, 2, 3}) {
		t.Fatalf("member 2 sees voters %v", v)
	}
	// The joiner has the lock the cluster granted before it existed.
	b, _ := snapshotOf(t, two)
	var m lock.Machine
	if err := m.Restore(b); err != nil {
		t.Fatal(err)
	}
	if li, ok := m.Lock("jobs/a"); !ok || li.Holder == nil || li.Holder.Session != res.Session {
		t.Fatalf("joined member's state: %+v", li)
	}

	_, err = c.change(lead, MemberChange{Kind: MemberRemove, ID: lead.n.ID()})
	refusedWith(t, err, "remove_leader")
	_, err = c.change(lead, MemberChange{Kind: MemberRemove, ID: 9})
	refusedWith(t, err, "member_not_found")

	var victim uint64 = 2
	if lead.n.ID() == 2 {
		victim = 3
	}
	if _, err := c.change(lead, MemberChange{Kind: MemberRemove, ID: victim}); err != nil {
		t.Fatalf("remove %d: %v", victim, err)
	}
	gone := c.nodes[victim]
	select {
	case err := <-gone.errC:
		if !errors.Is(err, ErrRemoved) {
			t.Fatalf("removed member stopped with %v, want ErrRemoved", err)
		}
		gone.errC <- nil // for the cleanup's stop
	case <-time.After(quietTimeout):
		t.Fatal("the removed member did not stop itself")
	}
	if lead.n.IsMember(victim) || !lead.n.IsIDRemoved(victim) {
		t.Fatalf("member %d: IsMember %v, IsIDRemoved %v", victim, lead.n.IsMember(victim), lead.n.IsIDRemoved(victim))
	}
	// IDs are never reused: the next member is 4.
	if id, err = c.change(lead, MemberChange{Kind: MemberAddLearner, PeerURL: "mem://4"}); err != nil || id != 4 {
		t.Fatalf("add after a removal: id %d, %v", id, err)
	}
}

func TestMembershipSafetyRules(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	// Until every member reports that it reads membership entries, none
	// is proposed.
	_, err := c.change(lead, MemberChange{Kind: MemberAddLearner, PeerURL: "mem://9"})
	if !errors.Is(err, ErrClusterVersion) {
		t.Fatalf("before the members report their versions: %v", err)
	}
	for _, tn := range c.nodes {
		for id := range c.nodes {
			tn.n.ReportVersion(id, lock.MaxCommandVersion)
		}
	}
	c.tickUntil("the cluster version rises", 200, func() bool {
		return lead.n.Status().ClusterVersion == lock.MaxCommandVersion
	})

	// One change in flight: with the followers cut off, the first change
	// cannot commit, and a second is refused.
	var others []uint64
	for id := range c.nodes {
		if id != lead.n.ID() {
			others = append(others, id)
		}
	}
	for _, id := range others {
		c.nw.Cut(lead.n.ID(), id)
	}
	ownMatch := func() uint64 {
		for _, m := range lead.n.Status().Members {
			if m.ID == lead.n.ID() && m.Progress != nil {
				return m.Progress.Match
			}
		}
		return 0
	}
	c.ticks(1)
	before := ownMatch()
	first := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := lead.n.ChangeMembership(ctx, MemberChange{Kind: MemberAddLearner, PeerURL: "mem://4"})
		first <- err
	}()
	c.tickUntil("the first change is in the leader's log", 5, func() bool { return ownMatch() > before })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err = lead.n.ChangeMembership(ctx, MemberChange{Kind: MemberAddLearner, PeerURL: "mem://5"})
	cancel()
	refusedWith(t, err, "conf_change_in_progress")
	c.nw.Heal()
	c.tickUntil("the first change is applied", 500, func() bool {
		select {
		case err := <-first:
			if err != nil {
				t.Fatalf("first change: %v", err)
			}
			return true
		default:
			return false
		}
	})

	// Strict reconfiguration: with a voter down, removing another live
	// voter or adding a voter is refused; removing the dead one is not.
	dead := others[0]
	live := others[1]
	// (Once it has the addition of learner 4: otherwise removing 4 would
	// be refused as member_behind too, because of the dead voter.)
	c.tickUntil("every voter has the first change", 200, func() bool {
		for _, m := range lead.n.Status().Members {
			if !m.Learner && m.Progress != nil && m.Progress.Behind != 0 {
				return false
			}
		}
		return true
	})
	c.stop(dead)
	c.tickUntil("the leader notices the dead voter", 200, func() bool {
		for _, m := range lead.n.Status().Members {
			if m.ID == dead && m.Progress != nil && !m.Progress.Reachable {
				return true
			}
		}
		return false
	})
	_, err = c.change(lead, MemberChange{Kind: MemberRemove, ID: live})
	refusedWith(t, err, "unsafe_reconfiguration")
	_, err = c.change(lead, MemberChange{Kind: MemberAdd, PeerURL: "mem://6"})
	refusedWith(t, err, "unsafe_reconfiguration")
	// The learner added above never started: promoting it is refused.
	_, err = c.change(lead, MemberChange{Kind: MemberPromote, ID: 4})
	refusedWith(t, err, "learner_not_ready")
	_, err = c.change(lead, MemberChange{Kind: MemberPromote, ID: live})
	refusedWith(t, err, "not_learner")
	// Nor may a member go while another lacks the latest membership change
	// (member_behind): the learner that never started has none of the log.
	_, err = c.change(lead, MemberChange{Kind: MemberRemove, ID: dead})
	refusedWith(t, err, "member_behind")
	// Removing it first is allowed.
	if _, err := c.change(lead, MemberChange{Kind: MemberRemove, ID: 4}); err != nil {
		t.Fatalf("remove the learner that never started: %v", err)
	}
	if _, err := c.change(lead, MemberChange{Kind: MemberRemove, ID: dead}); err != nil {
		t.Fatalf("remove the dead voter: %v", err)
	}
	if v, _ := voters(lead); len(v) != 2 {
		t.Fatalf("voters %v", v)
	}
	// A follower does not change the membership: it names the leader.
	if _, err := c.nodes[live].n.ChangeMembership(context.Background(), MemberChange{Kind: MemberRemove, ID: 4}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("follower: %v", err)
	}
}
