package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
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
// (keepalive, scale).
type result struct {
	Target   string
	Workload string
	Workers  int
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
// duration_s and every metric under its key.
func (r *result) jsonLine() ([]byte, error) {
	obj := map[string]any{
		"target":     r.Target,
		"workload":   r.Workload,
		"workers":    r.Workers,
		"duration_s": r.Duration.Seconds(),
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
// meaningless (a negative value, or b zero).
func formatRatio(a, b float64) string {
	if b <= 0 || a < 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "-"
	}
	r := a / b
	if r >= 100 {
		return fmt.Sprintf("%.0fx", r)
	}
	return fmt.Sprintf("%.2fx", r)
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
	var cells []cellKey
	byCell := map[cellKey]map[string]*result{}
	for i := range results {
		r := &results[i]
		k := cellKey{r.Workload, r.Workers}
		if byCell[k] == nil {
			byCell[k] = map[string]*result{}
			cells = append(cells, k)
		}
		byCell[k][r.Target] = r
	}
	ratio := slices.Contains(targets, "raftlock") && slices.Contains(targets, "etcd")
	baseRatio := slices.Contains(targets, "raftlock") && slices.Contains(targets, baseTarget)

	var rows [][]string
	header := []string{"workload", "workers", "metric"}
	header = append(header, targets...)
	if ratio {
		header = append(header, "raftlock/etcd")
	}
	if baseRatio {
		header = append(header, "raftlock/"+baseTarget)
	}
	rows = append(rows, header)
	for _, k := range cells {
		row := byCell[k]
		// The metric keys in order of first appearance over the targets.
		var keys []string
		kinds := map[string]kind{}
		for _, t := range targets {
			if r := row[t]; r != nil {
				for _, m := range r.Metrics {
					if _, seen := kinds[m.Key]; !seen {
						kinds[m.Key] = m.Kind
						keys = append(keys, m.Key)
					}
				}
			}
		}
		for i, key := range keys {
			wl, wk := "", ""
			if i == 0 {
				wl = k.workload
				if k.workers > 0 {
					wk = fmt.Sprint(k.workers)
				}
			}
			cols := []string{wl, wk, key}
			vals := map[string]float64{}
			for _, t := range targets {
				v, ok := 0.0, false
				if r := row[t]; r != nil {
					v, ok = r.get(key)
				}
				if !ok {
					cols = append(cols, "-")
					vals[t] = math.NaN()
					continue
				}
				vals[t] = v
				cols = append(cols, formatValue(v, kinds[key]))
			}
			if ratio {
				if kinds[key] == kindCount {
					cols = append(cols, "-")
				} else {
					cols = append(cols, formatRatio(vals["raftlock"], vals["etcd"]))
				}
			}
			if baseRatio {
				if kinds[key] == kindCount {
					cols = append(cols, "-")
				} else {
					cols = append(cols, formatRatio(vals["raftlock"], vals[baseTarget]))
				}
			}
			rows = append(rows, cols)
		}
	}
	return rows
}
