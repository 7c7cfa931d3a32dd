package e2e

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/raftlock/raftlock/internal/testserver"
)

// TestOperationsAlertsNameRealMetrics: every metric that the alerting rules
// of OPERATIONS.md use is served by /metrics (parsed with Prometheus's own
// text parser), so that the rules, pasted, alert on something.
func TestOperationsAlertsNameRealMetrics(t *testing.T) {
	doc, err := os.ReadFile("../OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(doc), "```yaml\ngroups:")
	if start < 0 {
		t.Fatal("OPERATIONS.md has no ```yaml block of alerting rules")
	}
	rules := string(doc[start:])
	rules = rules[:strings.Index(rules[3:], "```")+3]
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`raftlock_[a-z_]+`).FindAllString(rules, -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			m = strings.TrimSuffix(m, suffix)
		}
		used[m] = true
	}
	if len(used) < 5 {
		t.Fatalf("only %d metrics found in the rules: %v", len(used), used)
	}

	srv := testserver.Start(t, testserver.Options{})
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for m := range used {
		if _, ok := fams[m]; !ok {
			t.Errorf("OPERATIONS.md's alerting rules use %s, which /metrics does not serve", m)
		}
	}
}
