package lock

import (
	"bytes"
	"testing"
)

func TestMembershipIDsAreNeverReused(t *testing.T) {
	m := New()
	var idx uint64
	apply := func(c *Command) Result {
		idx++
		return m.Apply(idx, 1, c)
	}
	if r := apply(&Command{Op: OpMemberAdd, Member: Member{ID: 4, PeerURL: "http://h4:7071"}, Wait: true}); r.Code != CodeOK {
		t.Fatalf("add 4: %v %s", r.Code, r.Reason)
	}
	if m.MemberSeq() != 4 {
		t.Fatalf("member seq %d, want 4", m.MemberSeq())
	}
	for _, id := range []uint64{3, 4} {
		if r := apply(&Command{Op: OpMemberAdd, Member: Member{ID: id, PeerURL: "http://x:1"}}); r.Code != CodeInvalid {
			t.Fatalf("add %d again: %v, want invalid", id, r.Code)
		}
	}
	apply(&Command{Op: OpPublish, Member: Member{ID: 2, PeerURL: "http://h2:7071", ClientURL: "http://h2:7070"}})
	apply(&Command{Op: OpAlarm, Alarm: Alarm{Member: 2, Kind: AlarmNoSpace}, Wait: true})
	if r := apply(&Command{Op: OpMemberRemove, Member: Member{ID: 2}}); r.Code != CodeOK {
		t.Fatalf("remove 2: %v", r.Code)
	}
	if !m.Removed(2) || m.Removed(4) {
		t.Fatalf("removed: %v", m.RemovedMembers())
	}
	if len(m.Alarms()) != 0 {
		t.Fatalf("the removed member's alarm stays: %v", m.Alarms())
	}
	for _, mb := range m.Members() {
		if mb.ID == 2 {
			t.Fatalf("the removed member's URLs stay: %+v", m.Members())
		}
	}
	// A removed member that still runs cannot publish itself back, and its
	// ID cannot be added again (even though it is below the sequence's
	// next value, check the removal on its own).
	if r := apply(&Command{Op: OpPublish, Member: Member{ID: 2, ClientURL: "http://h2:7070"}}); r.Code != CodeInvalid {
		t.Fatalf("publish of a removed member: %v", r.Code)
	}
	if r := apply(&Command{Op: OpMemberRemove, Member: Member{ID: 2}}); r.Code != CodeInvalid {
		t.Fatalf("second removal: %v", r.Code)
	}
	if r := apply(&Command{Op: OpMemberPromote, Member: Member{ID: 2}}); r.Code != CodeInvalid {
		t.Fatalf("promotion of a removed member: %v", r.Code)
	}
	if r := apply(&Command{Op: OpMemberRemove, Member: Member{ID: 9}}); r.Code != CodeOK || m.MemberSeq() != 9 {
		t.Fatalf("remove 9: %v, seq %d", r.Code, m.MemberSeq())
	}
	if r := apply(&Command{Op: OpMemberAdd, Member: Member{ID: 5, PeerURL: "http://x:1"}}); r.Code != CodeInvalid {
		t.Fatalf("add 5 below the sequence 9: %v", r.Code)
	}

	// The membership survives a snapshot, byte for byte.
	snap := m.Snapshot()
	if snap[0] != snapshotVersionMembership {
		t.Fatalf("snapshot version %d, want %d", snap[0], snapshotVersionMembership)
	}
	var r Machine
	if err := r.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Snapshot(), snap) || r.MemberSeq() != 9 || !r.Removed(2) {
		t.Fatalf("restored: seq %d removed %v", r.MemberSeq(), r.RemovedMembers())
	}
	// A new cluster made from it forgets it all.
	r.ForNewCluster()
	if r.MemberSeq() != 0 || len(r.RemovedMembers()) != 0 || len(r.Members()) != 0 || r.Snapshot()[0] == snapshotVersionMembership {
		t.Fatalf("after ForNewCluster: seq %d removed %v members %v", r.MemberSeq(), r.RemovedMembers(), r.Members())
	}
}

func TestClusterVersionOnlyRises(t *testing.T) {
	m := New()
	if m.ClusterVersion() != BaseCommandVersion {
		t.Fatalf("new machine: cluster version %d", m.ClusterVersion())
	}
	if m.Snapshot()[0] == snapshotVersionMembership {
		t.Fatal("a machine without membership state writes snapshot version 4: older builds could not read it")
	}
	if r := m.Apply(1, 1, &Command{Op: OpClusterVersion, ClusterVersion: MaxCommandVersion + 1}); r.Code != CodeInvalid {
		t.Fatalf("unknown version: %v", r.Code)
	}
	if r := m.Apply(2, 1, &Command{Op: OpClusterVersion, ClusterVersion: 4}); r.Code != CodeOK || m.ClusterVersion() != 4 {
		t.Fatalf("raise to 4: %v, version %d", r.Code, m.ClusterVersion())
	}
	if r := m.Apply(3, 1, &Command{Op: OpClusterVersion, ClusterVersion: 3}); r.Code != CodeInvalid || m.ClusterVersion() != 4 {
		t.Fatalf("lower to 3: %v, version %d", r.Code, m.ClusterVersion())
	}
	for _, c := range []*Command{
		{Op: OpAcquire, Session: 1, Name: "x"},
		{Op: OpAcquire, Session: 1, Name: "x", Principal: "alice"},
		{Op: OpMemberAdd, Member: Member{ID: 4, PeerURL: "http://h:1"}},
		{Op: OpClusterVersion, ClusterVersion: 4},
	} {
		if got := CommandVersion(c); got != int(Encode(c)[0]) {
			t.Errorf("%+v: CommandVersion %d, Encode writes %d", c, got, Encode(c)[0])
		}
	}
}

func TestRestoreRefusesARemovedMemberThatIsAMember(t *testing.T) {
	m := New()
	m.Apply(1, 1, &Command{Op: OpMemberAdd, Member: Member{ID: 4, PeerURL: "http://h:1"}})
	m.Apply(2, 1, &Command{Op: OpMemberRemove, Member: Member{ID: 3}})
	good := m.Snapshot()
	m.removed = []uint64{3, 4} // 4 is still a member
	if err := New().Restore(m.Snapshot()); err == nil {
		t.Fatal("restore of a state whose removed member is a member succeeded")
	}
	if err := New().Restore(good); err != nil {
		t.Fatal(err)
	}
}
