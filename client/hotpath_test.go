package client

import "testing"

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
