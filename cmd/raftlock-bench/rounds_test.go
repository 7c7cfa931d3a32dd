package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/testserver"
)

func TestSpreadOf(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		name string
		xs   []float64
		want spread
	}{
		{"none", nil, spread{}},
		{"one", []float64{7}, spread{N: 1, Median: 7, Min: 7, Max: 7, Sum: 7}},
		// Odd N: the middle value, whatever the order given.
		{"odd", []float64{30, 10, 20}, spread{N: 3, Median: 20, Min: 10, Max: 30, Sum: 60}},
		{"odd5", []float64{5, 1, 4, 2, 100}, spread{N: 5, Median: 4, Min: 1, Max: 100, Sum: 112}},
		// Even N: the mean of the two middle values.
		{"even", []float64{4, 1, 3, 2}, spread{N: 4, Median: 2.5, Min: 1, Max: 4, Sum: 10}},
		{"two", []float64{10, 20}, spread{N: 2, Median: 15, Min: 10, Max: 20, Sum: 30}},
		// A round that could not measure the figure does not count.
		{"nan", []float64{nan, 3, inf, 1}, spread{N: 2, Median: 2, Min: 1, Max: 3, Sum: 4}},
		{"only nan", []float64{nan}, spread{}},
	} {
		xs := append([]float64(nil), tc.xs...)
		if got := spreadOf(xs); got != tc.want {
			t.Errorf("%s: spreadOf(%v) = %+v, want %+v", tc.name, tc.xs, got, tc.want)
		}
		for i := range xs {
			if xs[i] != tc.xs[i] && !math.IsNaN(xs[i]) {
				t.Errorf("%s: spreadOf changed its input: %v", tc.name, xs)
			}
		}
	}
}

func TestRoundRatios(t *testing.T) {
	rv := func(vs ...float64) []roundValue {
		var out []roundValue
		for i, v := range vs {
			out = append(out, roundValue{i + 1, v})
		}
		return out
	}
	// Round i over round i, not median over median: medians 300 and 100
	// would give 3, the per-round ratios 3, 2 and 2 give 2.
	num, den := rv(300, 200, 500), rv(100, 100, 250)
	if got := roundRatios(num, den); !reflect.DeepEqual(got, []float64{3, 2, 2}) {
		t.Fatalf("ratios %v", got)
	}
	if got := spreadOf(roundRatios(num, den)); got != (spread{N: 3, Median: 2, Min: 2, Max: 3, Sum: 7}) {
		t.Fatalf("odd: %+v", got)
	}
	// Even: the mean of the two middle ratios (2 and 3).
	num, den = rv(100, 300, 400, 800), rv(100, 100, 200, 200)
	if got := spreadOf(roundRatios(num, den)); got.Median != 2.5 || got.Min != 1 || got.Max != 4 {
		t.Fatalf("even: %+v", got)
	}
	// Pairs by round number, not by position; a round that one target
	// lacks or whose ratio is undefined (denominator 0) is left out.
	num = []roundValue{{1, 10}, {2, 20}, {3, 30}, {4, 40}}
	den = []roundValue{{2, 10}, {3, 0}, {1, 5}}
	if got := roundRatios(num, den); !reflect.DeepEqual(got, []float64{2, 2}) {
		t.Fatalf("paired %v", got)
	}
}

