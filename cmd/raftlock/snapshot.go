package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/client"
)

// newSnapshotCommand is "raftlock snapshot save|status FILE".
func newSnapshotCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "snapshot COMMAND [flags] FILE",
		Short: "back the cluster's state up to a file, or check such a file",
		Long: `Backs the cluster's whole state (sessions, locks, waiters, elections, users,
roles, token hashes, limits) up to a snapshot file, or checks one. raftlockd
--restore-from makes a new cluster from the file (see OPERATIONS.md).`,
		Example: "  raftlock snapshot save backup.snapshot\n  raftlock snapshot status backup.snapshot",
		Args:    cobra.NoArgs,
		RunE: e.action(func(c *cobra.Command, _ []string) int {
			return e.usageError(c, errors.New("no command: want save or status"))
		}),
	}
	c.AddCommand(newSnapshotSaveCommand(e), newSnapshotStatusCommand(e))
	return c
}

func newSnapshotSaveCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "save [flags] FILE",
		Short: "write a snapshot of the cluster's state to FILE (admin once auth is on)",
		Long: `Writes a snapshot of the cluster's whole state to FILE (GET /v1/snapshot;
admin once auth is on). It is written to FILE.part, verified (length and
SHA-256 checksum, once as it arrives and again from the disk), fsynced and
only then renamed to FILE, so FILE is always a whole snapshot. FILE may hold
token hashes: it is created readable by its owner only. --stale takes the
answering node's own state without asking for a quorum (a member of a
cluster that lost its quorum can still give it).`,
		Example: "  raftlock snapshot save backup-$(date +%F).snapshot\n  raftlock --endpoints http://10.0.0.2:7070 snapshot save --stale last-words.snapshot",
	}
	output := outputFlag(c.Flags())
	stale := c.Flags().Bool("stale", false, "the answering node's own state, without a quorum (possibly behind the cluster)")
	c.RunE = e.authRun(argsN(1, "FILE", output), func(ctx context.Context, cl *client.Client, args []string) int {
		var opts []client.SnapshotOption
		if *stale {
			opts = append(opts, client.StaleSnapshot())
		}
		info, err := saveSnapshot(ctx, cl, args[0], opts)
		if err != nil {
			return e.fail("snapshot save: %v", err)
		}
		if *output == "json" {
			return e.writeJSON(snapshotFile{File: args[0], SnapshotInfo: info})
		}
		fmt.Fprintf(e.stdout, "saved %s: index %d, %d bytes, sha256 %s\n", args[0], info.Index, info.Size, info.SHA256)
		return exitOK
	})
	return c
}

// saveSnapshot writes the cluster's snapshot to path.part, verifies it as
// it arrives and again from the disk, fsyncs it and renames it to path.
// On error path.part is removed and path is untouched.
func saveSnapshot(ctx context.Context, cl *client.Client, path string, opts []client.SnapshotOption) (info api.SnapshotInfo, err error) {
	part := path + ".part"
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return info, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(part)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	if info, err = cl.Snapshot(ctx, w, opts...); err != nil {
		return info, err
	}
	if err = w.Flush(); err != nil {
		return info, fmt.Errorf("write %s: %w", part, err)
	}
	if err = f.Sync(); err != nil {
		return info, fmt.Errorf("fsync %s: %w", part, err)
	}
	onDisk, err := verifySnapshotFile(part)
	if err != nil {
		return info, err
	}
	if onDisk != info {
		return info, fmt.Errorf("%s: what was written (%+v) differs from what arrived (%+v)", part, onDisk, info)
	}
	if err = f.Close(); err != nil {
		return info, fmt.Errorf("close %s: %w", part, err)
	}
	if err = os.Rename(part, path); err != nil {
		return info, err
	}
	if d, derr := os.Open(filepath.Dir(path)); derr == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return info, fmt.Errorf("fsync the directory of %s: %w", path, err)
		}
	}
	return info, nil
}

// verifySnapshotFile reads the snapshot file at path and verifies it.
func verifySnapshotFile(path string) (api.SnapshotInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return api.SnapshotInfo{}, err
	}
	defer f.Close()
	info, err := api.VerifySnapshot(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return info, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// snapshotFile is the JSON output of snapshot save and status.
type snapshotFile struct {
	File string `json:"file"`
	api.SnapshotInfo
}

func newSnapshotStatusCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "status [flags] FILE",
		Short: "verify the snapshot file FILE and show its index, size and checksum",
		Long: `Reads the snapshot file FILE, verifies it (format, length, SHA-256 checksum)
and shows what it holds: the Raft index and term of its state, the ID of
the cluster it comes from, its size and its checksum. Exits 1 when the file
is damaged, truncated or not a snapshot, saying which. It does not talk to
the cluster.`,
		Example: "  raftlock snapshot status backup.snapshot\n  raftlock snapshot status -o json backup.snapshot",
	}
	output := outputFlag(c.Flags())
	check := argsN(1, "FILE", output)
	c.RunE = e.action(func(c *cobra.Command, args []string) int {
		if err := check(args); err != nil {
			return e.usageError(c, err)
		}
		info, err := verifySnapshotFile(args[0])
		if err != nil {
			return e.fail("snapshot status: %v", err)
		}
		if *output == "json" {
			return e.writeJSON(snapshotFile{File: args[0], SnapshotInfo: info})
		}
		tw := newTable(e.stdout)
		fmt.Fprintf(tw, "FILE\t%s\n", args[0])
		fmt.Fprintf(tw, "INDEX\t%d\n", info.Index)
		fmt.Fprintf(tw, "TERM\t%d\n", info.Term)
		fmt.Fprintf(tw, "CLUSTER ID\t%s\n", info.ClusterID)
		fmt.Fprintf(tw, "SIZE\t%d\n", info.Size)
		fmt.Fprintf(tw, "SHA256\t%s\n", info.SHA256)
		fmt.Fprintf(tw, "FORMAT\t%d\n", info.Version)
		tw.Flush()
		return exitOK
	})
	return c
}
