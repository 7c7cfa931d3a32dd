package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/raftlock/raftlock/api"
)

func TestMain(m *testing.M) {
	// The in-process runs of lock, elect and sidecar start their CMD's
	// supervisor by running this test binary again (/proc/self/exe).
	if code, ok := supervisorMode(os.Args[1:]); ok {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if binDir != "" {
			os.RemoveAll(binDir)
		}
		os.Exit(code)
	}))
}

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// binary builds raftlock once per test run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "raftlock-cli-test"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "raftlock")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/raftlock/raftlock/cmd/raftlock").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// result is what an in-process run gave.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the CLI in the test process with the given environment.
func runCLI(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	return result{code, out.String(), errb.String()}
}

// rest is a small REST client for setting up state behind the CLI's back.
type rest struct {
	t   *testing.T
	url string
	hc  *http.Client
}

func newREST(t *testing.T, url string) *rest {
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: 10 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	return &rest{t: t, url: url, hc: hc}
}

// do sends a request and decodes a 2xx answer into out; it fails the test otherwise.
func (r *rest) do(method, path, body string, out any) {
	r.t.Helper()
	req, err := http.NewRequest(method, r.url+path, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		r.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			r.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

func (r *rest) session(ttl, owner string) api.SessionID {
	var s api.SessionResponse
	r.do("POST", "/v1/sessions", fmt.Sprintf(`{"ttl":%q,"owner":%q}`, ttl, owner), &s)
	return s.ID
}

func (r *rest) acquire(name string, id api.SessionID) api.LockGrant {
	var g api.LockGrant
	r.do("POST", api.LockPath(name)+"/acquire", fmt.Sprintf(`{"session":"%d"}`, id), &g)
	return g
}

func (r *rest) lock(name string) api.Lock {
	var l api.Lock
	r.do("GET", api.LockPath(name), "", &l)
	return l
}
