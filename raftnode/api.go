package raftnode

import (
	"context"
	"errors"
	"fmt"

	"github.com/raftlock/raftlock/lock"
)

// Errors returned by Node's methods. Callers test them with errors.Is.
var (
	// ErrStopped: the node has stopped (shut down, or its storage failed).
	ErrStopped = errors.New("raftnode: stopped")
	// ErrNoLeader: the cluster has no leader that this node knows of (no
	// quorum, or an election is under way). Nothing was proposed.
	ErrNoLeader = errors.New("raftnode: no leader")
	// ErrNotLeader: this node is a follower; the write must go to the
	// leader. The error is a *NotLeaderError that names it. Nothing was
	// proposed.
	ErrNotLeader = errors.New("raftnode: not leader")
	// ErrOutcomeUnknown: the command was proposed but ctx ended (or the
	// leader changed) before it was seen applied. It may or may not have
	// been applied; retrying the same command is safe because commands
	// are idempotent.
	ErrOutcomeUnknown = errors.New("raftnode: outcome unknown")
)

// NotLeaderError is returned when a follower is asked to write. It matches
// ErrNotLeader with errors.Is.
type NotLeaderError struct {
	LeaderID        uint64 // 0 when unknown
	LeaderClientURL string // "" when the leader has not published its URL
}

