// Package tcpproxy is a small userspace TCP proxy for fault injection in
// tests: it listens on 127.0.0.1:0, forwards every connection to one target
// address, and can be told at any time, from any goroutine, to
//
//   - pass bytes through (the zero Mode);
//   - blackhole one or both directions: connections are still accepted and
//     the target still dialed, but nothing is forwarded in a blackholed
//     direction. Bytes are held, never dropped (what a real network does to
//     a TCP stream: the segments are retransmitted until they get through),
//     so when the direction is healed the stream resumes, in order and
//     uncorrupted;
//   - delay one or both directions: every chunk read from one side is
//     written to the other no earlier than Delay after it was read (at most
//     MaxDelay), in order;
//   - close every current connection (CloseAll), as a reset would.
//
// Each connection costs four goroutines (a reader and a writer per
// direction) and at most 2 × (queueLen+2) buffers of chunkSize bytes; the
// number of connections is bounded by Options.MaxConns. Close stops the
// listener, closes every connection and waits for every goroutine.
//
// Connections can also be handed over after they were accepted elsewhere
// (Serve), e.g. by a SOCKS front that picks the proxy by the requested
// destination.
package tcpproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Direction is a direction of the proxied byte streams.
type Direction uint8

const (
	// Up is from the client (the side that connected) to the target.
	Up Direction = 1 << iota
	// Down is from the target back to the client.
	Down
	// Both is Up and Down.
	Both = Up | Down
)

