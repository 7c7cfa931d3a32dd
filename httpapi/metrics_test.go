package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/testserver"
)

// scrape GETs url+"/metrics" and parses it with Prometheus's own text
// parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q, want the text format", ct)
	}
	// Legacy validation: every name must be a classic Prometheus name.
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

func gauge(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	mf := fams[name]
	if mf == nil || len(mf.GetMetric()) != 1 || mf.GetMetric()[0].GetGauge() == nil {
		t.Fatalf("%s: want one gauge, got %v", name, mf)
	}
	return mf.GetMetric()[0].GetGauge().GetValue()
}

func post(t *testing.T, url string, in, out any) int {
	t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("POST %s: %d, decode: %v", url, resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}

// waitGauge scrapes until the gauge has value want: the node publishes its
// counts at the end of the loop iteration that answered the request.
func waitGauge(t *testing.T, url, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := gauge(t, scrape(t, url), name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestMetricsEndpoint: GET /metrics on the client port answers the
// Prometheus text format, every family is named raftlock_* with help text,
// the request histogram is labelled by route (never the raw URL), and
// raftlock_locks_held follows a lock taken and released.
func TestMetricsEndpoint(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	defer http.DefaultClient.CloseIdleConnections()

	fams := scrape(t, s.URL)
	for _, name := range []string{
		"raftlock_raft_term", "raftlock_raft_is_leader", "raftlock_raft_leader_changes_total",
		"raftlock_raft_proposals_committed_total", "raftlock_raft_proposals_applied_total",
		"raftlock_raft_proposals_failed_total", "raftlock_raft_proposals_pending",
		"raftlock_raft_commit_index", "raftlock_raft_applied_index", "raftlock_raft_apply_lag",
		"raftlock_wal_save_duration_seconds", "raftlock_snapshot_duration_seconds", "raftlock_snapshot_size_bytes",
		"raftlock_raft_dropped_peer_messages_total",
		"raftlock_sessions_open", "raftlock_locks_held", "raftlock_elections",
		"raftlock_lock_grants_total", "raftlock_session_expiries_total",
		"raftlock_nospace_alarms", "raftlock_auth_enabled",
	} {
		if fams[name] == nil {
			t.Errorf("family %s missing", name)
		}
	}
	for name, mf := range fams {
		if !strings.HasPrefix(name, "raftlock_") || mf.GetHelp() == "" {
			t.Errorf("family %s: want the raftlock_ prefix and help text, help %q", name, mf.GetHelp())
		}
	}
	if v := gauge(t, fams, "raftlock_raft_is_leader"); v != 1 {
		t.Errorf("is_leader %v, want 1", v)
	}
	if v := gauge(t, fams, "raftlock_locks_held"); v != 0 {
		t.Fatalf("locks_held %v before any lock, want 0", v)
	}

	var sess struct {
		ID api.SessionID `json:"id"`
	}
	if code := post(t, s.URL+"/v1/sessions", map[string]string{"ttl": "10s"}, &sess); code != http.StatusCreated {
		t.Fatalf("open session: %d", code)
	}
	var grant api.LockGrant
	if code := post(t, s.URL+api.LockPath("jobs/nightly")+"/acquire", api.AcquireRequest{Session: sess.ID}, &grant); code != http.StatusOK || grant.Token == 0 {
		t.Fatalf("acquire: %d %+v", code, grant)
	}
	waitGauge(t, s.URL, "raftlock_locks_held", 1)
	if code := post(t, s.URL+api.LockPath("jobs/nightly")+"/release", api.ReleaseRequest{Session: sess.ID, Token: grant.Token}, nil); code != http.StatusOK {
		t.Fatalf("release: %d", code)
	}
	waitGauge(t, s.URL, "raftlock_locks_held", 0)

	// A URL no route matches.
	resp, err := http.Get(s.URL + "/no/such/path/12345")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	fams = scrape(t, s.URL)
	if v := gauge(t, fams, "raftlock_sessions_open"); v != 1 {
		t.Errorf("sessions_open %v, want 1", v)
	}
	if c := fams["raftlock_lock_grants_total"].GetMetric()[0].GetCounter().GetValue(); c != 1 {
		t.Errorf("lock_grants_total %v, want 1", c)
	}
	seen := map[string]bool{}
	for _, m := range fams["raftlock_http_request_duration_seconds"].GetMetric() {
		if fams["raftlock_http_request_duration_seconds"].GetType() != dto.MetricType_HISTOGRAM {
			t.Fatal("raftlock_http_request_duration_seconds is not a histogram")
		}
		l := map[string]string{}
		for _, lp := range m.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		if strings.Contains(l["route"], "nightly") || strings.Contains(l["route"], "12345") {
			t.Errorf("route label %q carries the raw URL", l["route"])
		}
		seen[l["method"]+" "+l["route"]+" "+l["code"]] = true
	}
	for _, want := range []string{"POST /v1/sessions 201", "POST /v1/locks/* 200", "GET /metrics 200", "GET other 404"} {
		if !seen[want] {
			t.Errorf("no request series %q; have %v", want, seen)
		}
	}
}
