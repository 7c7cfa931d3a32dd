package tcpproxy

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/raftlock/raftlock/internal/await"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// echoServer echoes every connection and records what it received.
type echoServer struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	got  []byte
	open map[net.Conn]bool
}

func newEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{ln: ln, open: map[net.Conn]bool{}}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.open[c] = true
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				defer func() {
					e.mu.Lock()
					delete(e.open, c)
					e.mu.Unlock()
					c.Close()
				}()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						e.mu.Lock()
						e.got = append(e.got, buf[:n]...)
						e.mu.Unlock()
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						// Half-closed by the client: answer "bye" and close.
						if errors.Is(err, io.EOF) {
							_, _ = c.Write([]byte("bye"))
						}
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		e.mu.Lock()
		for c := range e.open {
			c.Close()
		}
		e.mu.Unlock()
		e.wg.Wait()
	})
	return e
}

func (e *echoServer) addr() string { return e.ln.Addr().String() }

func (e *echoServer) received() []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]byte(nil), e.got...)
}

func newProxy(t *testing.T, target string, o Options) *Proxy {
	t.Helper()
	p, err := ListenOptions(target, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readN reads exactly n bytes within d.
func readN(t *testing.T, c net.Conn, n int, d time.Duration) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

// readNothing checks that nothing arrives on c within d.
func readNothing(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	b := make([]byte, 1)
	n, err := c.Read(b)
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read %d bytes (%v), want nothing within %v", n, err, d)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// roundTrip writes msg and reads its echo concurrently (so that large
// messages do not deadlock on full socket buffers).
func roundTrip(t *testing.T, c net.Conn, msg []byte) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		errc <- err
	}()
	got := readN(t, c, len(msg), 10*time.Second)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("echo differs from what was sent")
	}
}

func TestPass(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.addr(), Options{})
	c := dial(t, p)
	roundTrip(t, c, []byte("hello"))
	roundTrip(t, c, randomBytes(t, 1<<20))
	// The proxy counts a chunk once its write returned, which may be a
	// moment after the client read it.
	var st Stats
	if _, ok := await.Within(10*time.Second, func() bool {
		st = p.Stats()
		return st.BytesUp == 5+1<<20 && st.BytesDown == 5+1<<20
	}); !ok || st.Accepted != 1 || st.Active != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHalfClose(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.addr(), Options{})
	c := dial(t, p)
	roundTrip(t, c, []byte("x"))
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The target sees EOF, answers and closes; the client reads it all
	// and then EOF; the proxy drops the connection.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "bye" {
		t.Fatalf("after half-close read %q, %v; want \"bye\", EOF", b, err)
	}
	await.True(t, 10*time.Second, "connection gone", func() bool { return p.Stats().Active == 0 })
}

func TestBlackholeBothHoldsAndHeals(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.addr(), Options{})
	c := dial(t, p)
	roundTrip(t, c, []byte("before"))
	p.Blackhole(Both)
	if got := p.Mode(); !got.Up.Blackhole || !got.Down.Blackhole {
		t.Fatalf("mode %v", got)
	}
	msg := []byte("held-in-the-blackhole")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	readNothing(t, c, 200*time.Millisecond)
	if got := e.received(); string(got) != "before" {
		t.Fatalf("target received %q while blackholed", got)
	}
	// A new connection is accepted, but nothing goes through it either.
	c2 := dial(t, p)
	if _, err := c2.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	readNothing(t, c2, 100*time.Millisecond)
	p.Pass()
	// Nothing was dropped: both streams resume in order.
	if got := readN(t, c, len(msg), 5*time.Second); !bytes.Equal(got, msg) {
		t.Fatalf("after healing read %q, want %q", got, msg)
	}
	if got := readN(t, c2, 3, 5*time.Second); string(got) != "new" {
		t.Fatalf("second connection read %q", got)
	}
}

