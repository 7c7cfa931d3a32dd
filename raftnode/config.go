package raftnode

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/raftlock/raftlock/lock"
)

// Config configures a Node. Build it with DefaultConfig and override fields.
type Config struct {
	// ID is this member's ID: non-zero, unique in the cluster, never reused.
	// On a restart it must match the ID stored in the data dir (or be 0 to
	// take that one).
	ID uint64
	// DataDir holds the WAL and snapshots. Required.
	DataDir string
	// Peers is the initial cluster, member ID → peer URL, this member
	// included. It is used only when DataDir holds no WAL yet; after that the
	// membership stored in DataDir wins and Peers is ignored.
	Peers map[uint64]string
	// Join makes a new member of a running cluster (etcd's
	// --initial-cluster-state existing): its empty log is not bootstrapped
	// from Peers; it waits for the leader's log or snapshot. Peers must
	// list every member, this one included, and ClusterID must be the
	// cluster's (FetchClusterInfo). Used only when DataDir holds no WAL.
	Join bool
	// ClusterID is the ID of the cluster to join (Join), or of a restored
	// cluster; 0 for a new cluster: ClusterIDFor(ClusterToken, Peers).
	// Used only when DataDir holds no WAL.
	ClusterID uint64
	// ClusterToken tells a new cluster from another with the same members
	// (etcd's --initial-cluster-token): it goes into the cluster ID. Used
	// only when DataDir holds no WAL.
	ClusterToken string
	// ClientURL is the URL clients reach this member's API at. It is
	// published through the log so that followers can name the leader.
	ClientURL string
	// AuthBootstrapHash, when set (lock.TokenHashLen bytes: the SHA-256 of
	// the bootstrap token), makes the node propose lock.OpAuthBootstrap
	// until the state has users: root, role admin, that token, auth on. It
	// carries no clock, so any member may propose it. Ignored once the
	// state has users or auth on.
	AuthBootstrapHash string
	// InitialLimits, when set, makes the node propose lock.OpInitLimits
	// with them until the state's limits are set: the quotas of a new
	// cluster, from its flags. Ignored once the cluster set its limits.
	InitialLimits *lock.Limits
	// MinFreeDiskBytes is the free space of the data dir's file system
	// below which this member raises the nospace alarm (see
	// Node.maybeCheckDisk). Default DefaultMinFreeDiskBytes.
	MinFreeDiskBytes uint64
	// DiskFree returns the free bytes of the file system of a directory.
	// Default: statfs (Unix; elsewhere no alarm is raised). Tests replace
	// it.
	DiskFree func(dir string) (uint64, error)
	// TickInterval is the duration of one raft tick. Default 100ms.
	TickInterval time.Duration
	// ElectionTicks is the election timeout in ticks. Default 10.
	ElectionTicks int
	// HeartbeatTicks is the heartbeat interval in ticks. Default 1.
	HeartbeatTicks int
	// SnapshotEvery is the least number of applied entries between two
	// snapshots of this node's own state: a small state snapshots every
	// SnapshotEvery entries. Default 10000.
	SnapshotEvery uint64
	// SnapshotLogRatio makes a large state wait longer: a snapshot is
	// taken only once the entries applied since the last one (the bytes of
	// their data) reach SnapshotLogRatio × the size of the last snapshot,
	// besides SnapshotEvery entries. The snapshots of a growing state then
	// grow geometrically and their total work is linear in the state's
	// size, not quadratic; the log since the last snapshot (what a restart
	// replays, what the MemoryStorage and the WAL hold) stays within this
	// fraction of the last snapshot, or SnapshotEvery entries if more.
	// Lower snapshots more often, with a shorter log; higher, less often.
	// Each member of a cluster scales it by 1 + rank/members (rank: its
	// place among the members' IDs, the leader last) so that the members'
	// snapshots of the same state fall at different indexes and the leader
	// snapshots least often (see snapshotRatio).
	// 0 snapshots every SnapshotEvery entries whatever the size. Default
	// DefaultSnapshotLogRatio (see snapshot.go). Must be finite, 0 or more.
	SnapshotLogRatio float64
	// SnapshotCatchUp is the number of entries kept in memory behind a
	// snapshot, so that a slightly lagging follower catches up from the log
	// rather than by snapshot. Default 5000; it never exceeds SnapshotEvery.
	SnapshotCatchUp uint64
	// MaxSizePerMsg bounds the bytes of entries in one append message.
	// Default 1 MiB.
	MaxSizePerMsg uint64
	// MaxInflightMsgs bounds in-flight append messages per follower.
	// Default 256.
	MaxInflightMsgs int
	// MaxUncommittedEntriesSize bounds the bytes of proposed but uncommitted
	// entries at the leader; beyond it proposals fail fast. Default 64 MiB.
	MaxUncommittedEntriesSize uint64
	// EventHistory is the number of recent events kept for watchers that
	// resume from a revision (Watch). Default 10000.
	EventHistory int
	// Tick, when non-nil, replaces the internal ticker: every value received
	// is one tick. Tests use it to step time by hand.
	Tick <-chan struct{}
	// Now is the wall clock. A node reads it when it becomes leader, to
	// anchor the clock it stamps into commands (see Monotonic). Default
	// time.Now.
	Now func() time.Time
	// Monotonic is a clock that never jumps: the time elapsed since an
	// arbitrary origin. A leader's stamps advance with it from the moment
	// it became leader, so that a step of the wall clock while it leads
	// expires nobody early. Default: Go's monotonic clock (time.Since of
	// the moment the Config got its defaults).
	Monotonic func() time.Duration
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

// DefaultSnapshotLogRatio is the default Config.SnapshotLogRatio: between
// two snapshots the log grows by at least half the last snapshot's size,
// so each byte of log pays for at most 2 bytes of snapshot. For a state
// that grows by c bytes of snapshot per byte of log (c ≈ 0.6 for locks
// acquired one per entry: 34 bytes in the snapshot for a 55-byte entry),
// the snapshots up to a state of S bytes write at most S·(1 + 2/c) bytes
// in all (about 3.3·S for a million locks, where snapshotting every 10,000
// entries wrote 50·S), while a restart replays at most S/2 bytes of log
// after it loads the S bytes of the snapshot. A ratio of 1 would save a
// quarter of the work for twice the log; 0.25 would double the work.
const DefaultSnapshotLogRatio = 0.5

// DefaultConfig returns a Config with every default set. ID, DataDir, Peers
// and ClientURL remain to be filled in.
func DefaultConfig() Config {
	return Config{
		TickInterval:              100 * time.Millisecond,
		ElectionTicks:             10,
		HeartbeatTicks:            1,
		SnapshotEvery:             10000,
		SnapshotLogRatio:          DefaultSnapshotLogRatio,
		SnapshotCatchUp:           5000,
		MaxSizePerMsg:             1 << 20,
		MaxInflightMsgs:           256,
		MaxUncommittedEntriesSize: 64 << 20,
		EventHistory:              10000,
	}
}

// withDefaults fills in the fields whose zero value means "default" that
// DefaultConfig cannot set: Logger, Now and Monotonic, and caps
// SnapshotCatchUp at SnapshotEvery.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MinFreeDiskBytes == 0 {
		c.MinFreeDiskBytes = DefaultMinFreeDiskBytes
	}
	if c.DiskFree == nil {
		c.DiskFree = diskFree
	}
	if c.Monotonic == nil {
		origin := time.Now()
		c.Monotonic = func() time.Duration { return time.Since(origin) }
	}
	if c.SnapshotCatchUp > c.SnapshotEvery {
		c.SnapshotCatchUp = c.SnapshotEvery
	}
	return c
}

