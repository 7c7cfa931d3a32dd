// Package e2e tests real raftlockd processes: built from this tree, started
// on free 127.0.0.1 ports, talking real Raft over real sockets with real
// fsynced WALs, and killed with SIGKILL.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/await"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// raftlockd builds the server binary once per test run.
func raftlockd(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "raftlockd-e2e")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "raftlockd")
		args := []string{"build", "-o", binPath}
		if raceServer {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "github.com/raftlock/raftlock/cmd/raftlockd")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// freePorts returns n distinct free TCP ports on 127.0.0.1. The listeners are
// held until all are chosen so the same port is not returned twice.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	var ports []int
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

type member struct {
	id        int
	clientURL string
	peerURL   string
	dataDir   string
	logPath   string
	cmd       *exec.Cmd
	exited    chan struct{}
	extra     []string // more flags (clusterOptions.args)
	bin       string   // the binary to run instead of the cluster's (an older build)
}

type cluster struct {
	t       *testing.T
	bin     string
	members []*member
	initial string
	opts    clusterOptions
	// serving, when set, are the members that clients running on other
	// goroutines may use (the membership test changes the members while
	// they run); nil: members.
	serving atomic.Pointer[[]*member]
}

// clientMembers returns the members that clients may use (see serving).
func (c *cluster) clientMembers() []*member {
	if p := c.serving.Load(); p != nil {
		return *p
	}
	return c.members
}

// clusterOptions adjust how startClusterWith starts members; the zero value
// is what startCluster does.
type clusterOptions struct {
	// tick replaces the --tick of every member.
	tick string
	// advertisePeer, when set, is the peer URL of member m in the
	// --initial-cluster (instead of its --listen-peer URL).
	advertisePeer func(m *member) string
	// env, when set, returns the environment of member m's process
	// (instead of the test's).
	env func(m *member) []string
	// scheme of the client and peer URLs: "http" (default) or "https".
	scheme string
	// args, when set, returns extra flags of member m (its certificates).
	// They are asked for once per member, and kept for its restarts.
	args func(m *member) []string
}

const tick = "50ms" // election timeout 500 ms; minimum TTL 1 s

func startCluster(t *testing.T, size int) *cluster {
	t.Helper()
	return startClusterWith(t, size, clusterOptions{})
}

func startClusterWith(t *testing.T, size int, opts clusterOptions) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: raftlockd(t), opts: opts}
	ports := freePorts(t, 2*size)
	scheme := opts.scheme
	if scheme == "" {
		scheme = "http"
	}
	var parts []string
	for i := 0; i < size; i++ {
		m := &member{
			id:        i + 1,
			clientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i]),
			peerURL:   fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i+1]),
			dataDir:   filepath.Join(t.TempDir(), "data"),
		}
		m.logPath = filepath.Join(filepath.Dir(m.dataDir), "raftlockd.log")
		if opts.args != nil {
			m.extra = opts.args(m)
		}
		c.members = append(c.members, m)
		adv := m.peerURL
		if opts.advertisePeer != nil {
			adv = opts.advertisePeer(m)
		}
		parts = append(parts, fmt.Sprintf("%d=%s", m.id, adv))
	}
	c.initial = strings.Join(parts, ",")
	for _, m := range c.members {
		c.start(m, true)
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			c.kill(m)
		}
		for _, m := range c.members {
			if b, _ := os.ReadFile(m.logPath); strings.Contains(string(b), "WARNING: DATA RACE") {
				t.Errorf("member %d reported a data race (raftlockd built with -race):\n%s", m.id, raceReport(string(b)))
			}
		}
		if t.Failed() {
			for _, m := range c.members {
				b, _ := os.ReadFile(m.logPath)
				t.Logf("log of member %d:\n%s", m.id, lastLines(string(b), 40))
			}
		}
	})
	return c
}

// raceReport returns the first race report of a log.
func raceReport(log string) string {
	i := strings.Index(log, "WARNING: DATA RACE")
	if i < 0 {
		return ""
	}
	rest := log[i:]
	if j := strings.Index(rest, "=================="); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// start runs member m. withCluster passes --id and --initial-cluster; a
// restart from an existing data dir needs neither.
func (c *cluster) start(m *member, withCluster bool) {
	c.t.Helper()
	tk := tick
	if c.opts.tick != "" {
		tk = c.opts.tick
	}
	args := []string{
		"--data-dir", m.dataDir,
		"--listen-client", m.clientURL,
		"--listen-peer", m.peerURL,
		"--tick", tk,
		"--request-timeout", "2s",
	}
	if withCluster {
		args = append(args, "--id", strconv.Itoa(m.id), "--initial-cluster", c.initial)
	}
	args = append(args, m.extra...)
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	bin := c.bin
	if m.bin != "" {
		bin = m.bin
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if c.opts.env != nil {
		cmd.Env = c.opts.env(m)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	m.cmd = cmd
	m.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(m.exited)
	}()
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *cluster) kill(m *member) {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.exited
	m.cmd = nil
}

var httpc = &http.Client{Timeout: 30 * time.Second}

type reply struct {
	status int
	body   map[string]any
	header http.Header
}

func (r reply) String() string {
	b, _ := json.Marshal(r.body)
	return fmt.Sprintf("%d %s", r.status, b)
}

func do(method, url string, body any) (reply, error) {
	return request(httpc, method, url, "", body)
}

// request sends body (JSON, nil for none) with client hc and, when token is
// set, Authorization: Bearer token.
func request(hc *http.Client, method, url, token string, body any) (reply, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return reply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode, header: resp.Header}
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &r.body); err != nil {
			return r, fmt.Errorf("%s %s: %d with a body that is not JSON: %q", method, url, resp.StatusCode, b)
		}
	}
	return r, nil
}

func (c *cluster) must(method, url string, body any, want int) reply {
	c.t.Helper()
	r, err := do(method, url, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, url, err)
	}
	if r.status != want {
		c.t.Fatalf("%s %s: %v, want %d", method, url, r, want)
	}
	return r
}

// status returns member m's view: its leader's ID (0 if none).
func status(m *member) (leader float64, ok bool) {
	r, err := do("GET", m.clientURL+"/v1/status?consistency=stale", nil)
	if err != nil || r.status != 200 {
		return 0, false
	}
	l, _ := r.body["leader"].(float64)
	return l, true
}

// leader waits until every live member in ms agrees on a leader among ms.
func (c *cluster) leader(ms ...*member) *member {
	c.t.Helper()
	var lead *member
	await.True(c.t, 30*time.Second, "a leader all members agree on", func() bool {
		var id float64
		for i, m := range ms {
			l, ok := status(m)
			if !ok || l == 0 || (i > 0 && l != id) {
				return false
			}
			id = l
			if r, err := do("GET", m.clientURL+"/readyz", nil); err != nil || r.status != 200 {
				return false
			}
		}
		for _, m := range ms {
			if float64(m.id) == id {
				lead = m
				return true
			}
		}
		return false
	})
	return lead
}

func num(v any) uint64 {
	f, _ := v.(float64)
	return uint64(f)
}

func holderOf(r reply) (session string, token uint64) {
	h, ok := r.body["holder"].(map[string]any)
	if !ok {
		return "", 0
	}
	s, _ := h["session"].(string)
	return s, num(h["token"])
}