func TestBlackholeUpOnly(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.addr(), Options{})
	c := dial(t, p)
	roundTrip(t, c, []byte("a"))
	p.Blackhole(Up)
	if _, err := c.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	readNothing(t, c, 150*time.Millisecond)
	if got := string(e.received()); got != "a" {
		t.Fatalf("target received %q through a blackholed up link", got)
	}
	p.Pass()
	if got := readN(t, c, 1, 5*time.Second); string(got) != "b" {
		t.Fatalf("read %q", got)
	}
}

func TestBlackholeDownOnly(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.addr(), Options{})
	c := dial(t, p)
	roundTrip(t, c, []byte("a"))
	p.Blackhole(Down)
	if _, err := c.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	// The target gets it (up passes), its echo is held (down is blackholed).
	await.True(t, 10*time.Second, "target receives through the open up link", func() bool { return string(e.received()) == "ab" })
	readNothing(t, c, 150*time.Millisecond)
	p.Pass()
	if got := readN(t, c, 1, 5*time.Second); string(got) != "b" {
		t.Fatalf("read %q", got)
	}
}

func TestDelay(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.addr(), Options{})
	c := dial(t, p)
	roundTrip(t, c, []byte("warm"))
	const d = 150 * time.Millisecond
	for _, tc := range []struct {
		dir  Direction
		min  time.Duration
		name string
	}{{Up, d, "up"}, {Down, d, "down"}, {Both, 2 * d, "both"}} {
		p.Delay(tc.dir, d)
		start := time.Now()
		roundTrip(t, c, []byte("ping"))
		rtt := time.Since(start)
		if rtt < tc.min || rtt > tc.min+3*time.Second {
			t.Fatalf("delay %s %v: round trip %v, want at least %v", tc.name, d, rtt, tc.min)
		}
	}
	// Order is kept under delay, for a stream of many chunks.
	p.Delay(Both, 20*time.Millisecond)
	roundTrip(t, c, randomBytes(t, 256<<10))
	p.Pass()
	start := time.Now()
	roundTrip(t, c, []byte("fast"))
	if rtt := time.Since(start); rtt > 2*time.Second {
		t.Fatalf("after Pass the round trip took %v", rtt)
	}
}

func TestDelayIsBounded(t *testing.T) {
	p := newProxy(t, "127.0.0.1:1", Options{})
	p.SetMode(Mode{Up: Link{Delay: time.Hour}, Down: Link{Delay: -time.Second}})
	if m := p.Mode(); m.Up.Delay != MaxDelay || m.Down.Delay != 0 {
		t.Fatalf("mode %+v, want the delays clamped to [0, %v]", m, MaxDelay)
	}
}

func TestHealDuringDelayReleasesAtOnce(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.addr(), Options{})
	c := dial(t, p)
	p.Delay(Up, 5*time.Second)
	if _, err := c.Write([]byte("z")); err != nil {
		t.Fatal(err)
	}
	await.True(t, 10*time.Second, "the chunk held", func() bool { return p.Stats().Held == 1 })
	p.Pass()
	if got := readN(t, c, 1, 2*time.Second); string(got) != "z" {
		t.Fatalf("read %q", got)
	}
	if st := p.Stats(); st.Held != 0 {
		t.Fatalf("%d chunks still counted as held after they passed", st.Held)
	}
}

func TestCloseAll(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.addr(), Options{})
	var cs []net.Conn
	for i := 0; i < 3; i++ {
		c := dial(t, p)
		roundTrip(t, c, []byte("x"))
		cs = append(cs, c)
	}
	// One of them blackholed with bytes held: CloseAll closes it too.
	p.Blackhole(Both)
	if _, err := cs[0].Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	if n := p.CloseAll(); n != 3 {
		t.Fatalf("CloseAll closed %d connections, want 3", n)
	}
	for i, c := range cs {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("connection %d: read %d bytes after CloseAll, want EOF or reset", i, n)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection %d still open after CloseAll", i)
		}
	}
	await.True(t, 10*time.Second, "no active connection", func() bool { return p.Stats().Active == 0 })
	p.Pass()
	roundTrip(t, dial(t, p), []byte("after"))
	if st := p.Stats(); st.Reset != 3 || st.Accepted != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := newProxy(t, addr, Options{})
	c := dial(t, p)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d, %v from a proxy whose target is down; want the connection closed", n, err)
	}
	await.True(t, 10*time.Second, "the failed dial counted", func() bool { return p.Stats().Failed == 1 })
}