func TestSchedule(t *testing.T) {
	got := schedule(3, 2)
	want := []roundStep{{1, 0}, {1, 1}, {1, 2}, {2, 0}, {2, 1}, {2, 2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("schedule(3, 2) = %v, want %v", got, want)
	}
	if got := schedule(2, 1); !reflect.DeepEqual(got, []roundStep{{1, 0}, {1, 1}}) {
		t.Fatalf("schedule(2, 1) = %v", got)
	}
}

// nameTarget is a Target that only has a name: runRounds tests pass a
// fake cellRunner, which never calls the other methods.
type nameTarget struct{ name string }

var errFake = errors.New("fake target")

func (t nameTarget) Name() string                                              { return t.name }
func (nameTarget) Settle(context.Context) error                                { return nil }
func (nameTarget) HasSemaphores() bool                                         { return true }
func (nameTarget) NewWorker(context.Context, time.Duration) (Worker, error)    { return nil, errFake }
func (nameTarget) OpenSession(context.Context, time.Duration) (Session, error) { return nil, errFake }
func (nameTarget) Leader(context.Context) (string, error)                      { return "", errFake }
func (nameTarget) RaftIndex(context.Context) (uint64, error)                   { return 0, errFake }
func (nameTarget) KeepAlivesSent() (int64, int64)                              { return -1, -1 }
func (nameTarget) Close() error                                                { return nil }

func TestRunRoundsAlternates(t *testing.T) {
	envs := []env{{t: nameTarget{"raftlock"}}, {t: nameTarget{baseTarget}}, {t: nameTarget{"etcd"}}}
	var ran, emitted []string
	run := func(_ context.Context, tg Target, _ *cluster, wl string, n int, cfg benchConfig) (result, error) {
		ran = append(ran, fmt.Sprintf("%s %d/%d", tg.Name(), cfg.round, cfg.rounds))
		r := result{Target: tg.Name(), Workload: wl, Workers: n, Round: 99} // runRounds sets Round
		r.add("cycles_per_s", 1, kindRate)
		return r, nil
	}
	emit := func(r result) error {
		emitted = append(emitted, fmt.Sprintf("%s %d", r.Target, r.Round))
		return nil
	}
	res, err := runRounds(context.Background(), envs, wlUncontended, 8, 3, benchConfig{}, run, emit)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"raftlock 1/3", "raftlock-base 1/3", "etcd 1/3",
		"raftlock 2/3", "raftlock-base 2/3", "etcd 2/3",
		"raftlock 3/3", "raftlock-base 3/3", "etcd 3/3",
	}
	if !reflect.DeepEqual(ran, want) {
		t.Fatalf("ran\n%q\nwant\n%q", ran, want)
	}
	var got []string
	for _, r := range res {
		got = append(got, fmt.Sprintf("%s %d", r.Target, r.Round))
	}
	wantRes := []string{"raftlock 1", "raftlock-base 1", "etcd 1", "raftlock 2", "raftlock-base 2", "etcd 2", "raftlock 3", "raftlock-base 3", "etcd 3"}
	if !reflect.DeepEqual(got, wantRes) || !reflect.DeepEqual(emitted, wantRes) {
		t.Fatalf("results %q emitted %q, want %q", got, emitted, wantRes)
	}

	// One round: round 0 everywhere, as before rounds existed.
	ran = nil
	res, err = runRounds(context.Background(), envs[:1], wlScale, 0, 1, benchConfig{}, run, nil)
	if err != nil || len(res) != 1 || res[0].Round != 0 || !reflect.DeepEqual(ran, []string{"raftlock 0/0"}) {
		t.Fatalf("one round: %v %+v %q", err, res, ran)
	}

	// An error ends the cell and names target and round.
	calls := 0
	failing := func(ctx context.Context, tg Target, cl *cluster, wl string, n int, cfg benchConfig) (result, error) {
		if calls++; calls == 4 {
			return result{}, errFake
		}
		return run(ctx, tg, cl, wl, n, cfg)
	}
	res, err = runRounds(context.Background(), envs[:2], wlContended, 1, 3, benchConfig{}, failing, nil)
	if !errors.Is(err, errFake) || !strings.Contains(err.Error(), "raftlock-base lock-contended round 2") || len(res) != 3 {
		t.Fatalf("error: %v, %d results", err, len(res))
	}
}

// roundsResults returns synthetic results of a run with --rounds 3 in
// the order run produces them: lock-uncontended with 64 workers, three
// rounds alternating raftlock and etcd, then keepalive, run once.
func roundsResults() []result {
	mk := func(target string, round int, cycles, p50, errs float64) result {
		r := result{Target: target, Workload: wlUncontended, Workers: 64, Round: round, Duration: 5 * time.Second}
		r.add("cycles", cycles, kindCount)
		r.add("cycles_per_s", cycles/5, kindRate)
		r.add("acquire_p50_ms", p50, kindMillis)
		r.add("errors", errs, kindCount)
		return r
	}
	ka := func(target string, cpu float64) result {
		r := result{Target: target, Workload: wlKeepalive, Duration: 20 * time.Second}
		r.add("leader_cpu_pct", cpu, kindPercent)
		return r
	}
	return []result{
		mk("raftlock", 1, 50000, 3.1, 0), mk("etcd", 1, 15000, 9.8, 0),
		mk("raftlock", 2, 52000, 3.0, 1), mk("etcd", 2, 12500, 11, 0),
		mk("raftlock", 3, 49000, 3.3, 0), mk("etcd", 3, 17500, 9.0, 0),
		ka("raftlock", 1.4), ka("etcd", 22.6),
	}
}

