package client

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/raftlock/raftlock/internal/testserver"
)

// TestMain serves the Example functions (which have no *testing.T) from a
// single-node server named by RAFTLOCK_ENDPOINTS, and checks that nothing
// leaks once it is stopped.
func TestMain(m *testing.M) {
	srv, err := testserver.StartMain(testserver.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv(EnvEndpoints, srv.URL)
	code := m.Run()
	if err := srv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