func TestMaxConns(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.addr(), Options{MaxConns: 2})
	a, b := dial(t, p), dial(t, p)
	roundTrip(t, a, []byte("a"))
	roundTrip(t, b, []byte("b"))
	c := dial(t, p)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("third connection over MaxConns 2: %v, want closed", err)
	}
	if st := p.Stats(); st.Refused != 1 || st.Active != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestServeHandsOverAConnection(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.addr(), Options{})
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer front.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := front.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	c, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, ok := <-accepted
	if !ok {
		t.Fatal("front accepted nothing")
	}
	p.Serve(sc)
	roundTrip(t, c, []byte("via Serve"))
	p.Blackhole(Down)
	if _, err := c.Write([]byte("!")); err != nil {
		t.Fatal(err)
	}
	readNothing(t, c, 100*time.Millisecond)
	p.Pass()
	readN(t, c, 1, 5*time.Second)
}

// TestConcurrentModeChanges flips modes from several goroutines while
// several connections stream data; every byte must come back in order.
func TestConcurrentModeChanges(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.addr(), Options{})
	stop := make(chan struct{})
	var flippers sync.WaitGroup
	for g := 0; g < 3; g++ {
		flippers.Add(1)
		go func(g int) {
			defer flippers.Done()
			modes := []func(){
				func() { p.Blackhole(Up) },
				func() { p.Blackhole(Down) },
				func() { p.Blackhole(Both) },
				func() { p.Delay(Both, time.Millisecond) },
				func() { p.Pass() },
				func() { _ = p.Mode(); _ = p.Stats() },
			}
			for i := 0; i < 10000; i++ {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
				modes[(i+g)%len(modes)]()
			}
		}(g)
	}
	var streams sync.WaitGroup
	var ended atomic.Int32
	errc := make(chan error, 4)
	for s := 0; s < 4; s++ {
		c := dial(t, p)
		msg := randomBytes(t, 128<<10)
		streams.Add(1)
		go func() {
			defer streams.Done()
			defer ended.Add(1)
			go func() { _, _ = c.Write(msg) }()
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil {
				errc <- err
				return
			}
			if !bytes.Equal(got, msg) {
				errc <- errors.New("stream corrupted")
			}
		}()
	}
	// The streams run while the modes flip: until every byte is back
	// through the proxy (or every stream ended), rather than for a guess at
	// how long that takes; at most 30s, then the heal below lets them end.
	// Then stop the flippers, heal, and check what was read.
	const total = 4 * (128 << 10) // four streams of 128 KiB
	await.Within(30*time.Second, func() bool { return p.Stats().BytesDown >= total || ended.Load() == 4 })
	close(stop)
	flippers.Wait()
	p.Pass()
	streams.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

// TestCloseStopsEverything closes a proxy with connections in every state:
// goleak (TestMain) checks that no goroutine is left.
func TestCloseStopsEverything(t *testing.T) {
	e := newEcho(t)
	p, err := Listen(e.addr())
	if err != nil {
		t.Fatal(err)
	}
	var cs []net.Conn
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cs = append(cs, c)
	}
	roundTrip(t, cs[0], []byte("x"))
	p.Delay(Both, 5*time.Second)
	_, _ = cs[1].Write([]byte("delayed"))
	p.Blackhole(Both)
	_, _ = cs[2].Write([]byte("held"))
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Fatal("the proxy still accepts after Close")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if st := p.Stats(); st.Active != 0 {
		t.Fatalf("stats after Close %+v", st)
	}
}
