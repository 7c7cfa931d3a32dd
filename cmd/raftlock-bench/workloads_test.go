package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/testserver"
)

func TestLockUncontendedAgainstTestserver(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	tgt, err := newRaftlockTarget([]string{srv.URL}, 32)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	cfg := benchConfig{duration: 300 * time.Millisecond, ttl: 2 * time.Second, openers: 4}
	res, err := runCell(context.Background(), tgt, nil, wlUncontended, 2, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Target != "raftlock" || res.Workload != wlUncontended || res.Workers != 2 {
		t.Fatalf("result %+v", res)
	}
	cycles, _ := res.get("cycles")
	errs, ok := res.get("errors")
	if cycles <= 0 || !ok || errs != 0 {
		t.Fatalf("cycles %v errors %v: %+v", cycles, errs, res.Metrics)
	}
	if p50, _ := res.get("acquire_p50_ms"); p50 <= 0 {
		t.Fatalf("acquire p50 %v", p50)
	}
}

func TestReadProc(t *testing.T) {
	ps, err := readProcStat(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if ps.cpu < 0 || ps.writeBytes < 0 {
		t.Fatalf("proc stat %+v", ps)
	}
	rss, err := readRSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Fatalf("rss %d, %v", rss, err)
	}
}

func TestSnapshotStats(t *testing.T) {
	path := t.TempDir() + "/raftlockd.log"
	log := `time=2026-11-26T21:00:00Z level=INFO msg="raftlockd started" node_id=1
time=2026-11-26T21:00:01Z level=INFO msg="snapshot saved" node_id=1 index=10000 bytes=2048 encode_ms=3 took_ms=9
time=2026-11-26T21:00:02Z level=INFO msg="snapshot saved" node_id=1 index=20000 term=2 bytes=4096 capture_ms=2.5 encode_ms=7 write_ms=5 record_ms=1
time=2026-11-26T21:00:03Z level=INFO msg="snapshot saved" node_id=1 index=30000 term=2 bytes=4096 capture_ms=0.125 encode_ms=7 write_ms=5 record_ms=1
time=2026-11-26T21:00:04Z level=INFO msg="saved snapshot" node_id=1 index=20000 term=2
`
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := snapshotStats(path)
	if err != nil {
		t.Fatal(err)
	}
	// The old format's whole took_ms, then the new one's capture + record
	// (the capture in fractions of a millisecond).
	if st.count != 3 || st.lastBytes != 4096 || st.lastCaptureMS != 0.125 || st.lastEncodeMS != 7 || st.lastWriteMS != 5 ||
		st.lastRecordMS != 1 || st.lastStallMS != 1.125 || st.maxStallMS != 9 || st.maxCaptureMS != 2.5 {
		t.Fatalf("stats %+v", st)
	}
}

// The semaphore and rwlock workloads run against a real server: cycles,
// no errors. The semaphore workload is left out for a target without
// semaphores.
func TestPrimitiveWorkloadsAgainstTestserver(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	tgt, err := newRaftlockTarget([]string{srv.URL}, 32)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	cfg := benchConfig{duration: 300 * time.Millisecond, ttl: 2 * time.Second, openers: 8}
	for _, wl := range []string{wlSemaphore, wlRWLock} {
		res, err := runCell(context.Background(), tgt, nil, wl, 6, cfg)
		if err != nil {
			t.Fatalf("%s: %v", wl, err)
		}
		cycles, _ := res.get("cycles")
		errs, ok := res.get("errors")
		if cycles <= 0 || !ok || errs != 0 {
			t.Fatalf("%s: cycles %v errors %v: %+v", wl, cycles, errs, res.Metrics)
		}
	}
	if _, err := runCell(context.Background(), noSemaphores{tgt}, nil, wlSemaphore, 1, cfg); !errors.Is(err, errUnsupported) {
		t.Fatalf("semaphore workload on a target without semaphores: %v", err)
	}
}

// noSemaphores is a target that has no semaphores, as etcd.
type noSemaphores struct{ Target }

func (noSemaphores) HasSemaphores() bool { return false }

// printSlowest shows one operation per stall, the slowest first.
func TestPrintSlowest(t *testing.T) {
	start := time.Date(2026, 12, 5, 5, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	lat := []time.Duration{5 * ms, 900 * ms, 800 * ms, 0, 300 * ms, 7 * ms}
	began := []time.Duration{0, 10 * time.Second, 10*time.Second + 200*ms, 0, 20 * time.Second, 30 * time.Second}
	var b strings.Builder
	printSlowest(&b, "x", start, lat, began, 2)
	want := "  x: slow: began 05:00:10.000 (+10.000s), took 900ms\n  x: slow: began 05:00:20.000 (+20.000s), took 300ms\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
