package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/raftnode"
)

// The attacks of issue 11 on the peer port of a plaintext cluster on
// loopback, as anyone who can reach the port can make them: forged raft
// messages posted to /raft, a huge body, and X-PeerURLs naming an address
// of the attacker's choice. Each comes in two forms: from a sender header
// that names no member (refused before rafthttp reads anything), and from a
// header that names a member (without TLS a header is only a claim) while
// the message itself comes from a made-up member 99: refused by the peer
// guard, which reads the message's first bytes, or, when From is written
// last where the guard does not look, dropped by the node's Process and
// counted in /v1/status. With mutual TLS none reaches the node:
// TestTLSCluster shows that a stranger cannot complete a handshake.

// strangerID is the made-up member the forged messages come from.
const strangerID = 99

// Versions the forged requests claim, as rafthttp's own (etcd's version
// and minimum cluster version): rafthttp refuses older ones.
const (
	forgedServerVersion     = "3.7.0"
	forgedMinClusterVersion = "3.0.0"
)

// attack posts forged peer requests to one member.
type attack struct {
	t         *testing.T
	c         *cluster
	target    *member
	clusterID string
}

func newAttack(t *testing.T, c *cluster, target *member) *attack {
	peers := map[uint64]string{}
	for _, m := range c.members {
		peers[uint64(m.id)] = m.peerURL
	}
	// The cluster ID is a hash of the initial cluster; every rafthttp
	// answer carries it, so an attacker knows it.
	return &attack{t: t, c: c, target: target, clusterID: strconv.FormatUint(raftnode.ClusterID(peers), 16)}
}

// headerMember returns the hex ID of a member other than the target, for a
// sender header that names a member.
func (a *attack) headerMember() string {
	for _, m := range a.c.members {
		if m != a.target {
			return strconv.FormatUint(uint64(m.id), 16)
		}
	}
	a.t.Fatal("no other member")
	return ""
}

