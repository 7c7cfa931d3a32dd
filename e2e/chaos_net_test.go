//go:build unix

package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/tcpproxy"
)

// The chaos network: every directed peer link of the cluster goes through
// its own tcpproxy.Proxy.
//
// Why not a different --initial-cluster per member, naming the proxies as
// the other members' peer URLs? raftlockd derives the cluster ID from the
// whole initial cluster, URLs included (raftnode.ClusterID), and rafthttp
// refuses every request whose X-Etcd-Cluster-ID differs from its own (412
// "cluster ID mismatch"): members with different URL maps never talk. So
// every member gets the same --initial-cluster, in which member j's peer URL
// is http://member<j>.chaos.invalid:<port>, a name that resolves nowhere,
// and each member's process gets its own HTTP_PROXY=socks5://127.0.0.1:<p>:
// rafthttp's transports use http.ProxyFromEnvironment, so member i dials
// every peer connection through its own SOCKS front, which reads the
// requested host (member j) and hands the connection to proxies[i][j], a
// plain TCP proxy to member j's real --listen-peer. (Client URLs are
// 127.0.0.1, never proxied, so forwarding to the leader is not affected.)
//
// Which proxy carries which raft messages: rafthttp sends i→j messages on
// the stream that j dialed to i (in the response body: the Down direction
// of proxies[j][i]) and, when no stream is up (and for snapshots), in POST
// bodies that i sends to j (the Up direction of proxies[i][j]). The GET that
// opens j's stream goes Up proxies[j][i], its response headers Down. So one
// proxy per ordered pair carries both directions of raft traffic, and
// cutting the messages from a to b means blackholing proxies[a][b] Up and
// proxies[b][a] Down: that is what setLink does.

// peerHost is the peer host name of member id in the chaos cluster.
func peerHost(id int) string { return fmt.Sprintf("member%d.chaos.invalid", id) }

type chaosNet struct {
	n       int
	proxies [][]*tcpproxy.Proxy // [i][j]: connections member i+1 dials to member j+1
	fronts  []*socksFront       // [i]: member i+1's HTTP_PROXY

	mu    sync.Mutex
	links [][]tcpproxy.Link // [a][b]: raft messages from member a+1 to member b+1
}

// newChaosNet starts the SOCKS fronts of n members; addMember starts the
// proxies to each member. Everything is closed at the end of the test.
func newChaosNet(t *testing.T, n int) *chaosNet {
	t.Helper()
	cn := &chaosNet{n: n, proxies: make([][]*tcpproxy.Proxy, n), links: make([][]tcpproxy.Link, n)}
	t.Cleanup(cn.close)
	for i := 0; i < n; i++ {
		cn.proxies[i] = make([]*tcpproxy.Proxy, n)
		cn.links[i] = make([]tcpproxy.Link, n)
	}
	for i := 0; i < n; i++ {
		i := i
		f, err := newSocksFront(func(host string) *tcpproxy.Proxy {
			cn.mu.Lock()
			defer cn.mu.Unlock()
			for j := 0; j < n; j++ {
				if j != i && host == peerHost(j+1) {
					return cn.proxies[i][j]
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		cn.fronts = append(cn.fronts, f)
	}
	return cn
}

// addMember starts the proxies that carry the connections the other
// members dial to member id, whose real peer listener is at addr.
func (cn *chaosNet) addMember(id int, addr string) error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	for i := 0; i < cn.n; i++ {
		if i == id-1 {
			continue
		}
		p, err := tcpproxy.ListenOptions(addr, tcpproxy.Options{MaxConns: 64, DialTimeout: time.Second})
		if err != nil {
			return err
		}
		cn.proxies[i][id-1] = p
	}
	return nil
}

func (cn *chaosNet) close() {
	for _, f := range cn.fronts {
		f.close()
	}
	for _, row := range cn.proxies {
		for _, p := range row {
			if p != nil {
				p.Close()
			}
		}
	}
}

// env is the environment of member id's process: the test's, without any
// proxy setting, plus HTTP_PROXY pointing at the member's SOCKS front.
func (cn *chaosNet) env(id int) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "REQUEST_METHOD":
			continue
		}
		out = append(out, kv)
	}
	u := "socks5://" + cn.fronts[id-1].addr()
	return append(out, "HTTP_PROXY="+u, "http_proxy="+u)
}

// setLink sets how raft messages from member a to member b travel.
func (cn *chaosNet) setLink(a, b int, l tcpproxy.Link) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cn.links[a-1][b-1] = l
	cn.applyLocked()
}

// heal makes every link pass again (held bytes are delivered).
func (cn *chaosNet) heal() {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	for a := range cn.links {
		for b := range cn.links[a] {
			cn.links[a][b] = tcpproxy.Link{}
		}
	}
	cn.applyLocked()
}

func (cn *chaosNet) applyLocked() {
	for i := 0; i < cn.n; i++ {
		for j := 0; j < cn.n; j++ {
			if i != j {
				cn.proxies[i][j].SetMode(tcpproxy.Mode{Up: cn.links[i][j], Down: cn.links[j][i]})
			}
		}
	}
}

