// Package testserver runs a real single-node raftlock server inside a test
// process: a raftnode.Node with its WAL in a temporary directory, served by
// httpapi on an httptest server at a free 127.0.0.1 port. Tests of the SDK
// and the CLI use it; it is never part of the product.
package testserver

import (
	"context"
	"crypto/sha256"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlock/raftlock/httpapi"
	"github.com/raftlock/raftlock/raftnode"
)

// Server is a running single-node server.
type Server struct {
	// URL is the client URL, e.g. http://127.0.0.1:41234.
	URL  string
	Node *raftnode.Node
}

// Options tune Start. The zero value is a node with a 10 ms tick (election
// timeout 100 ms, so the minimum TTL is 200 ms).
type Options struct {
	Tick           time.Duration
	RequestTimeout time.Duration
	// AuthBootstrapToken, when set, bootstraps auth with this root token
	// (raftlockd --auth-bootstrap-token-file); Start returns once auth is
	// on.
	AuthBootstrapToken string
}

// Start starts a server and stops it when the test ends. It returns once
// the node is ready (it leads and has published its URL).
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Tick == 0 {
		o.Tick = 10 * time.Millisecond
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testserver: listen: %v", err)
	}
	url := "http://" + ln.Addr().String()

	cfg := raftnode.DefaultConfig()
	cfg.ID = 1
	cfg.DataDir = t.TempDir()
	cfg.Peers = map[uint64]string{1: "http://127.0.0.1:1"} // a single node sends no peer messages
	cfg.ClientURL = url
	cfg.TickInterval = o.Tick
	if o.AuthBootstrapToken != "" {
		sum := sha256.Sum256([]byte(o.AuthBootstrapToken))
		cfg.AuthBootstrapHash = string(sum[:])
	}
	node, err := raftnode.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	hcfg := httpapi.DefaultConfig()
	hcfg.Node = node
	hcfg.MinTTL = 2 * cfg.ElectionTimeout()
	hcfg.AuthBootstrapToken = o.AuthBootstrapToken
	if o.RequestTimeout > 0 {
		hcfg.RequestTimeout = o.RequestTimeout
	}
	api, err := httpapi.New(hcfg)
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	hs := httptest.NewUnstartedServer(api.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()

	ctx, cancel := context.WithCancel(context.Background())
	errC := make(chan error, 1)
	go func() { errC <- node.Run(ctx, nopTransport{}) }()
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		cancel()
		if err := <-errC; err != nil {
			t.Errorf("testserver: node stopped with %v", err)
		}
		api.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for !node.Status().Ready || (o.AuthBootstrapToken != "" && !node.Auth().Enabled()) {
		if time.Now().After(deadline) {
			t.Fatalf("testserver: node not ready after 10s: %+v", node.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return &Server{URL: url, Node: node}
}

// nopTransport is the transport of a cluster of one: there is nobody to
// send to.
type nopTransport struct{}

func (nopTransport) Send([]*raftpb.Message) {}
func (nopTransport) AddPeer(uint64, string) {}
func (nopTransport) Stop()                  {}

var _ raftnode.Transport = nopTransport{}
