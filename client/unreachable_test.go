package client

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
)

// closedPort returns the URL of a 127.0.0.1 port where nobody listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

// With nobody listening, a call says once which endpoints it could not
// reach and why, and the error still matches api.ErrUnavailable and the
// system's error.
func TestUnreachableError(t *testing.T) {
	a, b := closedPort(t), closedPort(t)
	c, err := New(Config{Endpoints: []string{a, b}, RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testCtx(t)
	want := "cannot reach raftlockd at " + a + ", " + b + " (connection refused)"

	_, err = c.LockInfo(ctx, "x")
	if err == nil || err.Error() != want {
		t.Errorf("LockInfo: %v, want %q", err, want)
	}
	var ue *UnreachableError
	if !errors.As(err, &ue) || len(ue.Endpoints) != 2 || ue.Endpoints[0] != a || ue.Reasons[1] != "connection refused" {
		t.Errorf("errors.As: %#v", ue)
	}
	if !errors.Is(err, api.ErrUnavailable) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%v matches neither api.ErrUnavailable nor ECONNREFUSED", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Errorf("%v: no *net.OpError", err)
	}

	// Wrapped by what the SDK was doing, once. (The client starts where
	// it left off: at either endpoint.)
	_, err = c.NewSession(ctx)
	if err == nil || !errors.As(err, &ue) || !errors.Is(err, api.ErrUnavailable) ||
		err.Error() != "client: new session: "+want && err.Error() != "client: new session: cannot reach raftlockd at "+b+", "+a+" (connection refused)" {
		t.Errorf("NewSession: %v", err)
	}
	if strings.Count(err.Error(), "client:") != 1 {
		t.Errorf("layers: %q", err)
	}
}

// One endpoint that answers (here 503) makes the cluster not unreachable.
func TestAnsweredIsNotUnreachable(t *testing.T) {
	var u unreachable
	u.add("http://a", errors.New("boom"))
	u.add("http://b", &api.Error{Code: api.CodeUnavailable, Message: "no leader"})
	if e := u.err(); e != nil {
		t.Errorf("an answer, and still %v", e)
	}
	u = unreachable{}
	u.add("http://a", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", IsNotFound: true}})
	u.add("http://b", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED})
	u.add("http://a", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED})
	if e := u.err(); e == nil || e.Error() != "cannot reach raftlockd at http://a, http://b (connection refused)" {
		t.Errorf("%v", e)
	}
	u.add("http://b", &net.OpError{Op: "read", Err: &timeoutError{}})
	if e := u.err(); e == nil || e.Error() != "cannot reach raftlockd at http://a (connection refused), http://b (timed out)" {
		t.Errorf("%v", e)
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
