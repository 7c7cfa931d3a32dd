package raftnode

import "github.com/raftlock/raftlock/lock"

// DefaultMinFreeDiskBytes is the free space of the data dir's file system
// below which a member raises the nospace alarm (Config.MinFreeDiskBytes).
const DefaultMinFreeDiskBytes = 128 << 20

// maybeCheckDisk checks the data dir's free space once per election
// timeout and keeps this member's nospace alarm in the replicated state in
// step with it: raised below Config.MinFreeDiskBytes, cleared once twice
// that is free again (so a member near the line does not flap). While any
// member's alarm is raised, the state machine refuses every command that
// would grow the state (lock.CodeNoSpace), on every node: a member that
// cannot write its WAL would otherwise stop, and the cluster lose a vote.
// Like OpPublish the proposal carries no clock, so a follower may make it.
func (n *Node) maybeCheckDisk() {
	if n.cfg.DiskFree == nil || n.lead == 0 || n.ticks-n.diskAt < uint64(n.cfg.ElectionTicks) {
		return
	}
	n.diskAt = n.ticks
	free, err := n.cfg.DiskFree(n.cfg.DataDir)
	if err != nil {
		n.log.Debug("check free disk space", "dir", n.cfg.DataDir, "err", err)
		return
	}
	alarm := lock.Alarm{Member: n.id, Kind: lock.AlarmNoSpace}
	raised := false
	for _, a := range n.machine.Alarms() {
		raised = raised || a == alarm
	}
	min := n.cfg.MinFreeDiskBytes
	var raise bool
	switch {
	case free < min && !raised:
		raise = true
		n.log.Warn("raising the nospace alarm: the data dir's disk is nearly full; the cluster refuses what would grow its state until it is cleared",
			"dir", n.cfg.DataDir, "free_bytes", free, "min_free_bytes", min)
	case free >= 2*min && raised:
		n.log.Info("clearing the nospace alarm", "dir", n.cfg.DataDir, "free_bytes", free)
	default:
		return
	}
	n.reqSeq++
	data := encodeEnvelope(n.id, n.reqSeq, &lock.Command{Op: lock.OpAlarm, Alarm: alarm, Wait: raise})
	if err := n.rn.Propose(data); err != nil {
		n.log.Debug("propose the nospace alarm", "err", err)
	}
}
