package lock

// Known bugs ("mutants") that the simulation tests inject to prove that
// their checks can fail. Only a build with the tag raftlock_mutants can
// switch one on (SetMutant, in mutants_on.go); in every other build
// mutated is a constant false, so the branches that test it are compiled
// away, and the machine depends on nothing but its inputs.
type mutant uint8

const (
	// noLeaseRecheckAfterWait (expire): sessions that expire in the same
	// entry do not leave their queues before their locks are released, so
	// a lock freed by one dying session is granted to a waiter whose
	// deadline has passed too (and which dies in the same entry): a grant
	// to a dead session, and its token handed out twice.
	noLeaseRecheckAfterWait mutant = iota + 1
	// releaseWithStaleToken (release): a release by the holder's session
	// succeeds whatever token it presents.
	releaseWithStaleToken
	// noTermExtension (extendAll): the first command of a new leader's
	// term does not push session deadlines to clock + TTL.
	noTermExtension
)
