package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
)

// getRaw sends a GET and returns the answer with its body as it is.
func getRaw(t *testing.T, ts *httptest.Server, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// GET /v1/snapshot answers the state as a verified snapshot file: the
// applied index and term in its header, the state machine's own encoding
// inside.
func TestSnapshotEndpoint(t *testing.T) {
	f, ts := newTestServer(t, nil)
	sid := openSession(t, ts, "backup")
	must(t, ts, "POST", "/v1/locks/jobs/nightly/acquire", `{"session":"`+sid+`"}`, 200)

	resp, b := getRaw(t, ts, api.SnapshotPath)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", api.SnapshotPath, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != api.SnapshotContentType {
		t.Errorf("Content-Type %q", ct)
	}
	if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(b)) {
		t.Errorf("Content-Length %q, body of %d bytes", cl, len(b))
	}
	info, state, err := api.ReadSnapshot(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	var applied uint64
	f.set(func(f *fakeNode) { want, applied = f.m.Snapshot(), f.m.AppliedIndex() })
	if info.Index != applied || info.Term != 1 || !bytes.Equal(state, want) {
		t.Errorf("snapshot at index %d term %d (%d bytes); want index %d term 1 (%d bytes)", info.Index, info.Term, len(state), applied, len(want))
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, `filename="raftlock-`+strconv.FormatUint(applied, 10)+`.snapshot"`) {
		t.Errorf("Content-Disposition %q", cd)
	}
	m := lock.New()
	if err := m.Restore(state); err != nil {
		t.Fatal(err)
	}
	if l, ok := m.Lock("jobs/nightly"); !ok || l.Holder == nil {
		t.Errorf("restored lock: %+v %v", l, ok)
	}

	// Without a leader a linearizable snapshot is refused; a stale one is
	// this node's state.
	f.set(func(f *fakeNode) { f.noLeader = true })
	if r := do(t, ts, "GET", api.SnapshotPath, ""); r.status != 503 || r.errCode() != api.CodeUnavailable {
		t.Errorf("no leader: %d %s", r.status, r.raw)
	}
	if resp, b := getRaw(t, ts, api.SnapshotPath+"?consistency=stale"); resp.StatusCode != 200 {
		t.Errorf("stale, no leader: %d %s", resp.StatusCode, b)
	}
	if r := do(t, ts, "GET", api.SnapshotPath+"?consistency=fresh", ""); r.status != 400 {
		t.Errorf("consistency=fresh: %d %s", r.status, r.raw)
	}
}

// Once auth is on, only an admin on every name may take a snapshot.
func TestSnapshotAdminOnly(t *testing.T) {
	_, ts, alice, _ := authServer(t, nil)
	if r := do(t, ts, "GET", api.SnapshotPath, "", bearer(alice)...); r.status != 403 || r.errCode() != api.CodePermissionDenied || !strings.Contains(r.errMessage(), "snapshot") {
		t.Errorf("alice: %d %s", r.status, r.raw)
	}
	if r := do(t, ts, "GET", api.SnapshotPath, ""); r.status != 401 {
		t.Errorf("anonymous: %d %s", r.status, r.raw)
	}
	resp, b := getRaw(t, ts, api.SnapshotPath, bearer(rootToken)...)
	if resp.StatusCode != 200 {
		t.Fatalf("root: %d %s", resp.StatusCode, b)
	}
	_, state, err := api.ReadSnapshot(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	m := lock.New()
	if err := m.Restore(state); err != nil || !m.Auth().Enabled() {
		t.Errorf("restored: auth on %v, %v", m.Auth().Enabled(), err)
	}
}
