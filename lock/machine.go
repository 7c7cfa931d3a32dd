package lock

// STUB: the signatures below are the contract raftnode and httpapi build on.
// The lock helper replaces this file with the implementation.

// Machine is the deterministic state machine. It is not safe for concurrent
// use: raftnode's single loop goroutine owns it.
type Machine struct{}

// New returns an empty machine.
func New() *Machine { return &Machine{} }

// Apply applies the command of the entry at index and term. cmd is nil for an
// entry without a command (raft's empty entry at the start of a term, a
// configuration change): then only the applied index advances.
func (m *Machine) Apply(index, term uint64, cmd *Command) Result { panic("unimplemented") }

// AppliedIndex is the index of the last entry applied (or restored).
func (m *Machine) AppliedIndex() uint64 { panic("unimplemented") }

// Clock is the machine's clock: the maximum Now seen, Unix ns.
func (m *Machine) Clock() int64 { panic("unimplemented") }

// NextDeadline is the earliest session deadline, and false when there are no sessions.
func (m *Machine) NextDeadline() (int64, bool) { panic("unimplemented") }

// Session returns a copy of session id.
func (m *Machine) Session(id uint64) (SessionInfo, bool) { panic("unimplemented") }

// Lock returns a copy of lock name; false when it is free with no waiters.
func (m *Machine) Lock(name string) (LockInfo, bool) { panic("unimplemented") }

// Locks returns copies of the locks whose name starts with prefix, sorted by name.
func (m *Machine) Locks(prefix string) []LockInfo { panic("unimplemented") }

// Members returns the published members sorted by ID.
func (m *Machine) Members() []Member { panic("unimplemented") }

// Snapshot serialises the whole state; equal states give equal bytes.
func (m *Machine) Snapshot() []byte { panic("unimplemented") }

// Restore replaces the state with a snapshot's.
func (m *Machine) Restore(b []byte) error { panic("unimplemented") }

// Encode encodes a command with the current format version.
func Encode(c *Command) []byte { panic("unimplemented") }

// Decode decodes a command; ErrUnknownVersion or ErrCorrupt on bad bytes.
func Decode(b []byte) (*Command, error) { panic("unimplemented") }
