package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/raftnode"
)

// joinWait bounds how long a joining member asks the others for the
// cluster: the leader may still be committing the member's addition.
const joinWait = 30 * time.Second

// joinCluster prepares cfg for a member that joins a running cluster
// (--initial-cluster-state existing): it asks the members of
// --initial-cluster for the cluster's ID, version and members, checks that
// this member was added with this ID and peer URL and that this build
// reads the cluster's log, and takes the members as they are.
func joinCluster(ctx context.Context, o *options, cfg *raftnode.Config, sec *tlsSetup, logger *slog.Logger) error {
	if o.initialCluster == "" {
		return fmt.Errorf("--initial-cluster-state existing needs --initial-cluster: every member of the running cluster, this one included")
	}
	if o.id == 0 {
		return fmt.Errorf("--initial-cluster-state existing needs --id: the ID that `raftlock member add` answered")
	}
	ctx, cancel := context.WithTimeout(ctx, joinWait)
	defer cancel()
	var ci raftnode.ClusterInfo
	var err error
	for attempt := 0; ; attempt++ {
		if ci, err = raftnode.FetchClusterInfo(ctx, cfg.ID, cfg.Peers, sec.peer); err == nil {
			break
		}
		if attempt == 0 {
			logger.Info("asking the cluster's members to let this member join", "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("join the cluster: no member of --initial-cluster answered within %v: %w", joinWait, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	cid, err := strconv.ParseUint(ci.ClusterID, 16, 64)
	if err != nil || cid == 0 {
		return fmt.Errorf("join the cluster: the members answered cluster ID %q", ci.ClusterID)
	}
	if ci.ClusterVersion > lock.MaxCommandVersion {
		return fmt.Errorf("join the cluster: its log uses command format %d and this build reads up to %d: run the build the other members run", ci.ClusterVersion, lock.MaxCommandVersion)
	}
	peers := map[uint64]string{}
	for _, m := range ci.Members {
		peers[m.ID] = m.PeerURL
	}
	switch got, ok := peers[cfg.ID]; {
	case !ok:
		return fmt.Errorf("join the cluster: member %d is not a member of it: add it first (raftlock member add %s), then start it with the ID it answers", cfg.ID, o.advertisePeer)
	case got != o.advertisePeer:
		return fmt.Errorf("join the cluster: member %d was added with peer URL %s, not %s (--advertise-peer)", cfg.ID, got, o.advertisePeer)
	}
	if err := checkPeerSchemes(peers, o.peerTLSOn()); err != nil {
		return fmt.Errorf("join the cluster: %w", err)
	}
	cfg.Peers, cfg.Join, cfg.ClusterID = peers, true, cid
	logger.Info("joining a running cluster", "cluster_id", ci.ClusterID, "members", len(peers))
	return nil
}
