package raftnode

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

type nopReceiver struct{}

func (nopReceiver) Process(context.Context, *raftpb.Message) error { return nil }
func (nopReceiver) IsIDRemoved(uint64) bool                        { return false }
func (nopReceiver) ReportUnreachable(uint64)                       {}
func (nopReceiver) ReportSnapshot(uint64, raft.SnapshotStatus)     {}

// lockedBuffer is a bytes.Buffer safe for the transport's goroutines; its
// changed channel is closed at the next write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	ch chan struct{}
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ch != nil {
		close(l.ch)
		l.ch = nil
	}
	return l.b.Write(p)
}

// changed returns a channel closed at the next write.
func (l *lockedBuffer) changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ch == nil {
		l.ch = make(chan struct{})
	}
	return l.ch
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Members started with different --initial-cluster values (here one URL
// spelled differently) have different cluster IDs and refuse each other.
// That must show in the log, not only as a cluster that never elects.
func TestHTTPTransportLogsClusterIDMismatch(t *testing.T) {
	var lns [2]net.Listener
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
	}
	port2 := lns[1].Addr().(*net.TCPAddr).Port
	u1 := "http://" + lns[0].Addr().String()
	a := map[uint64]string{1: u1, 2: fmt.Sprintf("http://127.0.0.1:%d", port2)}
	b := map[uint64]string{1: u1, 2: fmt.Sprintf("http://localhost:%d", port2)}

	var logs [2]lockedBuffer
	var trs [2]*HTTPTransport
	for i, peers := range []map[uint64]string{a, b} {
		tr, err := NewHTTPTransport(uint64(i+1), peers, nopReceiver{}, slog.New(slog.NewTextHandler(&logs[i], nil)))
		if err != nil {
			t.Fatal(err)
		}
		trs[i] = tr
		srv := &http.Server{Handler: tr.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func(ln net.Listener) { _ = srv.Serve(ln) }(lns[i])
		t.Cleanup(func() { tr.Stop(); _ = srv.Close() })
	}
	trs[0].AddPeer(2, a[2])
	// rafthttp dials in the background: resend until member 2 logs the
	// refusal (or the deadline passes).
	resend := time.NewTicker(20 * time.Millisecond)
	defer resend.Stop()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(logs[1].String(), "cluster ID mismatch") {
		trs[0].Send([]*raftpb.Message{{Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(1)}})
		select {
		case <-logs[1].changed():
		case <-resend.C:
		case <-deadline:
			t.Fatalf("no cluster ID mismatch in member 2's log:\n%s", logs[1].String())
		}
	}
}

func TestHTTPTransportRefusesPeerURLWithPath(t *testing.T) {
	_, err := NewHTTPTransport(1, map[uint64]string{1: "http://127.0.0.1:1/", 2: "http://127.0.0.1:2"}, nopReceiver{}, nil)
	if err == nil || !strings.Contains(err.Error(), "member 1") {
		t.Fatalf("err = %v, want a refusal naming member 1", err)
	}
}
