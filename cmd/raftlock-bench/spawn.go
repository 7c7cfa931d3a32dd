package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
)

// member is one spawned server process of a local cluster.
type member struct {
	name      string
	bin       string
	args      []string
	clientURL string
	// probeURL is where /readyz answers: clientURL, or etcd's HTTP
	// endpoint when that has a port of its own (--tls).
	probeURL string
	// probe sends the readiness probes (TLS with --tls).
	probe    *http.Client
	pprofURL string // "" unless started with --pprof-listen
	dataDir  string
	logPath  string
	// env are variables (--member-gomaxprocs) that the member gets on
	// top of this process's environment.
	env []string

	cmd    *exec.Cmd
	exited chan struct{}
}

// cluster is a local 3-node cluster of raftlockd or etcd processes on
// 127.0.0.1.
type cluster struct {
	target  string
	members []*member
}

func (c *cluster) endpoints() []string {
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = m.clientURL
	}
	return eps
}

// member returns the member whose client URL is ep, or nil.
func (c *cluster) member(ep string) *member {
	ep = strings.TrimRight(ep, "/")
	for _, m := range c.members {
		if m.clientURL == ep {
			return m
		}
	}
	return nil
}

// freePorts returns n distinct free TCP ports on 127.0.0.1. The listeners
// are held until all are chosen, so that no port comes twice.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// buildRaftlockd builds cmd/raftlockd of the module in the working
// directory into dir and returns the binary's path.
func buildRaftlockd(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "raftlockd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/raftlock/raftlock/cmd/raftlockd")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build raftlockd (run from the raftlock module, or give --raftlockd PATH): %w\n%s", err, out)
	}
	return bin, nil
}

// startRaftlock starts a 3-node raftlockd cluster named name with default
// settings (fsync on) under dir, with a pprof listener on each member when
// pprof is set, and TLS on both ports with certificates of pki when that
// is not nil (see tls.go). extra are more flags of every member, env more
// variables of its environment.
func startRaftlock(bin, dir, name string, pprof bool, pki *benchPKI, extra, env []string) (*cluster, error) {
	ports, err := freePorts(9)
	if err != nil {
		return nil, err
	}
	c := &cluster{target: name}
	scheme := pki.scheme()
	var parts []string
	for i := range 3 {
		parts = append(parts, fmt.Sprintf("%d=%s://127.0.0.1:%d", i+1, scheme, ports[2*i+1]))
	}
	initial := strings.Join(parts, ",")
	for i := range 3 {
		d := filepath.Join(dir, fmt.Sprintf("%s-%d", name, i+1))
		m := &member{
			name:      fmt.Sprintf("%s-%d", name, i+1),
			bin:       bin,
			clientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i]),
			probe:     pki.probeClient(),
			dataDir:   filepath.Join(d, "data"),
			logPath:   filepath.Join(d, "raftlockd.log"),
			env:       env,
		}
		m.probeURL = m.clientURL
		m.args = []string{
			"--id", strconv.Itoa(i + 1),
			"--data-dir", m.dataDir,
			"--listen-client", m.clientURL,
			"--listen-peer", fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i+1]),
			"--initial-cluster", initial,
		}
		if pki != nil {
			args, err := pki.raftlockdArgs(m.name)
			if err != nil {
				return nil, err
			}
			m.args = append(m.args, args...)
		}
		m.args = append(m.args, extra...)
		if pprof {
			m.pprofURL = fmt.Sprintf("http://127.0.0.1:%d", ports[6+i])
			m.args = append(m.args, "--pprof-listen", strings.TrimPrefix(m.pprofURL, "http://"))
		}
		c.members = append(c.members, m)
	}
	return c, c.start()
}

