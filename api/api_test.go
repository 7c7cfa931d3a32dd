package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestErrorIsSentinel(t *testing.T) {
	codes := map[string]error{
		CodeInvalidArgument:  ErrInvalidArgument,
		CodeSessionNotFound:  ErrSessionNotFound,
		CodeLockHeld:         ErrLockHeld,
		CodeNotHolder:        ErrNotHolder,
		CodeNotFound:         ErrNotFound,
		CodeUnavailable:      ErrUnavailable,
		CodeTimeout:          ErrOutcomeUnknown,
		CodeTooLarge:         ErrTooLarge,
		CodeMethodNotAllowed: ErrMethodNotAllowed,
		CodeInternal:         ErrInternal,
	}
	for code, want := range codes {
		if got := Sentinel(code); got != want {
			t.Errorf("Sentinel(%q) = %v, want %v", code, got, want)
		}
		err := fmt.Errorf("acquire: %w", &Error{Code: code, Message: "m"})
		if !errors.Is(err, want) {
			t.Errorf("errors.Is(%v, %v) = false", err, want)
		}
		for other, s := range codes {
			if other != code && errors.Is(err, s) {
				t.Errorf("error with code %q matches the sentinel of %q", code, other)
			}
		}
	}
	if Sentinel("no_such_code") != nil {
		t.Error("unknown code has a sentinel")
	}
	if errors.Is(&Error{Code: "no_such_code"}, ErrInternal) {
		t.Error("unknown code matches ErrInternal")
	}
	if got := (&Error{Code: CodeNotHolder, Message: "stale token"}).Error(); got != "raftlock: not_holder: stale token" {
		t.Errorf("Error() = %q", got)
	}
}

func TestErrorResponseJSON(t *testing.T) {
	var r ErrorResponse
	in := `{"error":{"code":"lock_held","message":"held","holder":{"session":"7","owner":"o","token":12,"since":"2026-11-26T12:00:00.000000001Z"}}}`
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	if r.Error.Holder == nil || r.Error.Holder.Session != 7 || r.Error.Holder.Token != 12 || r.Error.Holder.Since.Nanosecond() != 1 {
		t.Fatalf("decoded %+v", r.Error.Holder)
	}
	if !errors.Is(&r.Error, ErrLockHeld) {
		t.Fatal("decoded error does not match ErrLockHeld")
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != in {
		t.Fatalf("round trip:\n got %s\nwant %s", b, in)
	}
	b, _ = json.Marshal(ErrorResponse{Error: Error{Code: CodeNotFound, Message: "x"}})
	if string(b) != `{"error":{"code":"not_found","message":"x"}}` {
		t.Fatalf("without holder: %s", b)
	}
}

func TestSessionIDJSON(t *testing.T) {
	b, _ := json.Marshal(AcquireRequest{Session: 18446744073709551615, Wait: Duration(1500 * time.Millisecond)})
	if string(b) != `{"session":"18446744073709551615","wait":"1.5s"}` {
		t.Fatalf("marshal: %s", b)
	}
	b, _ = json.Marshal(AcquireRequest{TTL: Duration(30 * time.Second), Owner: "o"})
	if string(b) != `{"ttl":"30s","owner":"o"}` {
		t.Fatalf("marshal ephemeral: %s", b)
	}
	var r AcquireRequest
	if err := json.Unmarshal([]byte(`{"session":"42","wait":"1m30s"}`), &r); err != nil || r.Session != 42 || time.Duration(r.Wait) != 90*time.Second {
		t.Fatalf("unmarshal: %+v %v", r, err)
	}
	for _, bad := range []string{`42`, `"0"`, `""`, `"-1"`, `"1e3"`, `"abc"`, `"18446744073709551616"`, `" 1"`, `true`, `{}`} {
		var id SessionID
		if err := json.Unmarshal([]byte(bad), &id); err == nil {
			t.Errorf("session id %s accepted as %d", bad, id)
		} else if !strings.Contains(err.Error(), "session id") {
			t.Errorf("session id %s: error %q does not name the session id", bad, err)
		}
	}
	var id SessionID = 5
	if err := json.Unmarshal([]byte(`null`), &id); err != nil || id != 5 {
		t.Errorf("null: %d %v", id, err)
	}
	// One session, one spelling: leading zeros are refused
	// (TestParseSessionIDLeadingZeros).
	if _, err := ParseSessionID("007"); err == nil {
		t.Errorf("ParseSessionID(007) accepted")
	}
}

func TestDurationJSON(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
	}{{`"10s"`, 10 * time.Second}, {`"1h"`, time.Hour}, {`"250ms"`, 250 * time.Millisecond}, {`"-1s"`, -time.Second}, {`"0s"`, 0}} {
		var d Duration
		if err := json.Unmarshal([]byte(c.in), &d); err != nil || time.Duration(d) != c.want {
			t.Errorf("%s: %v %v", c.in, time.Duration(d), err)
		}
	}
	for _, bad := range []string{`10`, `"10"`, `"ten seconds"`, `""`, `true`, `[]`} {
		var d Duration
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("duration %s accepted", bad)
		} else if !strings.Contains(err.Error(), "duration") {
			t.Errorf("duration %s: error %q", bad, err)
		}
	}
	b, _ := json.Marshal(SessionResponse{ID: 3, TTL: Duration(time.Hour)})
	if string(b) != `{"id":"3","ttl":"1h0m0s"}` {
		t.Fatalf("marshal: %s", b)
	}
}