// post sends body to path on the target's peer port as sender (hex) with
// extra headers, and returns the status (0 when the connection failed).
func (a *attack) post(path, sender string, body io.Reader, length int64, extra map[string]string) (int, string) {
	req, err := http.NewRequest("POST", a.target.peerURL+path, body)
	if err != nil {
		a.t.Fatal(err)
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", "application/protobuf")
	req.Header.Set("X-Server-From", sender)
	req.Header.Set("X-Server-Version", forgedServerVersion)
	req.Header.Set("X-Min-Cluster-Version", forgedMinClusterVersion)
	req.Header.Set("X-Etcd-Cluster-ID", a.clusterID)
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// postMessage posts one forged raft message.
func (a *attack) postMessage(sender string, m *raftpb.Message, extra map[string]string) (int, string) {
	b, err := proto.Marshal(m)
	if err != nil {
		a.t.Fatal(err)
	}
	return a.postBytes(sender, b, extra)
}

func (a *attack) postBytes(sender string, b []byte, extra map[string]string) (int, string) {
	return a.post("/raft", sender, bytes.NewReader(b), int64(len(b)), extra)
}

// fromLast encodes m with its From field written last, after the
// entries: protobuf takes fields in any order, but the peer guard only
// looks at the first bytes, so such a message passes it and reaches
// Process.
func fromLast(t *testing.T, m *raftpb.Message) []byte {
	t.Helper()
	c := proto.Clone(m).(*raftpb.Message)
	from := c.GetFrom()
	c.From = nil
	b, err := proto.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	return protowire.AppendVarint(b, from)
}

// forge posts m from the made-up member in three forms: with a sender
// header that names no member, with one that names a member (the guard
// sees that the message is not from its sender), and with one that names
// a member and the message's From written last (it reaches Process, which
// drops it). The first two must be refused.
func (a *attack) forge(m *raftpb.Message, extra map[string]string) {
	a.t.Helper()
	for _, f := range []struct {
		name   string
		sender string
		body   []byte
		refuse bool
	}{
		{"a stranger's header", strconv.FormatUint(m.GetFrom(), 16), nil, true},
		{"a member's header", a.headerMember(), nil, true},
		{"a member's header, From written last", a.headerMember(), fromLast(a.t, m), false},
	} {
		var status int
		var body string
		if f.body != nil {
			status, body = a.postBytes(f.sender, f.body, extra)
		} else {
			status, body = a.postMessage(f.sender, m, extra)
		}
		a.t.Logf("%v from %s: %d %q", m.GetType(), f.name, status, body)
		if f.refuse && status == http.StatusNoContent {
			a.t.Errorf("%v from %s was accepted (%d)", m.GetType(), f.name, status)
		}
	}
}

// status reads the target's own view.
func (a *attack) status() (term, commit, dropped uint64, leader uint64, ok bool) {
	r, err := do("GET", a.target.clientURL+"/v1/status?consistency=stale", nil)
	if err != nil || r.status != 200 {
		return 0, 0, 0, 0, false
	}
	return num(r.body["term"]), num(r.body["commit"]), num(r.body["dropped_peer_messages"]), num(r.body["leader"]), true
}

// alive reports whether the target's process still runs.
func (a *attack) alive() bool {
	select {
	case <-a.target.exited:
		return false
	default:
		return true
	}
}

// envelope encodes cmd as raftnode does in a log entry: version 1, the
// proposing node's ID and a request ID (8 bytes each, big endian), then
// the command's own encoding.
func envelope(node, req uint64, cmd *lock.Command) []byte {
	b := make([]byte, 17)
	b[0] = 1
	binary.BigEndian.PutUint64(b[1:], node)
	binary.BigEndian.PutUint64(b[9:], req)
	return append(b, lock.Encode(cmd)...)
}

// forgedAppend is a MsgApp from the made-up member that a log of last index
// index and term logTerm accepts, with one entry of data, committed at
// once: raft steps down for the higher term and applies the entry.
func forgedAppend(to, term, index, logTerm uint64, data []byte) *raftpb.Message {
	return &raftpb.Message{
		Type: raftpb.MessageType_MsgApp.Enum(), From: proto.Uint64(strangerID), To: proto.Uint64(to),
		Term: proto.Uint64(term), Index: proto.Uint64(index), LogTerm: proto.Uint64(logTerm), Commit: proto.Uint64(index + 1),
		Entries: []*raftpb.Entry{{Type: raftpb.EntryNormal.Enum(), Term: proto.Uint64(term), Index: proto.Uint64(index + 1), Data: data}},
	}
}

// A forged MsgApp that would close another client's session (and so
// release its lock) is not applied, from either sender header.
func TestPeerAttackForgedAppendIsNotApplied(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.leader(c.members...)
	a := newAttack(t, c, lead)
	session := c.must("POST", lead.clientURL+"/v1/sessions", map[string]any{"ttl": "60s", "owner": "victim"}, 201).body["id"].(string)
	c.must("POST", lead.clientURL+"/v1/locks/victim-lock/acquire", map[string]any{"session": session}, 200)
	sid, _ := strconv.ParseUint(session, 10, 64)
	gone := func() bool {
		r, err := do("GET", lead.clientURL+"/v1/sessions/"+session+"?consistency=stale", nil)
		return err == nil && r.status == 404
	}

	term, commit, dropped0, _, ok := a.status()
	if !ok {
		t.Fatal("no status")
	}
	data := envelope(strangerID, 1, &lock.Command{Op: lock.OpCloseSession, Session: sid})
	a.forge(forgedAppend(uint64(lead.id), term+100, commit, term, data), nil)
	// The node has now stepped the message, or dropped it.
	await.True(t, 5*time.Second, "the forged append applied or dropped", func() bool {
		_, _, d, _, ok := a.status()
		return gone() || (ok && d > dropped0)
	})
	if gone() {
		t.Fatal("the forged append closed the session")
	}
	c.must("GET", lead.clientURL+"/v1/sessions/"+session+"?consistency=stale", nil, 200)
	r := c.must("GET", lead.clientURL+"/v1/locks/victim-lock?consistency=stale", nil, 200)
	if s, _ := holderOf(r); s != session {
		t.Fatalf("the lock is held by %q, want the victim's session %s", s, session)
	}
	if term2, _, _, leader, _ := a.status(); term2 != term || leader != uint64(lead.id) {
		t.Fatalf("term %d leader %d after the attack, want term %d leader %d", term2, leader, term, lead.id)
	}
}

// A forged heartbeat from a made-up member with a much higher term does
// not depose the leader: the term stays, the leader stays, writes go on.
func TestPeerAttackForgedHeartbeatDoesNotDepose(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.leader(c.members...)
	a := newAttack(t, c, lead)
	term, commit, dropped0, _, _ := a.status()
	hb := &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(strangerID), To: proto.Uint64(uint64(lead.id)),
		Term: proto.Uint64(term + 1000), Commit: proto.Uint64(commit)}
	a.forge(hb, nil)
	await.True(t, 5*time.Second, "the forged heartbeat stepped or dropped", func() bool {
		tm, _, d, _, ok := a.status()
		return ok && (tm != term || d > dropped0)
	})
	tm, _, _, leader, _ := a.status()
	if tm != term || leader != uint64(lead.id) {
		t.Fatalf("after a forged heartbeat: term %d leader %d, want term %d leader %d", tm, leader, term, lead.id)
	}
	c.must("POST", lead.clientURL+"/v1/sessions", map[string]any{"ttl": "10s"}, 201)
}

// A forged entry with garbage data is not committed: the node goes on (it
// would stop for good on "committed entry … is unreadable"), and so does
// the cluster.
func TestPeerAttackGarbageEntryIsNotCommitted(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.leader(c.members...)
	a := newAttack(t, c, lead)
	term, commit, dropped0, _, _ := a.status()
	a.forge(forgedAppend(uint64(lead.id), term+100, commit, term, []byte("\x01garbage that no version of raftlock can decode")), nil)
	await.True(t, 10*time.Second, "the garbage entry stepped or dropped", func() bool {
		_, _, d, _, ok := a.status()
		return !a.alive() || (ok && d > dropped0)
	})
	if !a.alive() {
		t.Fatal("the node stopped after a forged garbage entry")
	}
	r := c.must("POST", lead.clientURL+"/v1/sessions", map[string]any{"ttl": "10s"}, 201)
	id, _ := strconv.ParseUint(r.body["id"].(string), 10, 64)
	if tm, _, _, leader, _ := a.status(); tm != term || leader != uint64(lead.id) || id <= commit {
		t.Fatalf("after the attack: term %d leader %d, session %d; want term %d leader %d", tm, leader, id, term, lead.id)
	}
	for _, m := range c.members {
		if b, _ := readLog(m); strings.Contains(b, "unreadable") {
			t.Fatalf("member %d logged an unreadable entry", m.id)
		}
	}
}

// zeroBody is a body of n zero bytes that counts what the client sent.
type zeroBody struct {
	n    int64
	sent atomic.Int64
}

func (z *zeroBody) Read(p []byte) (int, error) {
	left := z.n - z.sent.Load()
	if left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	clear(p)
	z.sent.Add(int64(len(p)))
	return len(p), nil
}

// A 300 MB POST /raft is refused before the node reads it (it used to read
// it all into memory): the answer comes while the client has sent at most
// what the sockets' buffers hold, from either sender header.
func TestPeerAttackHugeBodyIsRefused(t *testing.T) {
	c := startCluster(t, 3)
	m := c.leader(c.members...)
	a := newAttack(t, c, m)
	for _, sender := range []string{strconv.FormatUint(strangerID, 16), a.headerMember()} {
		z := &zeroBody{n: 300 << 20}
		start := time.Now()
		status, body := a.post("/raft", sender, z, z.n, nil)
		t.Logf("sender %s: %d %q after %v and %d bytes sent", sender, status, body, time.Since(start).Round(time.Millisecond), z.sent.Load())
		if status == http.StatusNoContent || (status != 0 && status < 400) {
			t.Errorf("sender %s: accepted (%d)", sender, status)
		}
		if s := z.sent.Load(); s > 32<<20 {
			t.Errorf("sender %s: the node took %d bytes of a 300 MiB body before answering", sender, s)
		}
	}
	if !a.alive() {
		t.Fatal("the node stopped")
	}
}

// recorder is a listener that records every connection made to it.
type recorder struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []string
	got   chan struct{}
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln, got: make(chan struct{}, 1)}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, conn.RemoteAddr().String())
			r.mu.Unlock()
			select {
			case r.got <- struct{}{}:
			default:
			}
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return r
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// X-PeerURLs in a stranger's request makes the node send nothing to the
// address it names (rafthttp added a remote for it and answered the
// forged member there). The forged heartbeat of a higher term makes raft
// answer its sender at once, so a window of two election timeouts after
// the node has dropped it is ample.
func TestPeerAttackPeerURLsMakeNoOutboundRequest(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.leader(c.members...)
	a := newAttack(t, c, lead)
	rec := newRecorder(t)
	recURL := "http://" + rec.ln.Addr().String()
	term, commit, dropped0, _, _ := a.status()
	hb := &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(strangerID), To: proto.Uint64(uint64(lead.id)),
		Term: proto.Uint64(term + 1000), Commit: proto.Uint64(commit)}
	a.forge(hb, map[string]string{"X-PeerURLs": recURL})
	// A stream request names the stranger in its path.
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/raft/stream/message/%x", lead.peerURL, strangerID), nil)
	req.Header.Set("X-Server-From", strconv.FormatUint(strangerID, 16))
	req.Header.Set("X-Server-Version", forgedServerVersion)
	req.Header.Set("X-Min-Cluster-Version", forgedMinClusterVersion)
	req.Header.Set("X-Etcd-Cluster-ID", a.clusterID)
	req.Header.Set("X-Raft-To", strconv.FormatUint(uint64(lead.id), 16))
	req.Header.Set("X-PeerURLs", recURL)
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req); err == nil {
		t.Logf("stream: %d", resp.StatusCode)
		resp.Body.Close()
	}
	await.True(t, 5*time.Second, "the forged heartbeat stepped or dropped", func() bool {
		tm, _, d, _, ok := a.status()
		return rec.count() > 0 || (ok && (tm != term || d > dropped0))
	})
	select {
	case <-rec.got:
	case <-time.After(2 * 500 * time.Millisecond): // two election timeouts (tick 50ms)
	}
	if n := rec.count(); n > 0 {
		t.Fatalf("the node connected %d times to the address a stranger named in X-PeerURLs", n)
	}
}

// readLog returns member m's log.
func readLog(m *member) (string, error) {
	b, err := os.ReadFile(m.logPath)
	return string(b), err
}
