package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The workloads.
const (
	wlUncontended = "lock-uncontended"
	wlContended   = "lock-contended"
	wlElection    = "election"
	wlKeepalive   = "keepalive"
	wlScale       = "scale"
	wlSemaphore   = "semaphore"
	wlRWLock      = "rwlock"
)

// allWorkloads lists the workloads in the order they run.
var allWorkloads = []string{wlUncontended, wlContended, wlElection, wlSemaphore, wlRWLock, wlKeepalive, wlScale}

// hasWorkers reports whether workload runs once per worker count.
func hasWorkers(workload string) bool {
	return workload == wlUncontended || workload == wlContended || workload == wlElection ||
		workload == wlSemaphore || workload == wlRWLock
}

// semaphoreLimit is the limit of the semaphore workload's semaphore.
const semaphoreLimit = 4

// rwlockSharedPercent is the share of the rwlock workload's cycles that
// take the lock shared (the others take it exclusive).
const rwlockSharedPercent = 90

// errUnsupported is returned by a Worker for a primitive its target does
// not have (etcd has no semaphore recipe): the cell is left out for that
// target.
var errUnsupported = errors.New("not supported by this target")

// benchConfig holds the knobs of the workloads.
type benchConfig struct {
	duration          time.Duration // of a cycle cell
	ttl               time.Duration // of every session
	sessions          int           // keepalive: sessions kept alive
	keepaliveDuration time.Duration // keepalive: measurement window
	locks             int           // scale: held locks
	openers           int           // keepalive and scale: concurrent openers
	progress          io.Writer     // progress lines; nil for none
	profileDir        string        // "": no leader CPU profiles
	// round and rounds: this run is round round (from 1) of rounds of a
	// cycle cell, for progress lines and profile names; round is 0 when
	// the cell runs once.
	round, rounds int
}

// roundSuffix returns " round=2/3" for a run that is one of several
// rounds, "" otherwise.
func (c benchConfig) roundSuffix() string {
	if c.round == 0 {
		return ""
	}
	return fmt.Sprintf(" round=%d/%d", c.round, c.rounds)
}

// baseTarget is the name of the baseline raftlock target
// (--baseline-raftlockd).
const baseTarget = "raftlock-base"

// unbatchedTarget is the name of the raftlock target whose SDK sends every
// lock request alone (--unbatched), on the same cluster as raftlock.
const unbatchedTarget = "raftlock-unbatched"

// grace bounds how long after the end of a cell a cycle still in progress
// may take before it is cancelled.
const grace = 30 * time.Second

// closeTimeout bounds the closing of a cell's sessions.
const closeTimeout = 60 * time.Second

// cellSeq makes lock and election names unique per cell.
var cellSeq atomic.Int64

