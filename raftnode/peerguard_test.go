package raftnode

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/testcerts"
	"github.com/raftlock/raftlock/lock"
)

// A message from a stranger, to another member, or claiming to come from
// this very node never reaches raft, and is counted; the cluster's own
// messages are not. A forged heartbeat of a higher term from a made-up
// member would otherwise depose the leader.
func TestProcessDropsMessagesFromNonMembers(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	c.ticks(3)
	for id, tn := range c.nodes {
		if d := tn.n.Status().DroppedPeerMessages; d != 0 {
			t.Fatalf("member %d dropped %d messages of its own cluster", id, d)
		}
	}
	before := lead.n.Status()
	self := before.ID
	other := uint64(1)
	if other == self {
		other = 2
	}
	term := before.Term + 100
	forged := []*raftpb.Message{
		{Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(99), To: proto.Uint64(self), Term: proto.Uint64(term), Commit: proto.Uint64(before.Commit)},
		{Type: raftpb.MessageType_MsgApp.Enum(), From: proto.Uint64(99), To: proto.Uint64(self), Term: proto.Uint64(term),
			Index: proto.Uint64(before.Commit), LogTerm: proto.Uint64(before.Term), Commit: proto.Uint64(before.Commit + 1),
			Entries: []*raftpb.Entry{{Type: raftpb.EntryNormal.Enum(), Term: proto.Uint64(term), Index: proto.Uint64(before.Commit + 1), Data: []byte("garbage")}}},
		{Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(other), To: proto.Uint64(other), Term: proto.Uint64(term)},
		{Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(self), To: proto.Uint64(self), Term: proto.Uint64(term)},
		{Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(0), To: proto.Uint64(self), Term: proto.Uint64(term)},
	}
	for _, m := range forged {
		if err := lead.n.Process(context.Background(), m); err != nil {
			t.Fatalf("Process(%v) = %v, want nil (dropped)", m, err)
		}
	}
	if got := lead.n.Status().DroppedPeerMessages; got != uint64(len(forged)) {
		t.Fatalf("DroppedPeerMessages = %d, want %d", got, len(forged))
	}
	c.ticks(5)
	after := lead.n.Status()
	if !after.IsLeader || after.Term != before.Term {
		t.Fatalf("after forged messages: leader %v term %d, want the leader of term %d", after.IsLeader, after.Term, before.Term)
	}
	// The cluster still commits, and the garbage entry is nowhere.
	c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(10 * time.Second)})
	c.converged()
}

// fakeGate is a PeerGate with fixed members and bounds.
type fakeGate struct {
	members       map[uint64]bool
	maxMsg, maxSn int64
	snapAsked     atomic.Int64
}

func (g *fakeGate) IsMember(id uint64) bool { return g.members[id] }
func (g *fakeGate) MaxMessageBytes() int64  { return g.maxMsg }
func (g *fakeGate) MaxSnapshotBytes() int64 {
	g.snapAsked.Add(1)
	return g.maxSn
}

// recordingNext stands for rafthttp's handler: it reads the whole body and
// records what reached it.
type recordingNext struct {
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	path     string
	peerURLs string
	body     int
	err      error
}

func (h *recordingNext) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	h.mu.Lock()
	h.reqs = append(h.reqs, recorded{path: r.URL.Path, peerURLs: r.Header.Get(headerPeerURLs), body: len(b), err: err})
	h.mu.Unlock()
	if err != nil {
		http.Error(w, "error reading raft message", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *recordingNext) seen() []recorded {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]recorded(nil), h.reqs...)
}

// zeros is a request body of n zero bytes that counts what was read of it.
type zeros struct {
	n    int64
	read atomic.Int64
}

func (z *zeros) Read(p []byte) (int, error) {
	left := z.n - z.read.Load()
	if left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	clear(p)
	z.read.Add(int64(len(p)))
	return len(p), nil
}

