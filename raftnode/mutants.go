package raftnode

import (
	"math"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/wal"
)

// Known bugs ("mutants") that the simulation tests inject to prove that
// their checks can fail. Only a build with the tag raftlock_mutants can
// switch one on (SetMutant, in mutants_on.go); in every other build
// mutated is a constant false, so the branches below and the functions
// they call are compiled away: the server binary holds none of it
// (TestServerBinaryHasNoTestMachinery in cmd/raftlockd checks).
type mutant uint8

const (
	// answerBeforeCommit (processReady): the leader answers a proposal as
	// soon as its entry is appended to its own log, with the result the
	// entry would have if everything appended committed, before it is
	// committed or applied.
	answerBeforeCommit mutant = iota + 1
	// followerReadWithoutReadIndex (handleRead): a linearizable read is
	// served from the node's local state at once, without a ReadIndex
	// round.
	followerReadWithoutReadIndex
	// tokenReusedAfterRestart (newNode): a restarted node replays only the
	// entries its saved hard state knows committed and forgets the rest of
	// its log, although it acknowledged those entries to the leader.
	// Entries counted committed can vanish, and their indexes (fencing
	// tokens, session IDs) are used again.
	tokenReusedAfterRestart
	// leaderStampsWallClock (now): the leader stamps its wall clock into
	// commands, so a step of that clock while it leads moves the state's
	// clock: a forward step expires every session at once.
	leaderStampsWallClock
)

// mutantForgetUncommitted is the tokenReusedAfterRestart mutant: it drops
// the replayed entries after the saved commit index.
func mutantForgetUncommitted(st *wal.State) []*raftpb.Entry {
	ents := st.Entries
	for len(ents) > 0 && ents[len(ents)-1].GetIndex() > st.HardState.GetCommit() {
		ents = ents[:len(ents)-1]
	}
	return ents
}

// mutantAnswerAppended is the answerBeforeCommit mutant: it answers the
// waiters of entries as soon as they are appended, with the results they
// would have if every appended entry committed.
func (n *Node) mutantAnswerAppended(appended []*raftpb.Entry) {
	if len(appended) == 0 {
		return
	}
	last := appended[len(appended)-1].GetIndex()
	ents, err := n.storage.Entries(n.applied+1, last+1, math.MaxUint64)
	spec := lock.New()
	if err != nil || spec.Restore(n.machine.Snapshot()) != nil {
		return
	}
	for _, e := range ents {
		var from, req uint64
		var cmd *lock.Command
		if e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0 {
			if from, req, cmd, err = decodeEnvelope(e.GetData()); err != nil {
				return
			}
		}
		res := spec.Apply(e.GetIndex(), e.GetTerm(), cmd)
		if w, ok := n.waiters[req]; ok && from == n.id {
			delete(n.waiters, req)
			w.answer(res, e.GetIndex())
		}
	}
}