// reset closes every current connection from or to member id.
func (cn *chaosNet) reset(id int) int {
	n := 0
	for k := 0; k < cn.n; k++ {
		if k != id-1 {
			n += cn.proxies[id-1][k].CloseAll()
			n += cn.proxies[k][id-1].CloseAll()
		}
	}
	return n
}

// stats sums the counters of every proxy.
func (cn *chaosNet) stats() tcpproxy.Stats {
	var s tcpproxy.Stats
	for _, row := range cn.proxies {
		for _, p := range row {
			if p == nil {
				continue
			}
			ps := p.Stats()
			s.Accepted += ps.Accepted
			s.Refused += ps.Refused
			s.Failed += ps.Failed
			s.Active += ps.Active
			s.Reset += ps.Reset
			s.BytesUp += ps.BytesUp
			s.BytesDown += ps.BytesDown
		}
	}
	return s
}

// socksFront is a minimal SOCKS5 server (no authentication, CONNECT to a
// domain name only) that hands each connection to the proxy route picks by
// the requested host.
type socksFront struct {
	ln    net.Listener
	route func(host string) *tcpproxy.Proxy
	wg    sync.WaitGroup

	mu      sync.Mutex
	pending map[net.Conn]bool // in the handshake
	closed  bool
}

const maxSocksHandshakes = 64

func newSocksFront(route func(host string) *tcpproxy.Proxy) (*socksFront, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &socksFront{ln: ln, route: route, pending: map[net.Conn]bool{}}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

func (f *socksFront) addr() string { return f.ln.Addr().String() }

func (f *socksFront) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // retry pace after a transient error (EMFILE), not a wait; Close ends the loop
			continue
		}
		f.mu.Lock()
		if f.closed || len(f.pending) >= maxSocksHandshakes {
			f.mu.Unlock()
			c.Close()
			continue
		}
		f.pending[c] = true
		f.wg.Add(1)
		f.mu.Unlock()
		go f.handshake(c)
	}
}

func (f *socksFront) handshake(c net.Conn) {
	defer f.wg.Done()
	host, err := socksRequest(c)
	var p *tcpproxy.Proxy
	if err == nil {
		p = f.route(host)
	}
	f.mu.Lock()
	delete(f.pending, c)
	closed := f.closed
	f.mu.Unlock()
	if err != nil || p == nil || closed {
		if err == nil {
			_, _ = c.Write([]byte{5, 4, 0, 1, 0, 0, 0, 0, 0, 0}) // host unreachable
		}
		c.Close()
		return
	}
	if _, err := c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}); err != nil {
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	p.Serve(c)
}

// socksRequest reads a SOCKS5 greeting and CONNECT request from c (bounded
// by a deadline) and returns the requested host.
func socksRequest(c net.Conn) (string, error) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b [4]byte
	if _, err := io.ReadFull(c, b[:2]); err != nil {
		return "", err
	}
	if b[0] != 5 {
		return "", fmt.Errorf("socks version %d", b[0])
	}
	methods := make([]byte, b[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return "", err
	}
	noAuth := false
	for _, m := range methods {
		noAuth = noAuth || m == 0
	}
	if !noAuth {
		_, _ = c.Write([]byte{5, 0xff})
		return "", errors.New("socks: no acceptable method")
	}
	if _, err := c.Write([]byte{5, 0}); err != nil {
		return "", err
	}
	if _, err := io.ReadFull(c, b[:4]); err != nil {
		return "", err
	}
	if b[0] != 5 || b[1] != 1 {
		return "", fmt.Errorf("socks: version %d command %d, want CONNECT", b[0], b[1])
	}
	var host string
	switch b[3] {
	case 1, 4: // IPv4, IPv6
		ip := make([]byte, map[byte]int{1: 4, 4: 16}[b[3]])
		if _, err := io.ReadFull(c, ip); err != nil {
			return "", err
		}
		host = net.IP(ip).String()
	case 3: // domain name
		if _, err := io.ReadFull(c, b[:1]); err != nil {
			return "", err
		}
		name := make([]byte, b[0])
		if _, err := io.ReadFull(c, name); err != nil {
			return "", err
		}
		host = string(name)
	default:
		return "", fmt.Errorf("socks: address type %d", b[3])
	}
	if _, err := io.ReadFull(c, b[:2]); err != nil { // port: the proxy knows it
		return "", err
	}
	return host, nil
}

func (f *socksFront) close() {
	f.mu.Lock()
	f.closed = true
	for c := range f.pending {
		c.Close()
	}
	f.mu.Unlock()
	f.ln.Close()
	f.wg.Wait()
}

// startChaosCluster starts size members whose peer links all go through a
// chaosNet.
func startChaosCluster(t *testing.T, size int, tick string) (*cluster, *chaosNet) {
	t.Helper()
	cn := newChaosNet(t, size)
	c := startClusterWith(t, size, clusterOptions{
		tick: tick,
		advertisePeer: func(m *member) string {
			u, err := url.Parse(m.peerURL)
			if err != nil {
				t.Fatal(err)
			}
			if err := cn.addMember(m.id, u.Host); err != nil {
				t.Fatal(err)
			}
			return "http://" + peerHost(m.id) + ":" + u.Port()
		},
		env: func(m *member) []string { return cn.env(m.id) },
	})
	return c, cn
}