// runCell runs one cell: workload against t with workers workers (ignored
// by keepalive and scale). cl is t's spawned cluster, nil when the
// cluster was not spawned (then process metrics are not measured).
func runCell(ctx context.Context, t Target, cl *cluster, workload string, workers int, cfg benchConfig) (result, error) {
	seq := cellSeq.Add(1)
	switch workload {
	case wlUncontended:
		return runCycles(ctx, t, cl, workload, workers, cfg, cycleOps{
			acquireKey: "acquire", releaseKey: "release",
			acquire: func(ctx context.Context, w Worker, i int) error {
				return w.Lock(ctx, fmt.Sprintf("bench-%d/u/%d", seq, i))
			},
			release: func(ctx context.Context, w Worker, i int) error {
				return w.Unlock(ctx, fmt.Sprintf("bench-%d/u/%d", seq, i))
			},
		})
	case wlContended:
		name := fmt.Sprintf("bench-%d/contended", seq)
		return runCycles(ctx, t, cl, workload, workers, cfg, cycleOps{
			acquireKey: "acquire", releaseKey: "release",
			acquire: func(ctx context.Context, w Worker, _ int) error { return w.Lock(ctx, name) },
			release: func(ctx context.Context, w Worker, _ int) error { return w.Unlock(ctx, name) },
		})
	case wlElection:
		return runCycles(ctx, t, cl, workload, workers, cfg, cycleOps{
			acquireKey: "campaign", releaseKey: "resign",
			acquire: func(ctx context.Context, w Worker, i int) error {
				return w.Campaign(ctx, fmt.Sprintf("bench-%d/e/%d", seq, i), fmt.Sprintf("worker-%d", i))
			},
			release: func(ctx context.Context, w Worker, i int) error {
				return w.Resign(ctx, fmt.Sprintf("bench-%d/e/%d", seq, i))
			},
		})
	case wlSemaphore:
		// One semaphore of limit semaphoreLimit: up to 4 workers hold a
		// permit at once, the others queue.
		if !t.HasSemaphores() {
			return result{}, errUnsupported
		}
		if err := t.Settle(ctx); err != nil {
			return result{}, err
		}
		name := fmt.Sprintf("bench-%d/semaphore", seq)
		return runCycles(ctx, t, cl, workload, workers, cfg, cycleOps{
			acquireKey: "acquire", releaseKey: "release",
			acquire: func(ctx context.Context, w Worker, _ int) error { return w.Acquire(ctx, name, semaphoreLimit) },
			release: func(ctx context.Context, w Worker, _ int) error { return w.Release(ctx, name) },
		})
	case wlRWLock:
		// One read-write lock: each worker's cycles are shared 9 times
		// in 10 (by a fixed pattern per worker, shifted by its index, so
		// that every run does the same mix), exclusive otherwise.
		if err := t.Settle(ctx); err != nil {
			return result{}, err
		}
		name := fmt.Sprintf("bench-%d/rwlock", seq)
		cycle := make([]int, workers) // worker i's cycles so far (only worker i touches it)
		shared := func(i int) bool { return (cycle[i]+i)%100 < rwlockSharedPercent }
		return runCycles(ctx, t, cl, workload, workers, cfg, cycleOps{
			acquireKey: "acquire", releaseKey: "release",
			acquire: func(ctx context.Context, w Worker, i int) error { return w.RWLock(ctx, name, shared(i)) },
			release: func(ctx context.Context, w Worker, i int) error {
				err := w.RWUnlock(ctx, name, shared(i))
				cycle[i]++
				return err
			},
		})
	case wlKeepalive:
		return runKeepalive(ctx, t, cl, cfg)
	case wlScale:
		return runScale(ctx, t, cl, cfg, seq)
	}
	return result{}, fmt.Errorf("unknown workload %q", workload)
}

// cycleOps is one kind of cycle: acquire then release, by worker i.
type cycleOps struct {
	acquireKey, releaseKey string
	acquire, release       func(ctx context.Context, w Worker, i int) error
}

// openWorkers opens n workers concurrently (at most openers at a time).
// On an error it closes those it opened.
func openWorkers(ctx context.Context, t Target, n, openers int, ttl time.Duration) ([]Worker, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	ws := make([]Worker, n)
	errs := make([]error, n)
	parallel(n, openers, func(i int) { ws[i], errs[i] = t.NewWorker(ctx, ttl) })
	if err := errors.Join(errs...); err != nil {
		closeWorkers(ctx, ws, openers)
		return nil, fmt.Errorf("open sessions: %w", err)
	}
	return ws, nil
}

// closeWorkers closes the non-nil workers, at most conc at a time,
// bounded by closeTimeout even if ctx has ended. It returns how many
// failed to close.
func closeWorkers(ctx context.Context, ws []Worker, conc int) int {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	var failed atomic.Int64
	parallel(len(ws), conc, func(i int) {
		if ws[i] != nil && ws[i].Close(ctx) != nil {
			failed.Add(1)
		}
	})
	return int(failed.Load())
}