// ElectionTimeout is TickInterval × ElectionTicks.
func (c Config) ElectionTimeout() time.Duration {
	return c.TickInterval * time.Duration(c.ElectionTicks)
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("raftnode: config: data dir is required")
	case c.TickInterval <= 0:
		return fmt.Errorf("raftnode: config: tick interval %v must be positive", c.TickInterval)
	case c.HeartbeatTicks <= 0:
		return fmt.Errorf("raftnode: config: heartbeat ticks %d must be positive", c.HeartbeatTicks)
	case c.ElectionTicks <= c.HeartbeatTicks:
		return fmt.Errorf("raftnode: config: election ticks %d must exceed heartbeat ticks %d", c.ElectionTicks, c.HeartbeatTicks)
	case c.SnapshotEvery == 0:
		return errors.New("raftnode: config: snapshot every must be positive")
	case !(c.SnapshotLogRatio >= 0) || math.IsInf(c.SnapshotLogRatio, 1):
		return fmt.Errorf("raftnode: config: snapshot log ratio %v must be a finite number, 0 or more", c.SnapshotLogRatio)
	case c.MaxInflightMsgs <= 0:
		return errors.New("raftnode: config: max inflight msgs must be positive")
	}
	if c.Join && c.ClusterID == 0 {
		return errors.New("raftnode: config: a joining member needs the cluster's ID")
	}
	for id, u := range c.Peers {
		if id == 0 {
			return errors.New("raftnode: config: member ID 0 is not allowed")
		}
		if u == "" {
			return fmt.Errorf("raftnode: config: member %d has no peer URL", id)
		}
	}
	return nil
}