func (d Direction) String() string {
	switch d {
	case Up:
		return "up"
	case Down:
		return "down"
	case Both:
		return "both"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// MaxDelay bounds Link.Delay.
const MaxDelay = 10 * time.Second

const (
	chunkSize = 32 << 10
	queueLen  = 16
)

// Link is how one direction behaves. The zero Link passes bytes at once.
type Link struct {
	// Blackhole holds every byte of this direction until it is cleared.
	Blackhole bool
	// Delay is the latency added to every chunk, in [0, MaxDelay].
	Delay time.Duration
}

// Mode is how both directions behave. The zero Mode passes everything.
type Mode struct {
	Up, Down Link
}

func (m Mode) String() string {
	f := func(l Link) string {
		switch {
		case l.Blackhole:
			return "blackhole"
		case l.Delay > 0:
			return "delay " + l.Delay.String()
		}
		return "pass"
	}
	if m.Up == m.Down {
		return f(m.Up)
	}
	return "up " + f(m.Up) + ", down " + f(m.Down)
}

func clampLink(l Link) Link {
	if l.Delay < 0 {
		l.Delay = 0
	}
	if l.Delay > MaxDelay {
		l.Delay = MaxDelay
	}
	return l
}

// Options configure a Proxy. The zero value is usable.
type Options struct {
	// MaxConns bounds the connections open at once; further ones are
	// closed at once (and counted as Refused). Default 128.
	MaxConns int
	// DialTimeout bounds dialing the target. Default 2s.
	DialTimeout time.Duration
}

// Stats are a proxy's counters since it started.
type Stats struct {
	Accepted  int64 // connections taken (accepted or handed over)
	Refused   int64 // connections closed at once: over MaxConns, or the proxy closed
	Failed    int64 // connections closed because the target could not be dialed
	Active    int64 // connections open now
	Reset     int64 // connections closed by CloseAll
	BytesUp   int64 // bytes written to the target
	BytesDown int64 // bytes written to the client
	Held      int64 // chunks held now by a blackhole or a delay
}

// Proxy forwards TCP connections to a target. Its methods are safe for
// concurrent use.
type Proxy struct {
	target string
	opts   Options
	ln     net.Listener

	ctx    context.Context // ends at Close: aborts dials
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	mode    Mode
	changed chan struct{} // closed and replaced at every mode change
	conns   map[*conn]struct{}
	closed  bool

	accepted, refused, failed, reset, bytesUp, bytesDown, held atomic.Int64
}

// Listen starts a proxy on 127.0.0.1:0 that forwards to target (host:port).
func Listen(target string) (*Proxy, error) { return ListenOptions(target, Options{}) }

// ListenOptions is Listen with options.
func ListenOptions(target string, o Options) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("tcpproxy: target %q: %w", target, err)
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 128
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 2 * time.Second
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tcpproxy: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		target:  target,
		opts:    o,
		ln:      ln,
		ctx:     ctx,
		cancel:  cancel,
		changed: make(chan struct{}),
		conns:   map[*conn]struct{}{},
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the address the proxy listens on (127.0.0.1:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// SetMode changes how current and future connections behave.
func (p *Proxy) SetMode(m Mode) {
	m.Up, m.Down = clampLink(m.Up), clampLink(m.Down)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	close(p.changed)
	p.changed = make(chan struct{})
}

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Pass forwards everything again, at once (held bytes are released).
func (p *Proxy) Pass() { p.SetMode(Mode{}) }

// Blackhole holds the bytes of the directions in d (the others pass).
func (p *Proxy) Blackhole(d Direction) {
	p.SetMode(Mode{Up: Link{Blackhole: d&Up != 0}, Down: Link{Blackhole: d&Down != 0}})
}

// Delay adds latency to every chunk of the directions in d (the others
// pass).
func (p *Proxy) Delay(d Direction, latency time.Duration) {
	var m Mode
	if d&Up != 0 {
		m.Up.Delay = latency
	}
	if d&Down != 0 {
		m.Down.Delay = latency
	}
	p.SetMode(m)
}

// CloseAll closes every current connection and returns how many there
// were. New connections are accepted as before.
func (p *Proxy) CloseAll() int {
	p.mu.Lock()
	cs := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	for _, c := range cs {
		c.teardown()
	}
	p.reset.Add(int64(len(cs)))
	return len(cs)
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	active := int64(len(p.conns))
	p.mu.Unlock()
	return Stats{
		Accepted:  p.accepted.Load(),
		Refused:   p.refused.Load(),
		Failed:    p.failed.Load(),
		Active:    active,
		Reset:     p.reset.Load(),
		BytesUp:   p.bytesUp.Load(),
		BytesDown: p.bytesDown.Load(),
		Held:      p.held.Load(),
	}
}

// Close stops the listener, closes every connection and waits until every
// goroutine of the proxy has returned. It may be called more than once.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	err := p.ln.Close()
	p.CloseAll()
	p.wg.Wait()
	return err
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || p.ctx.Err() != nil {
				return
			}
			// A transient error (out of file descriptors): back off,
			// bounded, and stop when the proxy is closed.
			select {
			case <-time.After(backoff):
			case <-p.ctx.Done():
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		p.Serve(c)
	}
}

// Serve takes over client, a connection accepted elsewhere, and forwards it
// to the target like a connection accepted by the proxy itself. It does
// not block. If the proxy is closed or full, client is closed at once.
func (p *Proxy) Serve(client net.Conn) {
	p.accepted.Add(1)
	c := &conn{p: p, client: client, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed || len(p.conns) >= p.opts.MaxConns {
		p.mu.Unlock()
		p.refused.Add(1)
		client.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()
	go c.run()
}

// link returns the current behaviour of direction d and a channel closed at
// the next mode change.
func (p *Proxy) link(d Direction) (Link, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d == Up {
		return p.mode.Up, p.changed
	}
	return p.mode.Down, p.changed
}

// conn is one proxied connection.
type conn struct {
	p      *Proxy
	client net.Conn
	server net.Conn // set by run before the pipes start

	done     chan struct{} // closed by teardown
	once     sync.Once
	mu       sync.Mutex // guards server against teardown during the dial
	finished atomic.Int32
}

type chunk struct {
	b   []byte
	at  time.Time
	eof bool
}

// run dials the target and then pumps both directions; it is counted in
// p.wg and returns when every pipe of the connection has.
func (c *conn) run() {
	defer c.p.wg.Done()
	defer c.remove()
	d := net.Dialer{Timeout: c.p.opts.DialTimeout}
	server, err := d.DialContext(c.p.ctx, "tcp", c.p.target)
	if err != nil {
		c.p.failed.Add(1)
		c.teardown()
		return
	}
	c.mu.Lock()
	c.server = server
	c.mu.Unlock()
	select {
	case <-c.done: // torn down while dialing
		server.Close()
		return
	default:
	}
	var pipes sync.WaitGroup
	up := make(chan chunk, queueLen)
	down := make(chan chunk, queueLen)
	pipes.Add(3)
	go func() { defer pipes.Done(); c.read(c.client, up) }()
	go func() { defer pipes.Done(); c.read(server, down) }()
	go func() { defer pipes.Done(); c.write(Up, up, server, &c.p.bytesUp) }()
	c.write(Down, down, c.client, &c.p.bytesDown)
	pipes.Wait()
}

func (c *conn) remove() {
	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
}

// teardown closes both sides; every pipe of the connection then returns.
func (c *conn) teardown() {
	c.once.Do(func() {
		close(c.done)
		c.client.Close()
		c.mu.Lock()
		if c.server != nil {
			c.server.Close()
		}
		c.mu.Unlock()
	})
}

// read reads chunks from src into q until EOF (then it queues an EOF mark)
// or an error (then it tears the connection down).
func (c *conn) read(src net.Conn, q chan<- chunk) {
	buf := make([]byte, chunkSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			b := append([]byte(nil), buf[:n]...)
			select {
			case q <- chunk{b: b, at: time.Now()}:
			case <-c.done:
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				select {
				case q <- chunk{eof: true, at: time.Now()}:
				case <-c.done:
				}
				return
			}
			c.teardown()
			return
		}
	}
}

// write writes the chunks of q to dst, each when direction d's mode lets it
// through. After the EOF mark it half-closes dst; once both directions have
// ended, the connection is torn down.
func (c *conn) write(d Direction, q <-chan chunk, dst net.Conn, count *atomic.Int64) {
	for {
		var ch chunk
		select {
		case ch = <-q:
		case <-c.done:
			return
		}
		if !c.hold(d, ch.at) {
			return
		}
		if ch.eof {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
			if c.finished.Add(1) == 2 {
				c.teardown()
			}
			return
		}
		if _, err := dst.Write(ch.b); err != nil {
			c.teardown()
			return
		}
		count.Add(int64(len(ch.b)))
	}
}

// hold waits until a chunk read at `at` may pass in direction d: not
// blackholed, and its delay has run out. It re-reads the mode whenever it
// changes. False means the connection was torn down meanwhile.
func (c *conn) hold(d Direction, at time.Time) bool {
	counted := false
	defer func() {
		if counted {
			c.p.held.Add(-1)
		}
	}()
	for {
		l, changed := c.p.link(d)
		if l.Blackhole {
			if !counted {
				counted = true
				c.p.held.Add(1)
			}
			select {
			case <-changed:
				continue
			case <-c.done:
				return false
			}
		}
		wait := time.Until(at.Add(l.Delay))
		if wait <= 0 {
			return true
		}
		if !counted {
			counted = true
			c.p.held.Add(1)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			return true
		case <-changed:
			t.Stop()
		case <-c.done:
			t.Stop()
			return false
		}
	}
}
