package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
)

// outputFlag registers --output (and its short form -o) on fs.
func outputFlag(fs *pflag.FlagSet) *string {
	return fs.StringP("output", "o", "text", "output format: text (aligned tables) or json (the API's types, for scripts)")
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return fmt.Errorf("--output %q: want text or json", o)
	}
	return nil
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable returns a tabwriter for aligned columns separated by tabs.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// formatTime formats a cluster time as RFC 3339 in UTC with seconds and its
// age ("2026-11-26T19:33:41Z (12s ago)"); "-" for the zero time.
func formatTime(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	age := now.Sub(t).Round(time.Second)
	if age < 0 {
		age = 0
	}
	return fmt.Sprintf("%s (%v ago)", t.UTC().Format(time.RFC3339), age)
}

// orDash returns s, or "-" when s is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
