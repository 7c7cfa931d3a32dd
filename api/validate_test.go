package api

import (
	"strings"
	"testing"
)

// TestLockNameSegments: a name is '/'-separated segments, none empty, "."
// or "..", and the refusal names the rule that is broken.
func TestLockNameSegments(t *testing.T) {
	for _, name := range []string{"a", "jobs/nightly", "a/b/c", ".a", "a.", "..a", "a..", "a/.b/c", "...", "a/.../b", "x:y/z-1_2.3"} {
		if err := ValidateLockName(name); err != nil {
			t.Errorf("ValidateLockName(%q) = %v, want nil", name, err)
		}
	}
	for _, c := range []struct{ name, rule string }{
		{"/", "starts with '/'"},
		{"/a", "starts with '/'"},
		{"a/", "ends with '/'"},
		{"jobs/", "ends with '/'"},
		{"a//b", "empty segment"},
		{"a///", "empty segment"},
		{".", `segment "."`},
		{"..", `segment ".."`},
		{"./x", `segment "."`},
		{"a/../b", `segment ".."`},
		{"a/./b", `segment "."`},
		{"a/..", `segment ".."`},
		{"a/.", `segment "."`},
	} {
		err := ValidateLockName(c.name)
		if err == nil || !strings.Contains(err.Error(), c.rule) || !strings.Contains(err.Error(), `"`+c.name+`"`) {
			t.Errorf("ValidateLockName(%q) = %v, want an error naming the name and %q", c.name, err, c.rule)
		}
	}
}

// TestLockPrefixSegments: a prefix may end with '/' (a prefix of whole
// segments) or with the start of a segment ("." may begin ".x"), but its
// complete segments follow the name rules.
func TestLockPrefixSegments(t *testing.T) {
	for _, p := range []string{"", "a", "jobs/", "jobs/ni", "jobs/.", "jobs/..", ".", "..", "a/b/", strings.Repeat("a", MaxLockNameLen)} {
		if err := ValidateLockPrefix(p); err != nil {
			t.Errorf("ValidateLockPrefix(%q) = %v, want nil", p, err)
		}
	}
	for _, c := range []struct{ prefix, rule string }{
		{"/", "starts with '/'"},
		{"/jobs", "starts with '/'"},
		{"a//", "empty segment"},
		{"a//b", "empty segment"},
		{"./", `segment "."`},
		{"a/../", `segment ".."`},
		{"../x", `segment ".."`},
		{"a b", "character"},
		{strings.Repeat("a", MaxLockNameLen+1), "at most"},
	} {
		err := ValidateLockPrefix(c.prefix)
		if err == nil || !strings.Contains(err.Error(), c.rule) || !strings.Contains(err.Error(), "prefix") {
			t.Errorf("ValidateLockPrefix(%q) = %v, want an error about the prefix saying %q", c.prefix, err, c.rule)
		}
	}
	// Every valid name is a valid prefix, and so is each of its prefixes.
	for _, name := range []string{"jobs/nightly", "a/.b/..c", "x"} {
		for i := 1; i <= len(name); i++ {
			if err := ValidateLockPrefix(name[:i]); err != nil {
				t.Errorf("ValidateLockPrefix(%q), a prefix of the valid name %q: %v", name[:i], name, err)
			}
		}
	}
}

// TestBatchOpNameSegments: a batch refuses a name the lock routes refuse,
// naming the operation.
func TestBatchOpNameSegments(t *testing.T) {
	r := BatchRequest{Ops: []BatchOp{{Op: BatchAcquire, Name: "a", Session: 1}, {Op: BatchAcquire, Name: "a/../b", Session: 1}}}
	err := r.Validate()
	if err == nil || !strings.Contains(err.Error(), "ops[1]") || !strings.Contains(err.Error(), `".."`) {
		t.Fatalf("Validate = %v, want ops[1] refused for its \"..\" segment", err)
	}
}

// TestParseSessionIDLeadingZeros: the server writes session IDs without
// leading zeros and reads only that form, so that one session has one
// spelling (in paths, bodies and logs).
func TestParseSessionIDLeadingZeros(t *testing.T) {
	for _, s := range []string{"046033", "01", "00", "0", "+1", " 1", "1 ", "", "18446744073709551616", "0x10"} {
		if id, err := ParseSessionID(s); err == nil {
			t.Errorf("ParseSessionID(%q) = %d, want an error", s, id)
		}
	}
	for _, s := range []string{"1", "10", "46033", "18446744073709551615"} {
		if id, err := ParseSessionID(s); err != nil || id.String() != s {
			t.Errorf("ParseSessionID(%q) = %d, %v", s, id, err)
		}
	}
	var id SessionID
	if err := id.UnmarshalJSON([]byte(`"046033"`)); err == nil {
		t.Errorf(`UnmarshalJSON("046033") = %d, want an error`, id)
	}
}
