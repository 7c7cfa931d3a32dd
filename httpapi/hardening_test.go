package httpapi

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
)

// TestNamesWithBadSegmentsRefused: names with an empty, "." or ".."
// segment (issue 11: ".." and "a/../b" were accepted) are refused on every
// route that takes a name, with a message that names the rule; a prefix
// may end with '/'.
func TestNamesWithBadSegmentsRefused(t *testing.T) {
	f, ts := newTestServer(t, nil)
	id := openSession(t, ts, "w")
	before := len(f.proposals())
	for _, name := range []string{"..", ".", "a/../b", "./x", "a/.", "jobs/", "a//b", "/a"} {
		p := url.PathEscape(name)
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/v1/locks/" + p + "/acquire", `{"session":"` + id + `"}`},
			{"POST", "/v1/locks/" + p + "/release", `{"session":"` + id + `","token":1}`},
			{"GET", "/v1/locks/" + p, ""},
			{"POST", "/v1/elections/" + p + "/campaign", `{"session":"` + id + `","value":"v"}`},
			{"GET", "/v1/elections/" + p, ""},
			{"POST", "/v1/batch", `{"ops":[{"op":"acquire","name":"` + name + `","session":"` + id + `"}]}`},
		} {
			r := do(t, ts, c.method, c.path, c.body)
			msg := r.errMessage()
			if r.status != 400 || r.errCode() != api.CodeInvalidArgument || !(strings.Contains(msg, "segment") || strings.Contains(msg, "with '/'")) {
				t.Errorf("%s %s: %d %s, want 400 naming the segment rule", c.method, c.path, r.status, r.raw)
			}
		}
	}
	if n := len(f.proposals()); n != before {
		t.Errorf("%d commands proposed for refused names", n-before)
	}
	for _, prefix := range []string{"jobs/", "jobs/.", "a"} {
		if r := do(t, ts, "GET", "/v1/locks?prefix="+url.QueryEscape(prefix), ""); r.status != 200 {
			t.Errorf("prefix %q: %d %s", prefix, r.status, r.raw)
		}
	}
	for _, prefix := range []string{"/", "a//", "../"} {
		if r := do(t, ts, "GET", "/v1/locks?prefix="+url.QueryEscape(prefix), ""); r.status != 400 || !strings.Contains(r.errMessage(), "prefix") {
			t.Errorf("prefix %q: %d %s, want 400", prefix, r.status, r.raw)
		}
	}
}

// TestListingGoesPastOldNames: a lock whose name an older version accepted
// ("a//b") can still be listed past: ?after= is a position in the sorted
// names, not a name to validate.
func TestListingGoesPastOldNames(t *testing.T) {
	f, ts := newTestServer(t, nil)
	id := openSession(t, ts, "w")
	sid, _ := parseSessionID(id)
	for _, name := range []string{"a", "a//b", "c"} {
		if res, _, err := f.Propose(context.Background(), &lock.Command{Op: lock.OpAcquire, Session: uint64(sid), Name: name}); err != nil || res.Code != lock.CodeOK {
			t.Fatalf("acquire %q: %v %v", name, res.Code, err)
		}
	}
	var names []string
	after := ""
	for range 4 {
		r := must(t, ts, "GET", "/v1/locks?limit=1&after="+url.QueryEscape(after), "", 200)
		for _, l := range r.body["locks"].([]any) {
			names = append(names, l.(map[string]any)["name"].(string))
		}
		if after = r.str("next"); after == "" {
			break
		}
	}
	if strings.Join(names, " ") != "a a//b c" {
		t.Fatalf("listed %q, want a, a//b and c", names)
	}
	if r := do(t, ts, "GET", "/v1/locks?after=a%20b", ""); r.status != 400 || !strings.Contains(r.errMessage(), "after") {
		t.Fatalf("after with a space: %d %s", r.status, r.raw)
	}
}
