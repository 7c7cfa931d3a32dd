package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// kind says how a metric's value is formatted.
type kind int

const (
	kindCount   kind = iota // an integer count
	kindRate                // per second
	kindMillis              // milliseconds
	kindSeconds             // seconds
	kindPercent             // percent
	kindBytes               // bytes (printed with a binary unit)
	kindRatio               // a plain number with two decimals
)

// metric is one measured number of a cell. Key is its name in the table
// and in the JSON line (snake_case, with its unit).
type metric struct {
	Key   string
	Value float64
	Kind  kind
}

// result is the outcome of one cell: one workload with one worker count
// against one target. Workers is 0 for workloads without workers
// (keepalive, scale). Round is the round (from 1) when the cell ran
// several rounds (--rounds), and 0 when it ran once.
type result struct {
	Target   string
	Workload string
	Workers  int
	Round    int
	Duration time.Duration
	Metrics  []metric
}

func (r *result) add(key string, v float64, k kind) {
	r.Metrics = append(r.Metrics, metric{Key: key, Value: v, Kind: k})
}

// addLatency adds the p50/p99/max of s as prefix_p50_ms and so on.
func (r *result) addLatency(prefix string, s summary) {
	r.add(prefix+"_p50_ms", ms(s.P50), kindMillis)
	r.add(prefix+"_p99_ms", ms(s.P99), kindMillis)
	r.add(prefix+"_max_ms", ms(s.Max), kindMillis)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// get returns the value of metric key and whether r has it.
func (r *result) get(key string) (float64, bool) {
	for _, m := range r.Metrics {
		if m.Key == key {
			return m.Value, true
		}
	}
	return 0, false
}

// jsonLine returns r as one JSON object: target, workload, workers,
// round (only when r is one of several rounds), duration_s and every
// metric under its key.
func (r *result) jsonLine() ([]byte, error) {
	obj := map[string]any{
		"target":     r.Target,
		"workload":   r.Workload,
		"workers":    r.Workers,
		"duration_s": r.Duration.Seconds(),
	}
	if r.Round > 0 {
		obj["round"] = r.Round
	}
	for _, m := range r.Metrics {
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			obj[m.Key] = nil
			continue
		}
		obj[m.Key] = m.Value
	}
	return json.Marshal(obj)
}

// formatValue formats v for the table according to k.
func formatValue(v float64, k kind) string {
	if math.IsNaN(v) {
		return "-"
	}
	switch k {
	case kindCount:
		return fmt.Sprintf("%.0f", v)
	case kindRate:
		if v >= 100 {
			return fmt.Sprintf("%.0f", v)
		}
		return fmt.Sprintf("%.1f", v)
	case kindMillis:
		switch {
		case v >= 100:
			return fmt.Sprintf("%.0fms", v)
		case v >= 10:
			return fmt.Sprintf("%.1fms", v)
		}
		return fmt.Sprintf("%.2fms", v)
	case kindSeconds:
		return fmt.Sprintf("%.2fs", v)
	case kindPercent:
		return fmt.Sprintf("%.1f%%", v)
	case kindBytes:
		return formatBytes(v)
	}
	return fmt.Sprintf("%.2f", v)
}

func formatBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB"}
	i := 0
	for math.Abs(v) >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f%s", v, units[i])
	}
	return fmt.Sprintf("%.1f%s", v, units[i])
}

// formatRatio formats a/b as "2.50x", or "-" when it is undefined or
// meaningless (see ratio).
func formatRatio(a, b float64) string {
	r, ok := ratio(a, b)
	if !ok {
		return "-"
	}
	return ratioNumber(r) + "x"
}

// ratio returns a/b, and false when it is undefined or meaningless: a
// negative value, b zero, or a NaN.
func ratio(a, b float64) (float64, bool) {
	if b <= 0 || a < 0 || math.IsNaN(a) || math.IsNaN(b) {
		return 0, false
	}
	return a / b, true
}

