// Package testserver runs a real single-node raftlock server inside a test
// process: a raftnode.Node with its WAL in a temporary directory, served by
// httpapi on an httptest server at a free 127.0.0.1 port. Tests of the SDK
// and the CLI use it; it is never part of the product.
package testserver

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlock/raftlock/httpapi"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/raftnode"
)

// Server is a running single-node server.
type Server struct {
	// URL is the client URL, e.g. http://127.0.0.1:41234.
	URL  string
	Node *raftnode.Node

	stop func() error // stops the server; set by start
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
	s, err := start(o, t.TempDir())
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("testserver: %v", err)
		}
	})
	return s
}

// StartMain is Start for code that has no testing.TB: a TestMain that
// serves the package's Example functions. The server keeps its data in a
// new temporary directory; the caller must call Stop, which removes it.
func StartMain(o Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "raftlock-testserver")
	if err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	s, err := start(o, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testserver: %w", err)
	}
	stop := s.stop
	s.stop = func() error {
		err := stop()
		if rerr := os.RemoveAll(dir); err == nil {
			err = rerr
		}
		return err
	}
	return s, nil
}

// Stop stops a server of StartMain and removes its data. It returns the
// error the node stopped with. Call it once; Start's servers stop by
// themselves.
func (s *Server) Stop() error { return s.stop() }

// start starts a server with its data in dir and returns once it is ready.
func start(o Options, dir string) (*Server, error) {
	if o.Tick == 0 {
		o.Tick = 10 * time.Millisecond
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	url := "http://" + ln.Addr().String()

	cfg := raftnode.DefaultConfig()
	cfg.ID = 1
	cfg.DataDir = dir
	cfg.Peers = map[uint64]string{1: "http://127.0.0.1:1"} // a single node sends no peer messages
	cfg.ClientURL = url
	cfg.TickInterval = o.Tick
	if o.AuthBootstrapToken != "" {
		sum := sha256.Sum256([]byte(o.AuthBootstrapToken))
		cfg.AuthBootstrapHash = string(sum[:])
	}
	node, err := raftnode.New(context.Background(), cfg)
	if err != nil {
		ln.Close()
		return nil, err
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
		ln.Close()
		return nil, err
	}
	hs := httptest.NewUnstartedServer(api.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()

	ctx, cancel := context.WithCancel(context.Background())
	errC := make(chan error, 1)
	go func() { errC <- node.Run(ctx, nopTransport{}) }()
	s := &Server{URL: url, Node: node}
	s.stop = func() error {
		hs.CloseClientConnections()
		hs.Close()
		cancel()
		err := <-errC
		api.Close()
		if err != nil {
			return fmt.Errorf("node stopped with %w", err)
		}
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	// Ready, and at this build's cluster version (a single member raises
	// it at its first tick), so that every request works at once.
	for st := node.Status(); !st.Ready || st.ClusterVersion < lock.MaxCommandVersion || (o.AuthBootstrapToken != "" && !node.Auth().Enabled()); st = node.Status() {
		if time.Now().After(deadline) {
			st := node.Status()
			s.stop()
			return nil, fmt.Errorf("node not ready after 10s: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s, nil
}

// nopTransport is the transport of a cluster of one: there is nobody to
// send to.
type nopTransport struct{}

func (nopTransport) Send([]*raftpb.Message) {}
func (nopTransport) AddPeer(uint64, string) {}
func (nopTransport) RemovePeer(uint64)      {}
func (nopTransport) Stop()                  {}

var _ raftnode.Transport = nopTransport{}