func encode(t *testing.T, m *raftpb.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPeerGuard(t *testing.T) {
	const self = 1
	gate := &fakeGate{members: map[uint64]bool{1: true, 2: true, 3: true}, maxMsg: 1 << 20, maxSn: 8 << 20}
	next := &recordingNext{}
	var logs lockedBuffer
	g := NewPeerGuard(self, gate, next, slog.New(slog.NewTextHandler(&logs, nil)))
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)

	heartbeat := func(from, to uint64) []byte {
		return encode(t, &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(from), To: proto.Uint64(to), Term: proto.Uint64(5)})
	}
	snapshot := func(from uint64, size int) []byte {
		return encode(t, &raftpb.Message{Type: raftpb.MessageType_MsgSnap.Enum(), From: proto.Uint64(from), To: proto.Uint64(self), Term: proto.Uint64(5),
			Snapshot: &raftpb.Snapshot{Data: make([]byte, size), Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(10), Term: proto.Uint64(5)}}})
	}
	type req struct {
		method, path string
		header       map[string]string
		body         io.Reader
		length       int64 // -1: chunked
	}
	send := func(q req) (int, string) {
		t.Helper()
		r, err := http.NewRequest(q.method, srv.URL+q.path, q.body)
		if err != nil {
			t.Fatal(err)
		}
		r.ContentLength = q.length
		for k, v := range q.header {
			r.Header.Set(k, v)
		}
		resp, err := client.Do(r)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	post := func(from string, body []byte) req {
		return req{"POST", "/raft", map[string]string{headerFrom: from, headerPeerURLs: "http://127.0.0.1:1"}, bytes.NewReader(body), int64(len(body))}
	}

	for _, tc := range []struct {
		name   string
		q      req
		status int
		passed bool // reached next
	}{
		{"member", post("2", heartbeat(2, self)), 204, true},
		// Not 403: rafthttp would take it as "you were removed".
		{"stranger (or a member not applied yet)", post("63", heartbeat(0x63, self)), 503, false},
		{"no sender", post("", heartbeat(2, self)), 403, false},
		{"bad sender", post("zz", heartbeat(2, self)), 403, false},
		{"sender claims to be this member", post("1", heartbeat(1, self)), 403, false},
		{"message from another than its sender", post("2", heartbeat(3, self)), 403, false},
		{"message to another member", post("2", heartbeat(2, 3)), 403, false},
		{"addressed to another member", req{"POST", "/raft", map[string]string{headerFrom: "2", headerTo: "3"}, bytes.NewReader(heartbeat(2, self)), -1}, 403, false},
		{"GET /raft", req{"GET", "/raft", map[string]string{headerFrom: "2"}, nil, 0}, 405, false},
		{"snapshot endpoint", req{"POST", "/raft/snapshot", map[string]string{headerFrom: "2"}, bytes.NewReader(snapshot(2, 10)), -1}, 404, false},
		{"unknown path", req{"GET", "/raft/other", nil, nil, 0}, 404, false},
		{"probe", req{"GET", "/raft/probing", nil, nil, 0}, 204, true},
		{"probe with a body", req{"POST", "/raft/probing", nil, strings.NewReader("x"), 1}, 400, false},
		{"stream", req{"GET", "/raft/stream/message/2", map[string]string{headerFrom: "2", headerTo: "1"}, nil, 0}, 204, true},
		{"msgappv2 stream", req{"GET", "/raft/stream/msgapp/3", map[string]string{headerFrom: "3", headerTo: "1"}, nil, 0}, 204, true},
		{"stream of a stranger", req{"GET", "/raft/stream/message/63", map[string]string{headerFrom: "63", headerTo: "1"}, nil, 0}, 403, false},
		{"stream path names another sender", req{"GET", "/raft/stream/message/3", map[string]string{headerFrom: "2", headerTo: "1"}, nil, 0}, 403, false},
		{"stream without X-Raft-To", req{"GET", "/raft/stream/message/2", map[string]string{headerFrom: "2"}, nil, 0}, 403, false},
		{"stream to another member", req{"GET", "/raft/stream/message/2", map[string]string{headerFrom: "2", headerTo: "3"}, nil, 0}, 403, false},
		{"stream of an unknown type", req{"GET", "/raft/stream/other/2", map[string]string{headerFrom: "2", headerTo: "1"}, nil, 0}, 404, false},
		{"stream path not clean", req{"GET", "/raft/stream/message/x/../2", map[string]string{headerFrom: "2", headerTo: "1"}, nil, 0}, 404, false},
		{"stream with a body", req{"POST", "/raft/stream/message/2", map[string]string{headerFrom: "2", headerTo: "1"}, strings.NewReader("x"), 1}, 400, false},
		{"snapshot over the message bound, under the snapshot bound", post("2", snapshot(2, 2<<20)), 204, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(next.seen())
			status, body := send(tc.q)
			if status != tc.status {
				t.Fatalf("status %d (%q), want %d", status, body, tc.status)
			}
			seen := next.seen()
			if passed := len(seen) > before; passed != tc.passed {
				t.Fatalf("reached rafthttp: %v, want %v", passed, tc.passed)
			}
			if tc.passed && seen[len(seen)-1].peerURLs != "" {
				t.Fatalf("X-PeerURLs reached rafthttp: %q", seen[len(seen)-1].peerURLs)
			}
		})
	}
	if !strings.Contains(logs.String(), "refused a peer request") {
		t.Errorf("no refusal logged:\n%s", logs.String())
	}

	// A body over the bound is refused before it is read: by its declared
	// length, or as it streams in without one. Neither holds more than the
	// bound in memory.
	t.Run("declared length over the bound", func(t *testing.T) {
		z := &zeros{n: 300 << 20}
		head := heartbeat(2, self)
		status, body := send(req{"POST", "/raft", map[string]string{headerFrom: "2"}, io.MultiReader(bytes.NewReader(head), z), int64(len(head)) + z.n})
		if status != 0 && status != 413 {
			t.Fatalf("status %d (%q), want 413 or a reset", status, body)
		}
		if r := z.read.Load(); r > 32<<20 {
			t.Fatalf("the client sent %d bytes of a 300 MiB body before the refusal", r)
		}
	})
	t.Run("chunked body over the bound", func(t *testing.T) {
		before := len(next.seen())
		z := &zeros{n: 300 << 20}
		head := heartbeat(2, self)
		status, body := send(req{"POST", "/raft", map[string]string{headerFrom: "2"}, io.MultiReader(bytes.NewReader(head), z), -1})
		if status == 204 {
			t.Fatalf("accepted: %q", body)
		}
		seen := next.seen()
		if len(seen) != before+1 || seen[before].err == nil || seen[before].body > int(gate.maxMsg) {
			t.Fatalf("rafthttp read %+v, want a failed read of at most %d bytes", seen[before:], gate.maxMsg)
		}
		if r := z.read.Load(); r > 32<<20 {
			t.Fatalf("the client sent %d bytes of a 300 MiB body", r)
		}
	})
	t.Run("stranger's large body is not read", func(t *testing.T) {
		z := &zeros{n: 300 << 20}
		status, body := send(req{"POST", "/raft", map[string]string{headerFrom: "63"}, z, z.n})
		if status != 0 && status != 503 {
			t.Fatalf("status %d (%q), want 503 or a reset", status, body)
		}
		if r := z.read.Load(); r > 32<<20 {
			t.Fatalf("the client sent %d bytes before the refusal", r)
		}
	})
	t.Run("snapshot over the snapshot bound", func(t *testing.T) {
		asked := gate.snapAsked.Load()
		b := snapshot(2, 9<<20)
		status, _ := send(post("2", b))
		if status != 0 && status != 413 {
			t.Fatalf("status %d, want 413", status)
		}
		if gate.snapAsked.Load() == asked {
			t.Fatal("the snapshot bound was not asked")
		}
	})
	if g.Refused() == 0 {
		t.Fatal("Refused() = 0")
	}
}