// parallel calls f(0..n-1) from at most conc goroutines and waits for all.
func parallel(n, conc int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(max(conc, 1), n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}

// progress writes a progress line until the returned stop is called;
// line returns its text. On a terminal the line is rewritten every second;
// otherwise a new line is written every 5 seconds. stop writes the final
// line, ended by a newline.
func progress(w io.Writer, line func(elapsed time.Duration) string) (stop func(final string)) {
	if w == nil {
		return func(string) {}
	}
	tty := isTerminal(w)
	every, format := 5*time.Second, "%s\n"
	if tty {
		every, format = time.Second, "\r%-100s"
	}
	start := time.Now()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				fmt.Fprintf(w, format, line(time.Since(start)))
			}
		}
	}()
	return func(final string) {
		close(done)
		<-finished
		if tty {
			fmt.Fprintf(w, "\r%-100s\n", final)
		} else {
			fmt.Fprintln(w, final)
		}
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// runCycles runs workers workers, each with its own session, doing
// acquire+release cycles for cfg.duration, and reports cycles/s and the
// latencies. A cycle started before the end finishes (within grace).
func runCycles(ctx context.Context, t Target, cl *cluster, workload string, workers int, cfg benchConfig, ops cycleOps) (result, error) {
	res := result{Target: t.Name(), Workload: workload, Workers: workers, Duration: cfg.duration}
	ws, err := openWorkers(ctx, t, workers, cfg.openers, cfg.ttl)
	if err != nil {
		return res, err
	}
	var cycles, errCount atomic.Int64
	var firstErr atomic.Value
	acq := make([]latency, workers)
	rel := make([]latency, workers)
	cpu0 := cpuSnapshot(ctx, t, cl)
	prefix := fmt.Sprintf("%s-%s-%d", t.Name(), workload, workers)
	if cfg.round > 0 {
		prefix += fmt.Sprintf("-round%d", cfg.round)
	}
	profDone := leaderProfile(ctx, t, cl, cfg, prefix)
	start := time.Now()
	end := start.Add(cfg.duration)
	opCtx, cancel := context.WithDeadline(ctx, end.Add(grace))
	defer cancel()
	label := fmt.Sprintf("%s %s workers=%d%s", t.Name(), workload, workers, cfg.roundSuffix())
	stop := progress(cfg.progress, func(el time.Duration) string {
		return fmt.Sprintf("%s: %.0fs/%v cycles=%d errors=%d", label, el.Seconds(), cfg.duration, cycles.Load(), errCount.Load())
	})
	fail := func(err error) {
		errCount.Add(1)
		firstErr.CompareAndSwap(nil, err)
		// Do not spin on a failing service.
		select {
		case <-opCtx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for time.Now().Before(end) && opCtx.Err() == nil {
				t0 := time.Now()
				if err := ops.acquire(opCtx, ws[i], i); err != nil {
					fail(err)
					continue
				}
				t1 := time.Now()
				acq[i].add(t1.Sub(t0))
				if err := ops.release(opCtx, ws[i], i); err != nil {
					fail(err)
					continue
				}
				rel[i].add(time.Since(t1))
				cycles.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1 := cpuSnapshot(ctx, t, cl)
	if err := <-profDone; err != nil && cfg.progress != nil {
		fmt.Fprintf(cfg.progress, "  leader profile: %v\n", err)
	}
	n := cycles.Load()
	stop(fmt.Sprintf("%s: %d cycles in %.2fs (%.0f/s), %d errors", label, n, elapsed.Seconds(), float64(n)/elapsed.Seconds(), errCount.Load()))
	if e, ok := firstErr.Load().(error); ok && cfg.progress != nil {
		fmt.Fprintf(cfg.progress, "  first error: %v\n", e)
	}
	failedClose := closeWorkers(ctx, ws, cfg.openers)

	var a, r latency
	for i := range workers {
		a.merge(&acq[i])
		r.merge(&rel[i])
	}
	res.add("cycles", float64(n), kindCount)
	res.add("cycles_per_s", float64(n)/elapsed.Seconds(), kindRate)
	res.addLatency(ops.acquireKey, a.summarize())
	res.addLatency(ops.releaseKey, r.summarize())
	res.add("errors", float64(errCount.Load()+int64(failedClose)), kindCount)
	cpu1.addMetrics(&res, cpu0, elapsed, n)
	return res, ctx.Err()
}

// cpuUse is the CPU time used so far by the members of a spawned cluster
// (the leader's apart) and by this process (the client side).
type cpuUse struct {
	ok                    bool
	leader, members, self time.Duration
}

// cpuSnapshot reads the CPU times of cl's members and of this process;
// the result is not ok without a spawned cluster or when /proc fails.
func cpuSnapshot(ctx context.Context, t Target, cl *cluster) cpuUse {
	if cl == nil {
		return cpuUse{}
	}
	leader, err := leaderMember(ctx, t, cl)
	if err != nil {
		return cpuUse{}
	}
	u := cpuUse{ok: true}
	for _, m := range cl.members {
		ps, err := readProcStat(m.pid())
		if err != nil {
			return cpuUse{}
		}
		u.members += ps.cpu
		if m == leader {
			u.leader = ps.cpu
		}
	}
	ps, err := readProcStat(os.Getpid())
	if err != nil {
		return cpuUse{}
	}
	u.self = ps.cpu
	return u
}

// addMetrics adds the CPU used between u0 and u over elapsed, with n
// cycles: leader and cluster CPU in percent of one core, cluster CPU per
// cycle, and the client's CPU. /proc counts in 10ms ticks, so short cells
// are coarse. Nothing is added if either snapshot is not ok.
func (u cpuUse) addMetrics(r *result, u0 cpuUse, elapsed time.Duration, n int64) {
	if !u.ok || !u0.ok || elapsed <= 0 {
		return
	}
	pct := func(d time.Duration) float64 { return 100 * float64(d) / float64(elapsed) }
	r.add("leader_cpu_pct", pct(u.leader-u0.leader), kindPercent)
	r.add("cluster_cpu_pct", pct(u.members-u0.members), kindPercent)
	if n > 0 {
		r.add("cluster_cpu_ms_per_cycle", ms(u.members-u0.members)/float64(n), kindMillis)
	}
	r.add("client_cpu_pct", pct(u.self-u0.self), kindPercent)
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// leaderMember returns the spawned member that leads, or nil (with the
// error) when it cannot tell.
func leaderMember(ctx context.Context, t Target, cl *cluster) (*member, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ep, err := t.Leader(ctx)
	if err != nil {
		return nil, fmt.Errorf("find leader: %w", err)
	}
	m := cl.member(ep)
	if m == nil || m.pid() == 0 {
		return nil, fmt.Errorf("leader %s is not a running spawned member", ep)
	}
	return m, nil
}

// runKeepalive opens cfg.sessions sessions with cfg.ttl, lets the client
// library keep them alive for cfg.keepaliveDuration, and measures, on the
// leader's process when the cluster was spawned: CPU, bytes written to
// storage, data dir growth, RSS growth; and, from the cluster's status,
// Raft entries per second.
func runKeepalive(ctx context.Context, t Target, cl *cluster, cfg benchConfig) (result, error) {
	res := result{Target: t.Name(), Workload: wlKeepalive, Duration: cfg.keepaliveDuration}
	label := fmt.Sprintf("%s keepalive sessions=%d ttl=%v", t.Name(), cfg.sessions, cfg.ttl)
	var leader *member
	var rss0 int64
	if cl != nil {
		var err error
		if leader, err = leaderMember(ctx, t, cl); err != nil {
			return res, err
		}
		rss0, _ = readRSS(leader.pid())
	}

	// Open the sessions.
	sessions := make([]Session, cfg.sessions)
	var opened, openErrs atomic.Int64
	var firstErr atomic.Value
	openStart := time.Now()
	stop := progress(cfg.progress, func(el time.Duration) string {
		return fmt.Sprintf("%s: opening %d/%d (%.0fs) errors=%d", label, opened.Load(), cfg.sessions, el.Seconds(), openErrs.Load())
	})
	openCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	parallel(cfg.sessions, cfg.openers, func(i int) {
		if openCtx.Err() != nil {
			return
		}
		s, err := t.OpenSession(openCtx, cfg.ttl)
		if err != nil {
			openErrs.Add(1)
			firstErr.CompareAndSwap(nil, err)
			return
		}
		sessions[i] = s
		opened.Add(1)
	})
	cancel()
	openTime := time.Since(openStart)
	stop(fmt.Sprintf("%s: opened %d in %.2fs, %d errors", label, opened.Load(), openTime.Seconds(), openErrs.Load()))
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		parallel(len(sessions), cfg.openers, func(i int) {
			if sessions[i] != nil {
				_ = sessions[i].Close(ctx)
			}
		})
	}()
	if e, ok := firstErr.Load().(error); ok && cfg.progress != nil {
		fmt.Fprintf(cfg.progress, "  first error: %v\n", e)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}

	// Measure.
	var ps0 procStat
	var dir0 int64
	var err error
	if leader != nil {
		if ps0, err = readProcStat(leader.pid()); err != nil {
			return res, err
		}
		dir0, _ = dirSize(leader.dataDir)
	}
	statusCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	idx0, idxErr0 := t.RaftIndex(statusCtx)
	cancel()
	ka0, rn0 := t.KeepAlivesSent()
	self0, selfErr0 := readProcStat(os.Getpid())
	start := time.Now()
	stop = progress(cfg.progress, func(el time.Duration) string {
		return fmt.Sprintf("%s: measuring %.0fs/%v", label, el.Seconds(), cfg.keepaliveDuration)
	})
	err = sleepCtx(ctx, cfg.keepaliveDuration)
	elapsed := time.Since(start)
	ka1, rn1 := t.KeepAlivesSent()
	self1, selfErr1 := readProcStat(os.Getpid())
	statusCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	idx1, idxErr1 := t.RaftIndex(statusCtx)
	cancel()
	stop(fmt.Sprintf("%s: measured %.2fs", label, elapsed.Seconds()))
	if err != nil {
		return res, err
	}
	lost := 0
	for _, s := range sessions {
		if s == nil {
			continue
		}
		select {
		case <-s.Done():
			lost++
		default:
		}
	}

	sec := elapsed.Seconds()
	res.add("sessions", float64(opened.Load()), kindCount)
	res.add("open_s", openTime.Seconds(), kindSeconds)
	res.add("open_errors", float64(openErrs.Load()), kindCount)
	if leader != nil {
		ps1, err := readProcStat(leader.pid())
		if err != nil {
			return res, err
		}
		dir1, _ := dirSize(leader.dataDir)
		rss1, _ := readRSS(leader.pid())
		res.add("leader_cpu_pct", 100*float64(ps1.cpu-ps0.cpu)/float64(elapsed), kindPercent)
		res.add("leader_disk_write_per_s", float64(ps1.writeBytes-ps0.writeBytes)/sec, kindBytes)
		res.add("leader_datadir_growth_per_s", float64(dir1-dir0)/sec, kindBytes)
		// RSS before the sessions were opened, and with them: the
		// difference is not only the sessions' memory (GC timing, what
		// earlier cells left behind), so both are shown.
		res.add("leader_rss_before_open", float64(rss0), kindBytes)
		res.add("leader_rss", float64(rss1), kindBytes)
		if now, err := leaderMember(ctx, t, cl); err != nil || now != leader {
			res.add("leader_changed", 1, kindCount)
		}
	}
	var entries float64
	if idxErr0 == nil && idxErr1 == nil {
		entries = float64(idx1-idx0) / sec
		res.add("raft_entries_per_s", entries, kindRate)
	}
	if ka0 >= 0 {
		kas := float64(ka1-ka0) / sec
		rns := float64(rn1-rn0) / sec
		res.add("keepalive_requests_per_s", kas, kindRate)
		res.add("renewals_per_s", rns, kindRate)
		if kas > 0 {
			res.add("renewals_per_request", rns/kas, kindRatio)
		}
		if entries > 0 {
			res.add("renewals_per_entry", rns/entries, kindRatio)
		}
	}
	if selfErr0 == nil && selfErr1 == nil {
		res.add("client_cpu_pct", 100*float64(self1.cpu-self0.cpu)/float64(elapsed), kindPercent)
	}
	res.add("sessions_lost", float64(lost), kindCount)
	return res, nil
}

// scaleSessions is how many sessions share the held locks of scale.
const scaleSessions = 256

// runScale creates cfg.locks held locks (distinct names, spread over
// scaleSessions sessions) and reports the creation rate and, when the
// cluster was spawned: the RSS of each member, the leader's snapshot
// directory size, and the time a restarted follower takes until /readyz
// answers 200.
func runScale(ctx context.Context, t Target, cl *cluster, cfg benchConfig, seq int64) (result, error) {
	res := result{Target: t.Name(), Workload: wlScale}
	label := fmt.Sprintf("%s scale locks=%d", t.Name(), cfg.locks)
	ws, err := openWorkers(ctx, t, min(scaleSessions, cfg.locks), cfg.openers, cfg.ttl)
	if err != nil {
		return res, err
	}
	defer closeWorkers(ctx, ws, cfg.openers)
	var held, errCount atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	stop := progress(cfg.progress, func(el time.Duration) string {
		return fmt.Sprintf("%s: %d held (%.0fs) errors=%d", label, held.Load(), el.Seconds(), errCount.Load())
	})
	opCtx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	lat := make([]time.Duration, cfg.locks)
	began := make([]time.Duration, cfg.locks) // since start
	parallel(cfg.locks, cfg.openers, func(i int) {
		if opCtx.Err() != nil {
			return
		}
		t0 := time.Now()
		began[i] = t0.Sub(start)
		if err := ws[i%len(ws)].TryLock(opCtx, fmt.Sprintf("bench-%d/scale/%d", seq, i)); err != nil {
			errCount.Add(1)
			firstErr.CompareAndSwap(nil, err)
			return
		}
		lat[i] = time.Since(t0)
		held.Add(1)
	})
	cancel()
	createTime := time.Since(start)
	res.Duration = createTime
	stop(fmt.Sprintf("%s: %d held in %.2fs, %d errors", label, held.Load(), createTime.Seconds(), errCount.Load()))
	if e, ok := firstErr.Load().(error); ok && cfg.progress != nil {
		fmt.Fprintf(cfg.progress, "  first error: %v\n", e)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.add("locks_held", float64(held.Load()), kindCount)
	res.add("create_per_s", float64(held.Load())/createTime.Seconds(), kindRate)
	var created latency
	for _, d := range lat {
		if d > 0 {
			created.add(d)
		}
	}
	res.addLatency("create", created.summarize())
	res.add("errors", float64(errCount.Load()), kindCount)
	if cfg.progress != nil {
		printSlowest(cfg.progress, label, start, lat, began, 5)
	}
	if cl == nil {
		return res, nil
	}
	leader, err := leaderMember(ctx, t, cl)
	if err != nil {
		return res, err
	}
	var maxRSS int64
	var follower *member
	for _, m := range cl.members {
		rss, err := readRSS(m.pid())
		if err != nil {
			return res, err
		}
		maxRSS = max(maxRSS, rss)
		if m == leader {
			res.add("leader_rss", float64(rss), kindBytes)
		} else if follower == nil {
			follower = m
		}
	}
	res.add("max_member_rss", float64(maxRSS), kindBytes)
	if cl.target != "etcd" {
		if st, err := snapshotStats(leader.logPath); err == nil && st.count > 0 {
			res.add("snapshots_taken", float64(st.count), kindCount)
			res.add("last_snapshot_bytes", float64(st.lastBytes), kindBytes)
			res.add("last_snapshot_capture_ms", st.lastCaptureMS, kindMillis)
			res.add("last_snapshot_encode_ms", st.lastEncodeMS, kindMillis)
			res.add("last_snapshot_write_ms", st.lastWriteMS, kindMillis)
			res.add("last_snapshot_record_ms", st.lastRecordMS, kindMillis)
			res.add("last_snapshot_stall_ms", st.lastStallMS, kindMillis)
			res.add("max_snapshot_stall_ms", st.maxStallMS, kindMillis)
			res.add("max_snapshot_capture_ms", st.maxCaptureMS, kindMillis)
		}
	}
	if n, err := dirSize(cl.snapDir(leader)); err == nil {
		res.add("leader_snap_dir", float64(n), kindBytes)
	}
	if n, err := dirSize(leader.dataDir); err == nil {
		res.add("leader_data_dir", float64(n), kindBytes)
	}
	// Restart a follower: SIGTERM, wait for it to exit, start it again,
	// time until its /readyz answers 200.
	follower.stop(syscall.SIGTERM, 30*time.Second)
	t0 := time.Now()
	if err := follower.start(); err != nil {
		return res, err
	}
	if err := follower.waitReady(ctx, 2*time.Minute); err != nil {
		return res, err
	}
	res.add("restart_to_ready_s", time.Since(t0).Seconds(), kindSeconds)
	return res, nil
}

// leaderProfile starts fetching CPU profiles of cl's members over
// cfg.duration from their pprof listeners, written to cfg.profileDir as
// prefix-leader.pprof and prefix-follower-<member>.pprof. The channel gets
// the outcome (nil at once when no profile is wanted or the members have
// no pprof listener).
func leaderProfile(ctx context.Context, t Target, cl *cluster, cfg benchConfig, prefix string) <-chan error {
	done := make(chan error, 1)
	if cfg.profileDir == "" || cl == nil {
		done <- nil
		return done
	}
	leader, err := leaderMember(ctx, t, cl)
	if err != nil {
		done <- err
		return done
	}
	secs := max(1, int(cfg.duration.Round(time.Second)/time.Second))
	var wg sync.WaitGroup
	errs := make([]error, len(cl.members))
	for i, m := range cl.members {
		if m.pprofURL == "" {
			continue
		}
		file := prefix + "-follower-" + m.name + ".pprof"
		if m == leader {
			file = prefix + "-leader.pprof"
		}
		wg.Go(func() {
			errs[i] = fetchProfile(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", m.pprofURL, secs), filepath.Join(cfg.profileDir, file))
		})
	}
	go func() {
		wg.Wait()
		done <- errors.Join(errs...)
	}()
	return done
}

// fetchProfile GETs url into the file at path.
func fetchProfile(ctx context.Context, url, path string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// snapStats is what a raftlockd log says of the snapshots it saved.
type snapStats struct {
	count     int
	lastBytes int64
	// lastCaptureMS and lastRecordMS are the loop's part of the last
	// snapshot; lastEncodeMS and lastWriteMS ran on another goroutine.
	// lastStallMS is the loop's part (capture + record; the whole took_ms
	// of raftlockd versions that snapshotted on the loop).
	lastCaptureMS, lastEncodeMS, lastWriteMS, lastRecordMS float64
	lastStallMS, maxStallMS                                float64
	maxCaptureMS                                           float64
}

var (
	snapLine  = regexp.MustCompile(`msg="snapshot saved"[^\n]*`)
	snapField = regexp.MustCompile(`\b(bytes|capture_ms|encode_ms|write_ms|record_ms|took_ms)=(\d+(?:\.\d+)?)`)
)

// snapshotStats reads the "snapshot saved" lines of the raftlockd log at
// path: how many, the last one's size and times, and the longest stall of
// the loop.
func snapshotStats(path string) (snapStats, error) {
	var st snapStats
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	for _, line := range snapLine.FindAll(b, -1) {
		f := map[string]float64{}
		for _, m := range snapField.FindAllSubmatch(line, -1) {
			f[string(m[1])], _ = strconv.ParseFloat(string(m[2]), 64)
		}
		st.count++
		st.lastBytes = int64(f["bytes"])
		st.lastCaptureMS, st.lastEncodeMS, st.lastWriteMS, st.lastRecordMS = f["capture_ms"], f["encode_ms"], f["write_ms"], f["record_ms"]
		st.lastStallMS = f["capture_ms"] + f["record_ms"]
		if took, ok := f["took_ms"]; ok {
			st.lastStallMS = took
		}
		st.maxStallMS = max(st.maxStallMS, st.lastStallMS)
		st.maxCaptureMS = max(st.maxCaptureMS, f["capture_ms"])
	}
	return st, nil
}

// printSlowest writes the slowest operations of lat (began: their start,
// since start), at most n and one per second of starts (the slowest of a
// stall stands for it), with their wall-clock times, to match against the
// members' logs (snapshots, elections, GC).
func printSlowest(w io.Writer, label string, start time.Time, lat, began []time.Duration, n int) {
	idx := make([]int, 0, len(lat))
	for i, d := range lat {
		if d > 0 {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(lat[b], lat[a]) })
	var shown []time.Duration
	for _, i := range idx {
		if len(shown) == n {
			break
		}
		if slices.ContainsFunc(shown, func(b time.Duration) bool { return (b - began[i]).Abs() < time.Second }) {
			continue
		}
		shown = append(shown, began[i])
		at := start.Add(began[i])
		fmt.Fprintf(w, "  %s: slow: began %s (+%.3fs), took %v\n", label, at.UTC().Format("15:04:05.000"), began[i].Seconds(), lat[i].Round(time.Millisecond))
	}
}
