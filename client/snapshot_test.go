package client

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/testserver"
	"github.com/raftlock/raftlock/lock"
)

// Snapshot writes a verified snapshot file of the server's state, past an
// endpoint that does not answer.
func TestSnapshotStreamsVerifiedBackup(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	c := newClient(t, deadURL, srv.URL)
	s := newSession(t, c, 5*time.Second)
	m := s.NewMutex("jobs/nightly")
	if err := m.Lock(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Unlock(testCtx(t)) })

	var b bytes.Buffer
	info, err := c.Snapshot(testCtx(t), &b)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(b.Len()) || info.Index < m.Token() || info.ClusterID != strconv.FormatUint(srv.Node.ClusterID(), 16) {
		t.Errorf("info %+v for %d bytes; token %d, cluster %x", info, b.Len(), m.Token(), srv.Node.ClusterID())
	}
	again, state, err := api.ReadSnapshot(bytes.NewReader(b.Bytes()))
	if err != nil || again != info {
		t.Fatalf("read back: %+v, %v", again, err)
	}
	restored := lock.New()
	if err := restored.Restore(state); err != nil {
		t.Fatal(err)
	}
	if l, ok := restored.Lock("jobs/nightly"); !ok || l.Holder == nil || l.Holder.Token != m.Token() {
		t.Errorf("the backup's lock: %+v", l)
	}

	b.Reset()
	if _, err := c.Snapshot(testCtx(t), &b, StaleSnapshot()); err != nil {
		t.Errorf("stale: %v", err)
	}
}

// An answer that is not a whole snapshot file is an error matching
// api.ErrSnapshotInvalid, not retried once bytes were written; an error
// answer is the server's error.
func TestSnapshotRefusesBadAnswers(t *testing.T) {
	var good bytes.Buffer
	if _, err := api.WriteSnapshot(&good, api.SnapshotHeader{Index: 7, Term: 2}, []byte("state")); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	var answer atomic.Pointer[func(w http.ResponseWriter, r *http.Request)]
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		(*answer.Load())(w, r)
	}))
	defer ts.Close()
	c := newClient(t, ts.URL)

	for _, tc := range []struct {
		what   string
		answer func(w http.ResponseWriter, r *http.Request)
		want   error
		calls  int32
	}{
		{"cut short", func(w http.ResponseWriter, r *http.Request) { w.Write(good.Bytes()[:good.Len()-5]) }, api.ErrSnapshotInvalid, 1},
		{"damaged", func(w http.ResponseWriter, r *http.Request) {
			bad := bytes.Clone(good.Bytes())
			bad[len(bad)-40] ^= 1
			w.Write(bad)
		}, api.ErrSnapshotInvalid, 1},
		{"a page", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>hello</html>") }, api.ErrSnapshotInvalid, 1},
		{"forbidden", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"error":{"code":"permission_denied","message":"no"}}`)
		}, api.ErrPermissionDenied, 1},
		{"unavailable, then a snapshot", func(w http.ResponseWriter, r *http.Request) {
			if calls.Load() == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprint(w, `{"error":{"code":"unavailable","message":"no quorum"}}`)
				return
			}
			w.Write(good.Bytes())
		}, nil, 2},
	} {
		calls.Store(0)
		answer.Store(&tc.answer)
		var b bytes.Buffer
		_, err := c.Snapshot(testCtx(t), &b)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) || calls.Load() != tc.calls {
			t.Errorf("%s: %v after %d requests, want %v after %d", tc.what, err, calls.Load(), tc.want, tc.calls)
		}
		if err == nil && !bytes.Equal(b.Bytes(), good.Bytes()) {
			t.Errorf("%s: wrote %d bytes, want the %d of the snapshot", tc.what, b.Len(), good.Len())
		}
	}
}
