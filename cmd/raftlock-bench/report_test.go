package main

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		k    kind
		want string
	}{
		{1234, kindCount, "1234"},
		{1234.4, kindRate, "1234"},
		{80.04, kindRate, "80.0"},
		{0.784, kindMillis, "0.78ms"},
		{12.34, kindMillis, "12.3ms"},
		{112.4, kindMillis, "112ms"},
		{1.5, kindSeconds, "1.50s"},
		{3.21, kindPercent, "3.2%"},
		{512, kindBytes, "512B"},
		{1536, kindBytes, "1.5KiB"},
		{3 << 20, kindBytes, "3.0MiB"},
		{2.774, kindRatio, "2.77"},
		{math.NaN(), kindRate, "-"},
	} {
		if got := formatValue(tc.v, tc.k); got != tc.want {
			t.Errorf("formatValue(%v, %v) = %q, want %q", tc.v, tc.k, got, tc.want)
		}
	}
	for _, tc := range []struct {
		a, b float64
		want string
	}{
		{828, 80, "10.35x"},
		{1, 4, "0.25x"},
		{1000, 2, "500x"},
		{1, 0, "-"},
		{-1, 2, "-"},
		{1, -2, "-"},
		{math.NaN(), 1, "-"},
	} {
		if got := formatRatio(tc.a, tc.b); got != tc.want {
			t.Errorf("formatRatio(%v, %v) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}

func sampleResults() []result {
	mk := func(target string, rate, p50 float64, errs float64) result {
		r := result{Target: target, Workload: wlContended, Workers: 8, Duration: 5 * time.Second}
		r.add("cycles_per_s", rate, kindRate)
		r.add("acquire_p50_ms", p50, kindMillis)
		r.add("errors", errs, kindCount)
		return r
	}
	ka := result{Target: "raftlock", Workload: wlKeepalive}
	ka.add("keepalives_per_s", 3000, kindRate)
	return []result{mk("raftlock", 800, 8, 0), mk("etcd", 80, 100, 2), ka}
}

func TestWriteTableRatios(t *testing.T) {
	var b strings.Builder
	if err := writeTable(&b, []string{"raftlock", "etcd"}, sampleResults(), false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	want := [][]string{
		{"workload", "workers", "metric", "raftlock", "etcd", "raftlock/etcd"},
		{"lock-contended", "8", "cycles_per_s", "800", "80.0", "10.00x"},
		{"acquire_p50_ms", "8.00ms", "100ms", "0.08x"},
		{"errors", "0", "2", "-"},
		// A metric one target lacks: "-" for it and for the ratio.
		{"keepalive", "keepalives_per_s", "3000", "-", "-"},
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), b.String())
	}
	for i, w := range want {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("line %d = %q, want fields %q", i, lines[i], w)
		}
	}
	// The columns are aligned: every row puts its values at the same offsets.
	if i, j := strings.Index(lines[0], "raftlock/etcd"), strings.Index(lines[1], "10.00x"); i != j {
		t.Errorf("ratio column not aligned: %d vs %d\n%s", i, j, b.String())
	}
}

func TestWriteTableMarkdownAndSingleTarget(t *testing.T) {
	var b strings.Builder
	if err := writeTable(&b, []string{"raftlock", "etcd"}, sampleResults(), true); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if lines[0] != "| workload | workers | metric | raftlock | etcd | raftlock/etcd |" || lines[1] != "|---|---|---|---:|---:|---:|" {
		t.Fatalf("markdown header:\n%s", b.String())
	}
	if lines[2] != "| lock-contended | 8 | cycles_per_s | 800 | 80.0 | 10.00x |" {
		t.Fatalf("markdown row %q", lines[2])
	}

	b.Reset()
	if err := writeTable(&b, []string{"etcd"}, sampleResults()[1:2], false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "raftlock/etcd") || !strings.Contains(b.String(), "100ms") {
		t.Fatalf("single target:\n%s", b.String())
	}
}

func TestJSONLine(t *testing.T) {
	r := sampleResults()[0]
	r.add("nan", math.NaN(), kindRatio)
	b, err := r.jsonLine()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["target"] != "raftlock" || got["workload"] != wlContended || got["workers"] != 8.0 ||
		got["duration_s"] != 5.0 || got["cycles_per_s"] != 800.0 || got["nan"] != nil {
		t.Fatalf("json line %s", b)
	}
	if strings.Contains(string(b), "\n") {
		t.Fatalf("json line has a newline: %s", b)
	}
}

func TestTableBaselineRatio(t *testing.T) {
	results := []result{
		{Target: "raftlock", Workload: "w", Metrics: []metric{{"cycles_per_s", 300, kindRate}}},
		{Target: baseTarget, Workload: "w", Metrics: []metric{{"cycles_per_s", 100, kindRate}}},
		{Target: "etcd", Workload: "w", Metrics: []metric{{"cycles_per_s", 150, kindRate}}},
	}
	rows := tableRows([]string{"raftlock", baseTarget, "etcd"}, results)
	if got := strings.Join(rows[0], "|"); got != "workload|workers|metric|raftlock|raftlock-base|etcd|raftlock/etcd|raftlock/raftlock-base" {
		t.Fatalf("header %q", got)
	}
	if got := strings.Join(rows[1][6:], "|"); got != "2.00x|3.00x" {
		t.Fatalf("ratios %q", got)
	}
}

func TestTableUnbatchedRatio(t *testing.T) {
	results := []result{
		{Target: "raftlock", Workload: "w", Metrics: []metric{{"cycles_per_s", 300, kindRate}}},
		{Target: unbatchedTarget, Workload: "w", Metrics: []metric{{"cycles_per_s", 240, kindRate}}},
		{Target: "etcd", Workload: "w", Metrics: []metric{{"cycles_per_s", 100, kindRate}}},
	}
	rows := tableRows([]string{"raftlock", unbatchedTarget, "etcd"}, results)
	if got := strings.Join(rows[0], "|"); got != "workload|workers|metric|raftlock|raftlock-unbatched|etcd|raftlock/etcd|raftlock-unbatched/etcd" {
		t.Fatalf("header %q", got)
	}
	if got := strings.Join(rows[1][6:], "|"); got != "3.00x|2.40x" {
		t.Fatalf("ratios %q", got)
	}
}