func (e *NotLeaderError) Error() string {
	return fmt.Sprintf("raftnode: not leader (leader %d at %q)", e.LeaderID, e.LeaderClientURL)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// MemberStatus is one member of the cluster as this node knows it.
type MemberStatus struct {
	ID        uint64
	PeerURL   string
	ClientURL string // "" until the member has published it
	// Learner: the member receives the log but does not vote.
	Learner bool
	// Progress is the leader's view of the member's log (nil unless this
	// node leads; refreshed every tick).
	Progress *MemberProgress
}

// MemberProgress is how far a member's log is known to match the leader's.
type MemberProgress struct {
	Match  uint64 // the highest index known to match the leader's log
	Behind uint64 // the leader's last index minus Match
	// Reachable: the leader heard from it within the last election
	// timeout (raft's RecentActive; the leader itself always is).
	Reachable bool
	Learner   bool
}

// Status is a point-in-time view of the node, safe to read from any
// goroutine (it is a copy).
type Status struct {
	ID              uint64
	Leader          uint64 // 0 when unknown
	LeaderClientURL string // "" when unknown
	IsLeader        bool
	Term            uint64
	Commit          uint64
	Applied         uint64
	// SnapshotIndex is the index of the newest snapshot this node saved or
	// received. A snapshot of its own counts once its WAL record is
	// written, a moment after the snap file, which is written off the
	// loop.
	SnapshotIndex uint64
	// Ready is true while the node knows a leader and the leader's client
	// URL, and has applied every entry it knows to be committed.
	Ready   bool
	Members []MemberStatus // sorted by ID
	// ReadIndexRounds counts the ReadIndex requests this node has sent
	// since it started: one serves every linearizable read queued when it
	// is sent. ReadIndexRetries counts those sent again because the
	// previous one went unanswered (lost, or the leader changed).
	ReadIndexRounds, ReadIndexRetries uint64
	// DroppedPeerMessages counts the inbound raft messages this node has
	// dropped since it started because their From is not a member other
	// than this node or their To is not this node (see Node.Process).
	DroppedPeerMessages uint64
	// Alarms are the alarms raised in the cluster (replicated: every node
	// reports them), e.g. a member whose disk is nearly full.
	Alarms []lock.Alarm
	// ClusterID is the cluster's ID, fixed when it was created.
	ClusterID uint64
	// ClusterVersion is the newest command format every member reads
	// (lock.Machine.ClusterVersion).
	ClusterVersion int
}

// Proposer is what the HTTP layer needs from a node. *Node implements it.
type Proposer interface {
	// Propose replicates cmd through the log and returns its result once
	// the entry is applied on this node, with the entry's index. The node
	// stamps cmd.Now with its clock; cmd is not retained. Keep-alives
	// (OpKeepAlive) of concurrent callers are merged into one entry; the
	// result's Missing then lists only the caller's missing sessions.
	// Errors: ErrNotLeader (a *NotLeaderError), ErrNoLeader, ErrStopped,
	// ErrOutcomeUnknown, or ctx's error when ctx ended before the command
	// was proposed (then it was not proposed).
	Propose(ctx context.Context, cmd *lock.Command) (lock.Result, uint64, error)
	// Read runs fn on the node's loop goroutine with the state machine,
	// after a ReadIndex round when stale is false (linearizable), or at
	// once on the local state when stale is true. fn must not retain m or
	// anything it returns by reference, must not block, and should cost
	// no more than what it returns (the loop waits for it): use the
	// machine's bounded queries. Concurrent linearizable reads share
	// ReadIndex rounds; a round that goes unanswered is sent again. When
	// ctx ends, Read returns at once and the loop drops the read at its
	// next tick (fn may still run if the loop is serving it that moment,
	// so fn must not touch what the caller uses after an error). Errors: ErrNoLeader (no leader known when the read
	// arrived), ErrStopped, ctx's error.
	Read(ctx context.Context, stale bool, fn func(m *lock.Machine)) error
	// Await returns a channel that is closed at the first change of p
	// after the call: an applied entry with an event of p's queue and
	// session (a grant, a release, a queueing, a cancel; for elections an
	// election, a resignation, a withdrawal), the end of p's session, a
	// snapshot from the leader that replaced the state, or the node's
	// stop. It wakes no other waiter. Call it before reading the state,
	// then read, then wait: a change between the two is not missed. cancel
	// releases the registration (and closes the channel); call it when
	// done. Once woken is closed, news returns p's state as of the
	// applied entry that woke it (read on the loop as it applied the
	// entry: a stale read, no later than the node's state when it
	// returns), or false when something else woke it (a snapshot, the
	// stop, cancel): then read the state again to learn what changed.
	// Before woken is closed it returns false.
	Await(p lock.Place) (woken <-chan struct{}, news func() (lock.PlaceState, bool), cancel func())
	// Events of one entry are followed by an end-of-entry marker: an
	// Event with Type 0 and that entry's Revision. Consumers that look for
	// particular event types skip it; streams use it to group an entry's
	// events.
	//
	// Subscribe delivers every event applied from now on, in order, until
	// cancel is called. A subscriber that falls more than buf events
	// behind is dropped: its channel is closed.
	Subscribe(buf int) (events <-chan lock.Event, cancel func())
	// Watch delivers, in order and without gaps, every event with a
	// revision greater than after (the ones this node applied already,
	// then new ones), until cancel is called or the subscriber falls more
	// than buf events behind (its channel is closed). It returns a
	// *CompactedError (ErrCompacted) when this node no longer holds all
	// those events.
	Watch(after uint64, buf int) (events <-chan lock.Event, cancel func(), err error)
	// ReadWatch runs fn like Read and, at exactly the state fn saw, starts
	// delivering every later event, as Subscribe does. Errors as Read.
	ReadWatch(ctx context.Context, stale bool, fn func(m *lock.Machine), buf int) (events <-chan lock.Event, cancel func(), err error)
	// Status returns the node's current status.
	Status() Status
	// Auth returns the access-control state this node has applied: an
	// immutable view, safe on any goroutine, that may lag the leader's by
	// the entries this node has not applied yet. The leader's state
	// machine checks every command again when it is applied.
	Auth() *lock.AuthView
	// TransferLeadership asks the leader to hand leadership to member to
	// (0: the most caught-up voter); see Node.TransferLeadership.
	TransferLeadership(ctx context.Context, to uint64) error
	// ChangeMembership changes the membership through the log (leader
	// only); see Node.ChangeMembership.
	ChangeMembership(ctx context.Context, ch MemberChange) (uint64, error)
}
