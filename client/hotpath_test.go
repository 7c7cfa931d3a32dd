package client

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
)

func TestLeaderFromHeaderCache(t *testing.T) {
	c, err := New(Config{Endpoints: []string{"http://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"http://127.0.0.1:7070/", "http://127.0.0.1:7070"},
		{"http://127.0.0.1:7070/", "http://127.0.0.1:7070"}, // cached
		{"http://127.0.0.1:7080", "http://127.0.0.1:7080"},  // a new leader
		{"ftp://x", ""}, // invalid: ignored
		{"http://127.0.0.1:7080", "http://127.0.0.1:7080"},
		{"http://127.0.0.1:7070//", "http://127.0.0.1:7070"},
	} {
		if got := c.leaderFromHeader(tc.in); got != tc.want {
			t.Errorf("leaderFromHeader(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEncodeBodyIsJSONMarshal(t *testing.T) {
	for _, v := range []any{
		api.AcquireRequest{Session: 42, Wait: api.Duration(5 * time.Minute)},
		api.AcquireRequest{Session: 42},
		api.AcquireRequest{Session: 18446744073709551615, Wait: api.Duration(1500 * time.Microsecond)},
		api.AcquireRequest{Session: 7, Wait: api.Duration(-time.Second)},
		api.AcquireRequest{TTL: api.Duration(time.Second), Owner: "o<&>", Wait: api.Duration(time.Second)},
		api.AcquireRequest{Session: 7, Owner: "x"},
		api.ReleaseRequest{Session: 42, Token: 17},
		api.ReleaseRequest{Session: 42},
		api.ReleaseRequest{Token: 5},
		api.ReleaseRequest{Session: 1, Token: 18446744073709551615},
		api.CreateSessionRequest{TTL: api.Duration(time.Second)},
	} {
		got, err := encodeBody(v)
		want, werr := json.Marshal(v)
		if err != nil || werr != nil || !bytes.Equal(got, want) {
			t.Errorf("encodeBody(%+v) = %s, %v; json.Marshal = %s, %v", v, got, err, want, werr)
		}
	}
}