// ratioNumber formats a ratio without its "x": two decimals, none from
// 100 on.
func ratioNumber(r float64) string {
	if r >= 100 {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.2f", r)
}

// cellKey identifies a row group of the table.
type cellKey struct {
	workload string
	workers  int
}

// writeTable writes results as a table, one row per workload, worker
// count and metric, one column per target (in the order of targets), and,
// when both raftlock and etcd are among the targets, a column with the
// ratio raftlock/etcd (and one with raftlock/raftlock-base when the
// baseline target is there too). Rows keep the order in which the results came.
// markdown selects a GitHub markdown table instead of aligned text.
//
// A cell with several rounds (results of one target with Round 1..N)
// shows per target the median over the rounds, the sum for counts, and
// for rates the range as well: "10146 (9870–10412)"; its ratio is the
// median of the per-round ratios with their range: "3.21x (2.87–3.44)".
// A cell with one run per target shows its values as they are.
func writeTable(w io.Writer, targets []string, results []result, markdown bool) error {
	rows := tableRows(targets, results)
	if markdown {
		for i, r := range rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
			if i == 0 {
				seps := make([]string, len(r))
				for j := range seps {
					seps[j] = "---"
					if j >= 3 {
						seps[j] = "---:"
					}
				}
				fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// tableRows returns the table of writeTable, header first.
func tableRows(targets []string, results []result) [][]string {
	cells, byCell := groupCells(results)
	pairs := ratioPairs(targets)

	var rows [][]string
	header := []string{"workload", "workers", "metric"}
	header = append(header, targets...)
	for _, p := range pairs {
		header = append(header, p[0]+"/"+p[1])
	}
	rows = append(rows, header)
	for _, k := range cells {
		c := byCell[k]
		multi := c.rounds() > 1
		keys, kinds := c.keys(targets)
		for i, key := range keys {
			wl, wk := "", ""
			if i == 0 {
				wl = k.workload
				if k.workers > 0 {
					wk = fmt.Sprint(k.workers)
				}
			}
			cols := []string{wl, wk, key}
			for _, t := range targets {
				cols = append(cols, formatFigure(c.stat(t, key), kinds[key], multi))
			}
			for _, p := range pairs {
				if kinds[key] == kindCount {
					cols = append(cols, "-")
				} else {
					cols = append(cols, formatRatioSpread(c.ratioStat(p[0], p[1], key), multi))
				}
			}
			rows = append(rows, cols)
		}
	}
	return rows
}

// formatFigure formats one target's figure of a cell: "-" when no run
// has it, the sum for a count, otherwise the median; with multi (the cell
// ran several rounds) a rate that two or more rounds have also gets its
// range, "10146 (9870–10412)". With one run these are its value.
func formatFigure(s spread, k kind, multi bool) string {
	switch {
	case s.N == 0:
		return "-"
	case k == kindCount:
		return formatValue(s.Sum, k)
	case multi && k == kindRate && s.N > 1:
		return fmt.Sprintf("%s (%s–%s)", formatValue(s.Median, k), formatValue(s.Min, k), formatValue(s.Max, k))
	}
	return formatValue(s.Median, k)
}

// formatRatioSpread formats the per-round ratios of a figure: "-" when
// no round has one, "3.21x (2.87–3.44)" with multi and two or more, and
// as formatRatio does otherwise.
func formatRatioSpread(s spread, multi bool) string {
	switch {
	case s.N == 0:
		return "-"
	case multi && s.N > 1:
		return fmt.Sprintf("%sx (%s–%s)", ratioNumber(s.Median), ratioNumber(s.Min), ratioNumber(s.Max))
	}
	return ratioNumber(s.Median) + "x"
}

// roundsLegend returns the line printed above a table whose cycle cells
// ran rounds rounds (rounds above 1), saying how to read it.
func roundsLegend(rounds int) string {
	return fmt.Sprintf("rounds: every cycle cell ran %d times per target, the targets alternating round by round; "+
		"a figure is the median over the rounds (the mean of the two middle ones for an even count), a count (cycles, errors) the total, "+
		"(min–max) the range of cycles_per_s; a ratio is the median (min–max) of the per-round ratios. keepalive and scale run once.", rounds)
}

// summaryLine returns the JSON summary of one cell's runs (cell, results
// of one workload and worker count): summary true, workload, workers,
// rounds, duration_s (of one run); under targets, per target and metric,
// median, min and max over the rounds (and total for counts); under
// ratios, per ratio of ratioPairs (keyed "raftlock/etcd") and metric but
// counts, the median, min and max of the per-round ratios. A figure no
// round has is left out.
func summaryLine(targets []string, cell []result) ([]byte, error) {
	cells, byCell := groupCells(cell)
	if len(cells) != 1 {
		return nil, fmt.Errorf("summary of %d cells, want 1", len(cells))
	}
	k := cells[0]
	c := byCell[k]
	keys, kinds := c.keys(targets)
	obj := map[string]any{
		"summary":    true,
		"workload":   k.workload,
		"workers":    k.workers,
		"rounds":     c.rounds(),
		"duration_s": cell[0].Duration.Seconds(),
	}
	stats := func(s spread, count bool) map[string]any {
		m := map[string]any{"median": s.Median, "min": s.Min, "max": s.Max}
		if count {
			m["total"] = s.Sum
		}
		return m
	}
	byTarget := map[string]any{}
	for _, t := range targets {
		if len(c[t]) == 0 {
			continue
		}
		figs := map[string]any{}
		for _, key := range keys {
			if s := c.stat(t, key); s.N > 0 {
				figs[key] = stats(s, kinds[key] == kindCount)
			}
		}
		byTarget[t] = figs
	}
	obj["targets"] = byTarget
	if pairs := ratioPairs(targets); len(pairs) > 0 {
		ratios := map[string]any{}
		for _, p := range pairs {
			figs := map[string]any{}
			for _, key := range keys {
				if kinds[key] == kindCount {
					continue
				}
				if s := c.ratioStat(p[0], p[1], key); s.N > 0 {
					figs[key] = stats(s, false)
				}
			}
			ratios[p[0]+"/"+p[1]] = figs
		}
		obj["ratios"] = ratios
	}
	return json.Marshal(obj)
}
