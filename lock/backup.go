package lock

// Accessors for backups (raftnode's restore and httpapi's GET
// /v1/snapshot): the term a restored state must start its new log after.

// Term is the raft term of the last clocked command (Command.Now != 0)
// applied, 0 before the first. The first clocked command of a later term
// extends every session's deadline to at least clock+TTL (see Apply), so a
// log restored from a snapshot of this state must continue in a later term
// for the rule to give every restored session its lease again.
func (m *Machine) Term() uint64 { return m.term }

// Term is the captured state's Machine.Term.
func (c *SnapshotCapture) Term() uint64 { return c.term }

// SkipTo moves the applied index of a state restored for a new cluster
// forward to index (raftlockd --restore-bump-index): the new log starts
// after it, so every token and term the new cluster grants is above index.
// It changes nothing else; an index not above the applied one is ignored.
func (m *Machine) SkipTo(index uint64) {
	if index > m.applied {
		m.applied = index
	}
}
