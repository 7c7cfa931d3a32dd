package raftnode

import "time"

// leaderClock is the clock a leader stamps into its commands (Command.Now,
// Unix ns). It is anchored once, when this node becomes leader, at the
// later of the state machine's clock and the wall clock, and from then on
// advances with the monotonic clock only. A step of the machine's wall
// clock while it leads (an NTP correction, a VM resumed from a pause)
// therefore never moves the stamps: a forward step cannot expire every
// session at once, and a backward one cannot stall expiry. A wall clock
// that is wrong when the node becomes leader does no harm either: the
// state machine's clock never runs backwards, and the first command of
// the new term pushes every deadline to at least its clock + TTL.
type leaderClock struct {
	anchor int64         // Unix ns at monoAt
	monoAt time.Duration // Config.Monotonic when anchored
	set    bool
}

// start anchors the clock at max(state, wall) at the monotonic instant
// mono. The loop calls it when the node becomes leader.
func (c *leaderClock) start(state int64, wall time.Time, mono time.Duration) {
	c.anchor = max(state, wall.UnixNano())
	c.monoAt = mono
	c.set = true
}

// at returns the stamp for the monotonic instant mono (never before the
// anchor).
func (c *leaderClock) at(mono time.Duration) int64 {
	return c.anchor + int64(max(mono-c.monoAt, 0))
}

// now is the leader's clock for the command being proposed. A node that
// has never led (it proposes no clocked command) answers its wall clock.
func (n *Node) now() int64 {
	if !n.clock.set || mutated(leaderStampsWallClock) {
		return n.cfg.Now().UnixNano()
	}
	return n.clock.at(n.cfg.Monotonic())
}
