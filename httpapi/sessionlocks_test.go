package httpapi

import (
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/raftlock/raftlock/api"
)

// GET /v1/sessions/{id}/locks answers the session's locks with the index
// at which they last changed as ETag, and 304 without a body (and without
// building the list) while If-None-Match names that index.
func TestSessionLocksConditional(t *testing.T) {
	_, ts := newTestServer(t, nil)
	id := openSession(t, ts, "host-a")
	other := openSession(t, ts, "host-b")
	path := "/v1/sessions/" + id + "/locks"

	r := must(t, ts, "GET", path, "", 200)
	if r.raw != `{"session":"`+id+`","changed_at":0,"locks":[]}` || r.header.Get("ETag") != `"0"` {
		t.Fatalf("no locks yet: %s, ETag %q", r.raw, r.header.Get("ETag"))
	}
	if r = do(t, ts, "GET", path, "", "If-None-Match", `"0"`); r.status != http.StatusNotModified || r.raw != "" {
		t.Fatalf("unchanged empty list: %d %q, want 304 without a body", r.status, r.raw)
	}

	tokA := must(t, ts, "POST", "/v1/locks/a/acquire", `{"session":"`+id+`"}`, 200).num("token")
	must(t, ts, "POST", "/v1/locks/b/acquire", `{"session":"`+id+`"}`, 200)
	r = must(t, ts, "GET", path+"?consistency=stale", "", 200)
	etag := r.header.Get("ETag")
	if r.num("changed_at") == 0 || etag != `"`+u(r.num("changed_at"))+`"` || r.raw != `{"session":"`+id+`","changed_at":`+u(r.num("changed_at"))+`,"locks":["a","b"]}` {
		t.Fatalf("after two acquires: %s, ETag %q", r.raw, etag)
	}
	// The old validator no longer matches: the whole list.
	if r2 := do(t, ts, "GET", path, "", "If-None-Match", `"0"`); r2.status != 200 || r2.raw != r.raw {
		t.Fatalf("stale validator: %d %s, want 200 %s", r2.status, r2.raw, r.raw)
	}
	// Unchanged, in every accepted spelling; others' changes do not count.
	must(t, ts, "POST", "/v1/locks/c/acquire", `{"session":"`+other+`"}`, 200)
	must(t, ts, "POST", "/v1/sessions/"+id+"/keepalive", "", 200)
	for _, inm := range []string{etag, "W/" + etag, `"7", ` + etag} {
		r2 := do(t, ts, "GET", path, "", "If-None-Match", inm)
		if r2.status != http.StatusNotModified || r2.raw != "" || r2.header.Get("ETag") != etag {
			t.Fatalf("If-None-Match %s: %d %q (ETag %q), want 304 with ETag %s", inm, r2.status, r2.raw, r2.header.Get("ETag"), etag)
		}
	}
	// Anything that names no index gets the list, never a 304 by mistake.
	for _, inm := range []string{"*", etag[1 : len(etag)-1], `"00"`, `"-1"`, `""`} {
		if r2 := do(t, ts, "GET", path, "", "If-None-Match", inm); r2.status != 200 || r2.raw != r.raw {
			t.Fatalf("If-None-Match %s: %d %s, want the list", inm, r2.status, r2.raw)
		}
	}

	// A release (here by the token, as an operator would) changes it.
	must(t, ts, "POST", "/v1/locks/a/release", `{"session":"`+id+`","token":`+u(tokA)+`}`, 200)
	r2 := do(t, ts, "GET", path, "", "If-None-Match", etag)
	if r2.status != 200 || r2.header.Get("ETag") == etag || r2.raw != `{"session":"`+id+`","changed_at":`+u(r2.num("changed_at"))+`,"locks":["b"]}` {
		t.Fatalf("after a release: %d %s (ETag %q, was %s)", r2.status, r2.raw, r2.header.Get("ETag"), etag)
	}

	mustErr(t, ts, "GET", "/v1/sessions/999999/locks", "", 404, api.CodeSessionNotFound)
	mustErr(t, ts, "GET", "/v1/sessions/x/locks", "", 400, api.CodeInvalidArgument)
	mustErr(t, ts, "GET", path+"?consistency=linearizable", "", 400, api.CodeInvalidArgument)
}

// ?parts=k&part=i answers the part i of the list: the parts partition it,
// each sorted, by api.LockPart.
func TestSessionLocksParts(t *testing.T) {
	_, ts := newTestServer(t, nil)
	id := openSession(t, ts, "host-a")
	var all []string
	for i := range 20 {
		name := "p/" + strconv.Itoa(i)
		must(t, ts, "POST", "/v1/locks/"+name+"/acquire", `{"session":"`+id+`"}`, 200)
		all = append(all, name)
	}
	slices.Sort(all)
	path := "/v1/sessions/" + id + "/locks"
	whole := must(t, ts, "GET", path, "", 200)
	var got []string
	for part := range 4 {
		r := must(t, ts, "GET", path+"?parts=4&part="+strconv.Itoa(part), "", 200)
		if r.header.Get("ETag") != whole.header.Get("ETag") {
			t.Fatalf("part %d: ETag %q, the whole list's is %q", part, r.header.Get("ETag"), whole.header.Get("ETag"))
		}
		var names []string
		for _, v := range r.body["locks"].([]any) {
			names = append(names, v.(string))
		}
		if !slices.IsSorted(names) {
			t.Fatalf("part %d not sorted: %v", part, names)
		}
		for _, n := range names {
			if api.LockPart(n, 4) != part {
				t.Fatalf("part %d lists %q, whose part is %d", part, n, api.LockPart(n, 4))
			}
		}
		if len(names) == len(all) {
			t.Fatalf("part %d is the whole list", part)
		}
		got = append(got, names...)
		// Unchanged: 304 for a part too.
		if r2 := do(t, ts, "GET", path+"?parts=4&part="+strconv.Itoa(part), "", "If-None-Match", r.header.Get("ETag")); r2.status != http.StatusNotModified {
			t.Fatalf("part %d unchanged: %d", part, r2.status)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, all) {
		t.Fatalf("the parts hold %v, the list %v", got, all)
	}
	for _, q := range []string{"parts=3&part=0", "parts=0&part=0", "parts=2048&part=0", "parts=4&part=4", "parts=4&part=-1", "parts=4", "part=1", "parts=x&part=0"} {
		mustErr(t, ts, "GET", path+"?"+q, "", 400, api.CodeInvalidArgument)
	}
	must(t, ts, "GET", path+"?parts=1&part=0", "", 200)
}