func TestParseHead(t *testing.T) {
	for _, m := range []*raftpb.Message{
		{Type: raftpb.MessageType_MsgSnap.Enum(), To: proto.Uint64(1), From: proto.Uint64(1 << 62), Term: proto.Uint64(3),
			Snapshot: &raftpb.Snapshot{Data: make([]byte, 1000)}},
		{Type: raftpb.MessageType_MsgHup.Enum(), To: proto.Uint64(7), From: proto.Uint64(8)},
		{Type: raftpb.MessageType_MsgApp.Enum(), To: proto.Uint64(2), From: proto.Uint64(3), Entries: []*raftpb.Entry{{Data: []byte("x")}}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		h := parseHead(b[:min(len(b), peekLen)])
		if h.typ != m.GetType() || !h.hasTo || h.to != m.GetTo() || !h.hasFrom || h.from != m.GetFrom() {
			t.Errorf("parseHead(%v) = %+v", m, h)
		}
	}
	// Without a type the message is no snapshot; without to and from the
	// guard cannot tell (Process will).
	if h := parseHead(encode(t, &raftpb.Message{Term: proto.Uint64(1)})); h.typ != raftpb.MessageType_MsgHup || h.hasTo || h.hasFrom {
		t.Errorf("parseHead of a message without type, to, from = %+v", h)
	}
	if h := parseHead([]byte{0xff, 0xff}); h.hasTo || h.hasFrom || h.typ != 0 {
		t.Errorf("parseHead(garbage) = %+v", h)
	}
}

func TestMaxSnapshotBytesFollowsTheSnapFiles(t *testing.T) {
	dir := t.TempDir()
	n := &Node{cfg: Config{DataDir: dir, MaxSizePerMsg: 1 << 20}}
	if got := n.MaxSnapshotBytes(); got != MinSnapshotMessageBytes {
		t.Fatalf("without snap files: %d, want %d", got, MinSnapshotMessageBytes)
	}
	if got := n.MaxMessageBytes(); got != 8<<20 {
		t.Fatalf("MaxMessageBytes = %d, want 8 MiB", got)
	}
	snap := filepath.Join(dir, "snap")
	if err := os.MkdirAll(snap, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, size := range map[string]int64{"0000000000000002-0000000000000010.snap": 40 << 20, "0000000000000002-0000000000000020.snap": 50 << 20, "big.tmp": 500 << 20} {
		f, err := os.Create(filepath.Join(snap, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(size); err != nil { // sparse: no disk used
			t.Fatal(err)
		}
		f.Close()
	}
	if got := n.MaxSnapshotBytes(); got != 100<<20 {
		t.Fatalf("with snap files of 40 and 50 MiB: %d, want 100 MiB", got)
	}
}

// recvReceiver records the messages delivered to it.
type recvReceiver struct {
	nopReceiver
	got chan *raftpb.Message
}

func (r *recvReceiver) Process(_ context.Context, m *raftpb.Message) error {
	select {
	case r.got <- m:
	default:
	}
	return nil
}

// Two transports with mutual TLS deliver messages to each other: each
// presents its member certificate as a client and checks the other's, with
// the allowed CN on both sides.
func TestHTTPTransportMutualTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "peer CA")
	dir := t.TempDir()
	caFile := ca.WriteFile(t, dir, "ca.crt")
	var lns [2]net.Listener
	peers := map[uint64]string{}
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
		peers[uint64(i+1)] = "https://" + ln.Addr().String()
	}
	recv := &recvReceiver{got: make(chan *raftpb.Message, 16)}
	var trs [2]*HTTPTransport
	for i := range trs {
		o := testcerts.Loopback
		o.CommonName, o.Server, o.Client = "member", true, true
		certFile, keyFile := ca.Issue(t, o).WriteFiles(t, dir, "member"+string(rune('1'+i)))
		info := transport.TLSInfo{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: caFile, ClientCertAuth: true, AllowedCNs: []string{"member"}}
		var r Receiver = nopReceiver{}
		if i == 1 {
			r = recv
		}
		tr, err := NewHTTPTransportWith(HTTPTransportConfig{ID: uint64(i + 1), Peers: peers, Receiver: r, TLS: info})
		if err != nil {
			t.Fatal(err)
		}
		trs[i] = tr
		scfg, err := info.ServerConfig()
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: tr.Handler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
		ln := tls.NewListener(lns[i], scfg)
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { tr.Stop(); _ = srv.Close() })
	}
	trs[0].AddPeer(2, peers[2])
	trs[1].AddPeer(1, peers[1])
	hb := &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(1)}
	var got *raftpb.Message
	await.True(t, 10*time.Second, "a heartbeat over mutual TLS", func() bool {
		trs[0].Send([]*raftpb.Message{proto.Clone(hb).(*raftpb.Message)})
		select {
		case got = <-recv.got:
			return true
		default:
			return false
		}
	})
	if got.GetFrom() != 1 || got.GetType() != raftpb.MessageType_MsgHeartbeat {
		t.Fatalf("received %v", got)
	}
	if trs[1].Guard().Refused() != 0 {
		t.Fatalf("the guard refused %d requests of a member", trs[1].Guard().Refused())
	}
}
