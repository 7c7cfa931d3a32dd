package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// --spawn starts etcd members by re-executing its own binary
	// (os.Executable) as "etcd-member": in a test, that is this one.
	if len(os.Args) > 1 && os.Args[1] == "etcd-member" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := runEtcdMember(ctx, os.Args[2:], os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func TestParseFlagsDefaults(t *testing.T) {
	o, err := parseFlags([]string{"--spawn"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o.spawn || o.duration != 5*time.Second || o.ttl != 10*time.Second || o.sessions != 10000 || o.locks != 100000 {
		t.Fatalf("defaults: %+v", o)
	}
	if want := []int{1, 8, 64}; !reflect.DeepEqual(o.workers, want) {
		t.Fatalf("workers %v, want %v", o.workers, want)
	}
	if want := []string{wlUncontended, wlContended, wlKeepalive}; !reflect.DeepEqual(o.workloads, want) {
		t.Fatalf("workloads %v, want %v", o.workloads, want)
	}
	if o.rounds != 1 {
		t.Fatalf("rounds %d, want 1", o.rounds)
	}
}

func TestParseFlagsRounds(t *testing.T) {
	for _, args := range [][]string{
		{"--spawn", "--rounds", "3"},
		{"--spawn", "--rounds=3", "--json"},
		{"--target", "etcd", "--endpoints", "http://127.0.0.1:2379", "--rounds", "3", "--markdown"},
	} {
		o, err := parseFlags(args, io.Discard)
		if err != nil || o.rounds != 3 {
			t.Fatalf("parseFlags(%q) = %+v, %v; want rounds 3", args, o, err)
		}
	}
	for _, tc := range []struct {
		rounds string
		want   string
	}{
		{"0", "--rounds 0: must be at least 1"},
		{"-1", "--rounds -1: must be at least 1"},
		{"x", "invalid value"},
		{"1.5", "invalid value"},
	} {
		_, err := parseFlags([]string{"--spawn", "--rounds", tc.rounds}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--rounds %s: %v, want an error with %q", tc.rounds, err, tc.want)
		}
	}
}

func TestParseFlagsTarget(t *testing.T) {
	o, err := parseFlags([]string{"--target", "etcd", "--endpoints", "http://127.0.0.1:2379, http://127.0.0.1:2479",
		"--workers", "2,4", "--duration", "300ms", "--workloads", "scale,lock-contended", "--json"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.target != "etcd" || !reflect.DeepEqual(o.endpoints, []string{"http://127.0.0.1:2379", "http://127.0.0.1:2479"}) {
		t.Fatalf("target %q endpoints %q", o.target, o.endpoints)
	}
	if !reflect.DeepEqual(o.workers, []int{2, 4}) || o.duration != 300*time.Millisecond || !o.jsonOut {
		t.Fatalf("options: %+v", o)
	}
	// Workloads run in their fixed order, whatever the order given.
	if want := []string{wlContended, wlScale}; !reflect.DeepEqual(o.workloads, want) {
		t.Fatalf("workloads %v, want %v", o.workloads, want)
	}
	// --unbatched measures a running raftlock cluster's REST path too.
	if o, err = parseFlags([]string{"--target", "raftlock", "--endpoints", "http://127.0.0.1:7070", "--unbatched"}, io.Discard); err != nil || !o.unbatched {
		t.Fatalf("--target raftlock --unbatched: %+v, %v", o, err)
	}
	o, err = parseFlags([]string{"--spawn", "--workloads", "all"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.workloads, allWorkloads) {
		t.Fatalf("all: %v", o.workloads)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--target"},
		{[]string{"--target", "zookeeper", "--endpoints", "http://127.0.0.1:1"}, "--target"},
		{[]string{"--target", "raftlock"}, "--endpoints"},
		{[]string{"--target", "raftlock", "--endpoints", "http://10.1.2.3:7070"}, "loopback"},
		{[]string{"--target", "raftlock", "--endpoints", "127.0.0.1:7070"}, "http://"},
		{[]string{"--spawn", "--target", "etcd"}, "--spawn"},
		{[]string{"--spawn", "--workers", "1,x"}, "--workers"},
		{[]string{"--spawn", "--workers", "0"}, "--workers"},
		{[]string{"--spawn", "--workers", "8,8"}, "appears twice"},
		{[]string{"--spawn", "--workloads", "lock"}, "unknown workload"},
		{[]string{"--spawn", "--duration", "0s"}, "--duration"},
		{[]string{"--spawn", "--ttl", "500ms"}, "--ttl"},
		{[]string{"--spawn", "--json", "--markdown"}, "exclude"},
		{[]string{"--spawn", "extra"}, "unexpected"},
		{[]string{"--target", "etcd", "--endpoints", "http://127.0.0.1:1", "--raftlockd", "/bin/true"}, "--raftlockd"},
		{[]string{"--target", "etcd", "--endpoints", "http://127.0.0.1:1", "--unbatched"}, "--unbatched"},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseFlags(%q) = %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

func TestParseFlagsBaseline(t *testing.T) {
	o, err := parseFlags([]string{"--spawn", "--baseline-raftlockd", "/tmp/old", "--baseline-per-session-keepalives", "--keepalive-clients", "2", "--leader-cpuprofile-dir", "/tmp/p"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.baseline != "/tmp/old" || !o.baselinePerSess || o.keepaliveClients != 2 || o.leaderProfiles != "/tmp/p" {
		t.Fatalf("options: %+v", o)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--target", "raftlock", "--endpoints", "http://127.0.0.1:1", "--baseline-raftlockd", "/x"}, "only used with --spawn"},
		{[]string{"--target", "raftlock", "--endpoints", "http://127.0.0.1:1", "--leader-cpuprofile-dir", "/x"}, "only used with --spawn"},
		{[]string{"--spawn", "--baseline-per-session-keepalives"}, "needs --baseline-raftlockd"},
		{[]string{"--spawn", "--keepalive-clients", "0"}, "--keepalive-clients"},
		{[]string{"--target", "raftlock", "--endpoints", "http://127.0.0.1:1", "--member-gomaxprocs", "1"}, "only used with --spawn"},
		{[]string{"--spawn", "--member-gomaxprocs", "-1"}, "--member-gomaxprocs"},
	} {
		if _, err := parseFlags(tc.args, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseFlags(%q) = %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

// TestStartReadyRetriesAPortTakenMeanwhile: a member that exits because
// its port was taken between freePorts and its bind makes startReady start
// the cluster again (its directories removed), at most 3 times in all;
// another failure is not retried.
func TestStartReadyRetriesAPortTakenMeanwhile(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	newCluster := func(script string) *cluster {
		d := filepath.Join(dir, fmt.Sprintf("m-%d", len(script))) // a directory per scenario
		return &cluster{target: "t", members: []*member{{
			name: "m-1", bin: "/bin/sh", args: []string{"-c", script},
			clientURL: "http://127.0.0.1:1", probeURL: "http://127.0.0.1:1", probe: http.DefaultClient,
			dataDir: filepath.Join(d, "data"), logPath: filepath.Join(d, "m.log"),
		}}}
	}
	starts := 0
	_, err := startReady(ctx, func() (*cluster, error) {
		starts++
		c := newCluster("echo 'listen tcp 127.0.0.1:1: bind: address already in use'; exit 1")
		return c, c.start()
	})
	if err == nil || starts != 3 || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("%d starts, error %v; want 3 starts and the bind error", starts, err)
	}
	starts = 0
	_, err = startReady(ctx, func() (*cluster, error) {
		starts++
		c := newCluster("echo 'some other failure'; exit 1")
		return c, c.start()
	})
	if err == nil || starts != 1 {
		t.Fatalf("%d starts, error %v; want 1 start and its error", starts, err)
	}
}

// TestMemberEnv: a member's env (--member-gomaxprocs) reaches its
// process, on top of this process's environment.
func TestMemberEnv(t *testing.T) {
	t.Setenv("RAFTLOCK_BENCH_INHERITED", "yes")
	dir := t.TempDir()
	m := &member{
		name:    "env",
		bin:     "/bin/sh",
		args:    []string{"-c", `echo "$GOMAXPROCS $RAFTLOCK_BENCH_INHERITED"`},
		logPath: filepath.Join(dir, "log"),
		env:     []string{"GOMAXPROCS=1"},
	}
	if err := m.start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the member did not exit")
	}
	out, err := os.ReadFile(m.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "1 yes" {
		t.Fatalf("the member saw %q, want %q", got, "1 yes")
	}
}
