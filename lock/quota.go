package lock

import "fmt"

// Limits are the cluster's quotas: replicated settings, so that every node
// refuses alike. A zero field takes its default (DefaultLimits). Commands
// that would exceed one answer CodeQuotaExceeded (CodeNoSpace for
// MaxStateBytes) and change nothing.
type Limits struct {
	// SessionsPerPrincipal bounds the sessions one principal has open
	// (ephemeral ones included), once auth is on. Without auth every
	// client is the same anonymous principal (or a certificate's name,
	// which proves nothing then), and this limit must not cap the cluster.
	SessionsPerPrincipal uint64
	// LocksPerSession bounds the locks one session holds or waits for.
	LocksPerSession uint64
	// WaitersPerLock bounds the queue of one lock.
	WaitersPerLock uint64
	// ElectionsPerSession bounds the elections one session leads or is a
	// candidate in.
	ElectionsPerSession uint64
	// MaxStateBytes bounds the state's estimated size (StateBytes): past
	// it, commands that would add a session, a lock, an election, a waiter
	// or a candidate are refused until it shrinks.
	MaxStateBytes uint64
}

// DefaultLimits are the quotas of a cluster that never set its own: more
// than any raftlock-bench workload uses.
func DefaultLimits() Limits {
	return Limits{
		SessionsPerPrincipal: 100_000,
		LocksPerSession:      10_000,
		WaitersPerLock:       10_000,
		ElectionsPerSession:  1_000,
		MaxStateBytes:        2 << 30,
	}
}

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.SessionsPerPrincipal == 0 {
		l.SessionsPerPrincipal = d.SessionsPerPrincipal
	}
	if l.LocksPerSession == 0 {
		l.LocksPerSession = d.LocksPerSession
	}
	if l.WaitersPerLock == 0 {
		l.WaitersPerLock = d.WaitersPerLock
	}
	if l.ElectionsPerSession == 0 {
		l.ElectionsPerSession = d.ElectionsPerSession
	}
	if l.MaxStateBytes == 0 {
		l.MaxStateBytes = d.MaxStateBytes
	}
	return l
}

// Estimated bytes of one record of the state, for StateBytes: a bound of
// what a record costs in memory and in a snapshot with names of common
// length, not an exact figure.
const (
	sessionBytes  = 256
	lockBytes     = 256
	electionBytes = 512
)

// StateBytes is the state's estimated size: 256 bytes per session and per
// lock, 512 per election. Waiters and candidates are bounded through the
// sessions (LocksPerSession, ElectionsPerSession).
func (m *Machine) StateBytes() uint64 {
	return uint64(len(m.sessions))*sessionBytes + uint64(m.locks.Len())*lockBytes + uint64(m.elections.Len())*electionBytes
}

// Limits returns the cluster's quotas, defaults filled in.
func (m *Machine) Limits() Limits { return m.limits.withDefaults() }

// LimitsSet reports whether the cluster set its quotas (OpSetLimits or
// OpInitLimits); until then it runs with DefaultLimits.
func (m *Machine) LimitsSet() bool { return m.limitsSet }

// noSpace reports whether growth by extra bytes would pass MaxStateBytes,
// or a member raised the nospace alarm.
func (a *applier) noSpace(extra uint64) bool {
	if al, raised := a.m.noSpaceAlarm(); raised {
		a.res = Result{Code: CodeNoSpace, Reason: fmt.Sprintf("member %d raised the nospace alarm (its disk is nearly full); nothing changed", al.Member)}
		return true
	}
	if a.m.StateBytes()+extra <= a.m.Limits().MaxStateBytes {
		return false
	}
	a.res = Result{Code: CodeNoSpace, Reason: fmt.Sprintf("the state's estimated size %d bytes would pass the cluster's quota of %d bytes (max_state_bytes); nothing changed", a.m.StateBytes(), a.m.Limits().MaxStateBytes)}
	return true
}

// quota refuses with CodeQuotaExceeded when have has reached limit.
func (a *applier) quota(have int, limit uint64, what string) bool {
	if uint64(have) < limit {
		return false
	}
	a.res = Result{Code: CodeQuotaExceeded, Reason: fmt.Sprintf("%s: the limit is %d; nothing changed", what, limit)}
	return true
}

// sessionQuota refuses a new session of principal beyond
// SessionsPerPrincipal, or beyond the state's size.
func (a *applier) sessionQuota(principal string) bool {
	if a.noSpace(sessionBytes) {
		return true
	}
	return principal != "" && a.m.Auth().Enabled() && a.quota(a.m.byPrincipal[principal], a.m.Limits().SessionsPerPrincipal,
		fmt.Sprintf("principal %q has too many sessions (sessions_per_principal)", principal))
}

// setLimits applies OpSetLimits (always) and OpInitLimits (only while the
// cluster never set its limits: the flags of a new cluster).
func (a *applier) setLimits(c *Command) {
	a.res.Code = CodeOK
	if c.Op == OpInitLimits && a.m.limitsSet {
		a.res.Reason = "the cluster's limits are set already; the initial limits are ignored"
		return
	}
	a.m.limits, a.m.limitsSet = c.Limits, true
}