// In roundsResults, cycles_per_s is 10000, 10400, 9800 for raftlock and
// 3000, 2500, 3500 for etcd: medians 10000 and 3000, but the per-round
// ratios 3.33, 4.16, 2.80 have the median 3.33. acquire_p50_ms: 3.1, 3.0,
// 3.3 over 9.8, 11, 9.0 give 0.32, 0.27, 0.37.

func TestWriteTableRounds(t *testing.T) {
	var b strings.Builder
	if err := writeTable(&b, []string{"raftlock", "etcd"}, roundsResults(), false); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"workload          workers  metric          raftlock            etcd              raftlock/etcd",
		"lock-uncontended  64       cycles          151000              45000             -",
		"                           cycles_per_s    10000 (9800–10400)  3000 (2500–3500)  3.33x (2.80–4.16)",
		"                           acquire_p50_ms  3.10ms              9.80ms            0.32x (0.27–0.37)",
		"                           errors          1                   0                 -",
		"keepalive                  leader_cpu_pct  1.4%                22.6%             0.06x",
		"",
	}, "\n")
	if got := b.String(); got != want {
		t.Fatalf("table:\n%s\nwant:\n%s", got, want)
	}

	b.Reset()
	if err := writeTable(&b, []string{"raftlock", "etcd"}, roundsResults(), true); err != nil {
		t.Fatal(err)
	}
	want = strings.Join([]string{
		"| workload | workers | metric | raftlock | etcd | raftlock/etcd |",
		"|---|---|---|---:|---:|---:|",
		"| lock-uncontended | 64 | cycles | 151000 | 45000 | - |",
		"|  |  | cycles_per_s | 10000 (9800–10400) | 3000 (2500–3500) | 3.33x (2.80–4.16) |",
		"|  |  | acquire_p50_ms | 3.10ms | 9.80ms | 0.32x (0.27–0.37) |",
		"|  |  | errors | 1 | 0 | - |",
		"| keepalive |  | leader_cpu_pct | 1.4% | 22.6% | 0.06x |",
		"",
	}, "\n")
	if got := b.String(); got != want {
		t.Fatalf("markdown:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteTableRoundsEven(t *testing.T) {
	// Two rounds: the median is the mean of the two values, of the rates
	// and of the per-round ratios alike.
	var results []result
	for i, v := range [][2]float64{{400, 100}, {600, 100}} {
		for j, tg := range []string{"raftlock", "etcd"} {
			r := result{Target: tg, Workload: wlElection, Workers: 8, Round: i + 1}
			r.add("cycles_per_s", v[j], kindRate)
			results = append(results, r)
		}
	}
	rows := tableRows([]string{"raftlock", "etcd"}, results)
	if got := strings.Join(rows[1], "|"); got != "election|8|cycles_per_s|500 (400–600)|100 (100–100)|5.00x (4.00–6.00)" {
		t.Fatalf("row %q", got)
	}
}

func TestJSONRounds(t *testing.T) {
	results := roundsResults()
	b, err := results[2].jsonLine()
	if err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal(b, &line); err != nil {
		t.Fatal(err)
	}
	if line["target"] != "raftlock" || line["round"] != 2.0 || line["cycles_per_s"] != 10400.0 {
		t.Fatalf("round line %s", b)
	}
	// A single run has no round.
	if b, _ := results[6].jsonLine(); strings.Contains(string(b), "round") {
		t.Fatalf("single run line %s", b)
	}

	b, err = summaryLine([]string{"raftlock", "etcd"}, results[:6])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "\n") {
		t.Fatalf("summary has a newline: %s", b)
	}
	var sum struct {
		Summary   bool                                     `json:"summary"`
		Workload  string                                   `json:"workload"`
		Workers   int                                      `json:"workers"`
		Rounds    int                                      `json:"rounds"`
		DurationS float64                                  `json:"duration_s"`
		Targets   map[string]map[string]map[string]float64 `json:"targets"`
		Ratios    map[string]map[string]map[string]float64 `json:"ratios"`
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if !sum.Summary || sum.Workload != wlUncontended || sum.Workers != 64 || sum.Rounds != 3 || sum.DurationS != 5 {
		t.Fatalf("summary %s", b)
	}
	want := map[string]map[string]float64{
		"cycles":         {"median": 50000, "min": 49000, "max": 52000, "total": 151000},
		"cycles_per_s":   {"median": 10000, "min": 9800, "max": 10400},
		"acquire_p50_ms": {"median": 3.1, "min": 3.0, "max": 3.3},
		"errors":         {"median": 0, "min": 0, "max": 1, "total": 1},
	}
	if !reflect.DeepEqual(sum.Targets["raftlock"], want) {
		t.Fatalf("raftlock %v, want %v", sum.Targets["raftlock"], want)
	}
	if got := sum.Targets["etcd"]["cycles_per_s"]; got["median"] != 3000 || got["min"] != 2500 || got["max"] != 3500 {
		t.Fatalf("etcd cycles_per_s %v", got)
	}
	r := sum.Ratios["raftlock/etcd"]
	if len(r) != 2 || r["cycles"] != nil || r["errors"] != nil {
		t.Fatalf("ratios %v: want cycles_per_s and acquire_p50_ms only", r)
	}
	cps := r["cycles_per_s"]
	if math.Abs(cps["median"]-10000.0/3000) > 1e-9 || math.Abs(cps["min"]-2.8) > 1e-9 || math.Abs(cps["max"]-4.16) > 1e-9 {
		t.Fatalf("cycles_per_s ratio %v", cps)
	}

	if _, err := summaryLine([]string{"raftlock", "etcd"}, results); err == nil {
		t.Fatal("summary of two cells: no error")
	}
}

// TestRunRoundsAgainstTestserver runs the command with --rounds 3
// against an in-process raftlock node: three JSON lines with rounds 1, 2
// and 3, then the cell's summary; and as a table, with the legend.
func TestRunRoundsAgainstTestserver(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	args := []string{"--target", "raftlock", "--endpoints", srv.URL, "--workloads", wlUncontended,
		"--workers", "2", "--duration", "100ms", "--ttl", "2s", "--rounds", "3"}
	var out strings.Builder
	if err := run(context.Background(), append(args, "--json"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want 3 rounds and a summary:\n%s", len(lines), out.String())
	}
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d: %v: %s", i, err, l)
		}
		if i < 3 && (m["round"] != float64(i+1) || m["target"] != "raftlock" || m["summary"] != nil) {
			t.Fatalf("line %d: %s", i, l)
		}
		if i == 3 && (m["summary"] != true || m["rounds"] != 3.0 || m["ratios"] != nil) {
			t.Fatalf("summary: %s", l)
		}
	}

	out.Reset()
	if err := run(context.Background(), args, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "rounds: every cycle cell ran 3 times per target") ||
		!strings.Contains(out.String(), "cycles_per_s") || !strings.Contains(out.String(), "–") {
		t.Fatalf("table:\n%s", out.String())
	}

	// --rounds 1 prints what a single run always printed: one line
	// without a round, no summary; a table without legend or ranges.
	args[len(args)-1] = "1"
	out.Reset()
	if err := run(context.Background(), append(args, "--json"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); strings.Count(s, "\n") != 1 || strings.Contains(s, "round") || strings.Contains(s, "summary") {
		t.Fatalf("--rounds 1 json:\n%s", s)
	}
	out.Reset()
	if err := run(context.Background(), args, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.HasPrefix(s, "workload ") || strings.Contains(s, "rounds") || strings.Contains(s, "–") {
		t.Fatalf("--rounds 1 table:\n%s", s)
	}
}