// startEtcd starts a 3-member etcd cluster under dir: each member is this
// binary re-executed as "etcd-member", running one embed.Etcd. With pki,
// both ports have TLS with its certificates, and the HTTP endpoints get an
// https port of their own unless sharedPort is set (see tls.go). env are
// more variables of each member's environment.
func startEtcd(self, dir string, pki *benchPKI, sharedPort bool, env []string) (*cluster, error) {
	ports, err := freePorts(9)
	if err != nil {
		return nil, err
	}
	c := &cluster{target: "etcd"}
	scheme := pki.scheme()
	var parts []string
	for i := range 3 {
		parts = append(parts, fmt.Sprintf("etcd-%d=%s://127.0.0.1:%d", i+1, scheme, ports[2*i+1]))
	}
	initial := strings.Join(parts, ",")
	for i := range 3 {
		d := filepath.Join(dir, fmt.Sprintf("etcd-%d", i+1))
		m := &member{
			name:      fmt.Sprintf("etcd-%d", i+1),
			bin:       self,
			clientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i]),
			probe:     pki.probeClient(),
			dataDir:   filepath.Join(d, "data"),
			logPath:   filepath.Join(d, "etcd.log"),
			env:       env,
		}
		m.probeURL = m.clientURL
		m.args = []string{
			"etcd-member",
			"--name", m.name,
			"--data-dir", m.dataDir,
			"--listen-client", m.clientURL,
			"--listen-peer", fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i+1]),
			"--initial-cluster", initial,
		}
		if pki != nil {
			args, err := pki.etcdArgs(m.name)
			if err != nil {
				return nil, err
			}
			m.args = append(m.args, args...)
			if !sharedPort {
				m.probeURL = fmt.Sprintf("https://127.0.0.1:%d", ports[6+i])
				m.args = append(m.args, "--listen-client-http", m.probeURL)
			}
		}
		c.members = append(c.members, m)
	}
	return c, c.start()
}

func (c *cluster) start() error {
	for _, m := range c.members {
		if err := os.MkdirAll(filepath.Dir(m.dataDir), 0o755); err != nil {
			c.kill()
			return err
		}
		if err := m.start(); err != nil {
			c.kill()
			return err
		}
	}
	return nil
}

