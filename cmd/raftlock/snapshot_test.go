package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/raftlock/raftlock/internal/testserver"
)

// snapshot save writes a whole, verified file (owner-only) and nothing
// else; snapshot status reads it back; a damaged file is refused, saying
// why.
func TestSnapshotSaveAndStatus(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	env := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}
	r := newREST(t, s.URL)
	var sess struct{ ID string }
	r.do("POST", "/v1/sessions", `{"ttl":"10s"}`, &sess)
	r.do("POST", "/v1/locks/jobs/x/acquire", `{"session":"`+sess.ID+`"}`, nil)

	dir := t.TempDir()
	file := filepath.Join(dir, "backup.snapshot")
	res := runCLI(t, env, "snapshot", "save", file)
	if res.code != exitOK || !strings.HasPrefix(res.stdout, "saved "+file+": index ") || !strings.Contains(res.stdout, "bytes, sha256 ") {
		t.Fatalf("save: %+v", res)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("the directory holds %d entries, want the file alone", len(ents))
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the file: %v, %v", fi, err)
	}

	res = runCLI(t, nil, "snapshot", "status", "-o", "json", file)
	var info struct {
		File      string `json:"file"`
		Index     uint64 `json:"index"`
		Size      int64  `json:"size"`
		ClusterID string `json:"cluster_id"`
		SHA256    string `json:"sha256"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &info); err != nil || res.code != exitOK {
		t.Fatalf("status: %+v, %v", res, err)
	}
	fi, _ := os.Stat(file)
	if info.File != file || info.Index == 0 || info.Size != fi.Size() || len(info.SHA256) != 64 || info.ClusterID != strconv.FormatUint(s.Node.ClusterID(), 16) {
		t.Errorf("status: %+v", info)
	}
	res = runCLI(t, nil, "snapshot", "status", file)
	if res.code != exitOK || !strings.Contains(res.stdout, "INDEX       "+strconv.FormatUint(info.Index, 10)) {
		t.Errorf("status: %+v", res)
	}

	b, _ := os.ReadFile(file)
	if err := os.WriteFile(file, b[:len(b)-1], 0o600); err != nil {
		t.Fatal(err)
	}
	res = runCLI(t, nil, "snapshot", "status", file)
	if res.code != exitError || !strings.Contains(res.stderr, file+": api: invalid snapshot file: truncated") {
		t.Errorf("status of a truncated file: %+v", res)
	}

	// A failed save leaves no file, not even the .part.
	gone := filepath.Join(dir, "gone.snapshot")
	res = runCLI(t, map[string]string{"RAFTLOCK_ENDPOINTS": "http://127.0.0.1:1"}, "snapshot", "save", "--timeout", "1s", gone)
	if res.code != exitError {
		t.Errorf("save to nowhere: %+v", res)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "gone*")); len(left) != 0 {
		t.Errorf("a failed save left %v", left)
	}

	for _, args := range [][]string{{"snapshot"}, {"snapshot", "save"}, {"snapshot", "status", "a", "b"}, {"snapshot", "save", "-o", "yaml", "f"}} {
		if res := runCLI(t, env, args...); res.code != exitUsage {
			t.Errorf("%q: %+v", args, res)
		}
	}
}
