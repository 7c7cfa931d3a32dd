package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/raftlock/raftlock/raftnode"
)

// restoreFlagHelp is the help of --restore-from.
const restoreFlagHelp = "make --data-dir the data dir of member --id of a NEW cluster of --initial-cluster from this snapshot file (raftlock snapshot save, GET /v1/snapshot), as etcdutl snapshot restore, then run it; every member of the new cluster is restored from the same file with the same --initial-cluster and --initial-cluster-token. Refused if --data-dir already holds a WAL: drop this flag to restart a restored member"

// restoreFromBackup makes the data dir of this member of a new cluster
// from the snapshot file of --restore-from (raftnode.RestoreDataDir), so
// that the start-up that follows finds it and runs the member as after a
// restart. It needs --id and --initial-cluster, the same on every member
// but --id, and refuses --initial-cluster-state existing: a restored
// cluster is new (grow it with raftlock member add afterwards).
func restoreFromBackup(ctx context.Context, o *options, logger *slog.Logger) error {
	switch {
	case o.clusterState == "existing":
		return errors.New("--restore-from makes a new cluster: it does not go with --initial-cluster-state existing (add members to the restored cluster afterwards)")
	case o.initialCluster == "":
		return errors.New("--restore-from needs --initial-cluster: every member of the new cluster, the same on each")
	case o.id == 0:
		return errors.New("--restore-from needs --id: this member's ID in --initial-cluster")
	}
	peers, err := parseCluster(o.initialCluster)
	if err != nil {
		return err
	}
	if peers[o.id] == "" {
		return fmt.Errorf("--initial-cluster does not name this member (--id %d)", o.id)
	}
	if err := checkPeerSchemes(peers, o.peerTLSOn()); err != nil {
		return fmt.Errorf("--initial-cluster: %w", err)
	}
	f, err := os.Open(o.restoreFrom)
	if err != nil {
		return fmt.Errorf("--restore-from: %w", err)
	}
	defer f.Close()
	if o.clusterToken == "" {
		logger.Warn("restoring without --initial-cluster-token: the new cluster's ID comes from --initial-cluster alone; if another cluster ever had the same members, give a token")
	}
	info, err := raftnode.RestoreDataDir(ctx, raftnode.RestoreConfig{
		DataDir:      o.dataDir,
		ID:           o.id,
		Peers:        peers,
		ClusterToken: o.clusterToken,
		Snapshot:     bufio.NewReaderSize(f, 1<<20),
		SnapshotName: o.restoreFrom,
		BumpIndex:    o.restoreBumpIndex,
		Logger:       logger,
	})
	if err != nil {
		return err
	}
	logger.Info("restored from a snapshot; starting the member of the new cluster", "snapshot", o.restoreFrom,
		"index", info.Index, "snapshot_cluster_id", info.Snapshot.ClusterID, "cluster_id", fmt.Sprintf("%x", info.ClusterID))
	return nil
}
