package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
)

// raftlockd --restore-from refuses, before it listens on anything, what
// it cannot restore: a bad command line, a truncated file (naming it), a
// data dir that holds a WAL.
func TestRestoreFromRefusals(t *testing.T) {
	dir := t.TempDir()
	m := lock.New()
	m.Apply(1, 2, &lock.Command{Op: lock.OpOpenSession, Now: 1, TTL: 60e9})
	var good bytes.Buffer
	if _, err := api.WriteSnapshot(&good, api.SnapshotHeader{ClusterID: 1, Index: 1, Term: 2}, m.Snapshot()); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "backup.snapshot")
	cut := filepath.Join(dir, "cut.snapshot")
	if err := os.WriteFile(file, good.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cut, good.Bytes()[:good.Len()-1], 0o600); err != nil {
		t.Fatal(err)
	}
	cluster := "1=http://127.0.0.1:1,2=http://127.0.0.1:2"
	inUse := filepath.Join(dir, "in-use")
	if err := os.MkdirAll(filepath.Join(inUse, "wal"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--restore-from", file, "--id", "1"}, "needs --initial-cluster"},
		{[]string{"--restore-from", file, "--initial-cluster", cluster}, "needs --id"},
		{[]string{"--restore-from", file, "--id", "3", "--initial-cluster", cluster}, "does not name this member"},
		{[]string{"--restore-from", file, "--id", "1", "--initial-cluster", cluster, "--initial-cluster-state", "existing"}, "does not go with --initial-cluster-state existing"},
		{[]string{"--restore-from", filepath.Join(dir, "missing"), "--id", "1", "--initial-cluster", cluster}, "no such file"},
		{[]string{"--restore-from", cut, "--id", "1", "--initial-cluster", cluster}, "restore from " + cut + ": api: invalid snapshot file: truncated"},
		{[]string{"--restore-from", file, "--id", "1", "--initial-cluster", cluster, "--data-dir", inUse}, "already holds a WAL"},
	} {
		args := tc.args
		if !strings.Contains(strings.Join(args, " "), "--data-dir") {
			args = append(args, "--data-dir", filepath.Join(dir, "data"))
		}
		err := run(context.Background(), append(args, "--listen-client", "http://127.0.0.1:0", "--listen-peer", "http://127.0.0.1:0"),
			func(string) string { return "" }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
			t.Fatalf("%q: the data dir was made", tc.args)
		}
	}
}