func TestTimesAreUTCNano(t *testing.T) {
	h := Holder{Session: 1, Token: 2, Since: time.Unix(0, 1764158462123456789).UTC()}
	b, _ := json.Marshal(h)
	if !strings.Contains(string(b), `"since":"2025-11-26T12:01:02.123456789Z"`) {
		t.Fatalf("time: %s", b)
	}
}

func TestValidateLockName(t *testing.T) {
	for _, ok := range []string{"a", "jobs/nightly", "A-Z_0.9:x/y", strings.Repeat("x", MaxLockNameLen)} {
		if err := ValidateLockName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", " ", "a b", "é", "a?b", "a%2Fb", "a\x00", "a*", strings.Repeat("x", MaxLockNameLen+1)} {
		if err := ValidateLockName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := ValidateLockPrefix(""); err != nil {
		t.Errorf("empty prefix: %v", err)
	}
	if err := ValidateLockPrefix("a b"); err == nil {
		t.Error("bad prefix accepted")
	}
}

func TestPaths(t *testing.T) {
	for name, want := range map[string]string{
		"a":         "/v1/locks/a",
		"jobs/x":    "/v1/locks/jobs%2Fx",
		"x/release": "/v1/locks/x%2Frelease",
		"a:b.c-d_e": "/v1/locks/a:b.c-d_e",
	} {
		if got := LockPath(name); got != want {
			t.Errorf("LockPath(%q) = %q, want %q", name, got, want)
		}
	}
	if got := SessionPath(42); got != "/v1/sessions/42" {
		t.Errorf("SessionPath = %q", got)
	}
}

// LockPart is the low bits of the name's 32-bit FNV-1a hash (the SDK and
// other clients compute it alike).
func TestLockPart(t *testing.T) {
	// FNV-1a 32 of "a" is 0xe40c292c, of "" 0x811c9dc5.
	if got := LockPart("a", 1024); got != 0xe40c292c&1023 {
		t.Errorf(`LockPart("a", 1024) = %d, want %d`, got, 0xe40c292c&1023)
	}
	if got := LockPart("", 16); got != 0x811c9dc5&15 {
		t.Errorf(`LockPart("", 16) = %d`, got)
	}
	if got := LockPart("anything", 1); got != 0 {
		t.Errorf("one part: %d", got)
	}
}