// start runs m's process with its output going to m.logPath. The process
// is killed if this one dies (Pdeathsig).
func (m *member) start() error {
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(m.bin, m.args...)
	if len(m.env) > 0 {
		cmd.Env = append(os.Environ(), m.env...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", m.name, err)
	}
	m.cmd = cmd
	m.exited = make(chan struct{})
	exited := m.exited
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	return nil
}

// pid returns the process ID of m, 0 when it is not running.
func (m *member) pid() int {
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// stop sends sig and waits up to grace for the process to exit, then
// kills it.
func (m *member) stop(sig syscall.Signal, grace time.Duration) {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(sig)
	select {
	case <-m.exited:
	case <-time.After(grace):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
	m.cmd = nil
}

// kill ends every member at once.
func (c *cluster) kill() {
	for _, m := range c.members {
		m.stop(syscall.SIGKILL, 5*time.Second)
	}
}

// stopAll ends every member with SIGTERM (SIGKILL after 5s).
func (c *cluster) stopAll() {
	for _, m := range c.members {
		if m.cmd != nil {
			_ = m.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, m := range c.members {
		m.stop(syscall.SIGTERM, 5*time.Second)
	}
}

var probeClient = &http.Client{Timeout: time.Second}

// ready reports whether GET /readyz of m answers 200.
func (m *member) ready(ctx context.Context) bool {
	u, hc := m.probeURL, m.probe
	if u == "" {
		u = m.clientURL
	}
	if hc == nil {
		hc = probeClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitReady polls m's /readyz every 10ms until it answers 200, the
// process exits or timeout passes.
func (m *member) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if m.ready(ctx) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v (log: %s): %w", m.name, timeout, m.logPath, ctx.Err())
		case <-m.exited:
			return fmt.Errorf("%s exited before it was ready (log: %s):\n%s", m.name, m.logPath, tail(m.logPath, 20))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (c *cluster) waitReady(ctx context.Context, timeout time.Duration) error {
	for _, m := range c.members {
		if err := m.waitReady(ctx, timeout); err != nil {
			return err
		}
	}
	return nil
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// procStat is what /proc tells of a process: CPU time (user+system) and
// the bytes it caused to be written to storage.
type procStat struct {
	cpu        time.Duration
	writeBytes int64
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

func readProcStat(pid int) (procStat, error) {
	var ps procStat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, err
	}
	// The command name is in parentheses and may contain spaces: the
	// fields that follow start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ps, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return ps, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return ps, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	ps.cpu = time.Duration(ut+st) * time.Second / clockTicks
	io, err := os.Open(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return ps, err
	}
	defer io.Close()
	sc := bufio.NewScanner(io)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "write_bytes:"); ok {
			ps.writeBytes, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return ps, sc.Err()
}

// readRSS returns the resident set size of a process in bytes.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// dirSize returns the total size of the regular files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

// snapDir returns the directory of m's snapshot files.
func (c *cluster) snapDir(m *member) string {
	if c.target == "etcd" {
		return filepath.Join(m.dataDir, "member", "snap")
	}
	return filepath.Join(m.dataDir, "snap")
}

// runEtcdMember is the hidden subcommand "etcd-member": one etcd member
// through embed, with etcd's default settings (fsync on) apart from its
// name, URLs and cluster, until ctx ends (SIGTERM or SIGINT).
func runEtcdMember(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("etcd-member", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "member name")
	dataDir := fs.String("data-dir", "", "data directory")
	listenClient := fs.String("listen-client", "", "client URL")
	listenPeer := fs.String("listen-peer", "", "peer URL")
	initial := fs.String("initial-cluster", "", "name=peerURL,...")
	listenClientHTTP := fs.String("listen-client-http", "", "with TLS: URL of the HTTP endpoints (/readyz, /metrics), leaving the client URL to gRPC alone (etcd's --listen-client-http-urls)")
	var ctls, ptls transport.TLSInfo
	fs.StringVar(&ctls.CertFile, "cert-file", "", "client port: certificate")
	fs.StringVar(&ctls.KeyFile, "key-file", "", "client port: key")
	fs.StringVar(&ctls.TrustedCAFile, "trusted-ca-file", "", "client port: CA of client certificates")
	fs.BoolVar(&ctls.ClientCertAuth, "client-cert-auth", false, "client port: require a client certificate")
	fs.StringVar(&ptls.CertFile, "peer-cert-file", "", "peer port: certificate (server and client)")
	fs.StringVar(&ptls.KeyFile, "peer-key-file", "", "peer port: key")
	fs.StringVar(&ptls.TrustedCAFile, "peer-trusted-ca-file", "", "peer port: CA of the members (client certificates required, as etcd's --peer-client-cert-auth)")
	peerCN := fs.String("peer-cert-allowed-cn", "", "peer port: the members' common name, checked both ways")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || *dataDir == "" || *listenClient == "" || *listenPeer == "" || *initial == "" {
		return errors.New("etcd-member: --name, --data-dir, --listen-client, --listen-peer and --initial-cluster are required")
	}
	cu, err := url.Parse(*listenClient)
	if err != nil {
		return fmt.Errorf("--listen-client: %w", err)
	}
	pu, err := url.Parse(*listenPeer)
	if err != nil {
		return fmt.Errorf("--listen-peer: %w", err)
	}
	cfg := embed.NewConfig()
	cfg.Name = *name
	cfg.Dir = *dataDir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	if *listenClientHTTP != "" {
		hu, err := url.Parse(*listenClientHTTP)
		if err != nil {
			return fmt.Errorf("--listen-client-http: %w", err)
		}
		cfg.ListenClientHttpUrls = []url.URL{*hu}
	}
	cfg.ClientTLSInfo = ctls
	if ptls.TrustedCAFile != "" {
		ptls.ClientCertAuth = true
	}
	if *peerCN != "" {
		ptls.AllowedCNs = []string{*peerCN}
	}
	cfg.PeerTLSInfo = ptls
	cfg.InitialCluster = *initial
	cfg.InitialClusterToken = "raftlock-bench"
	cfg.ClusterState = embed.ClusterStateFlagNew
	cfg.LogOutputs = []string{"stderr"}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("etcd-member: %w", err)
	}
	defer e.Close()
	select {
	case <-ctx.Done():
		return nil
	case err := <-e.Err():
		return fmt.Errorf("etcd-member: %w", err)
	}
}
