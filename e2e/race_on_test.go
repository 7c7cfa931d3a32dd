//go:build race

package e2e

// raceServer: a test binary built with -race builds raftlockd with -race
// too, so that the end-to-end tests also catch data races in the server
// under real failures (each cluster's cleanup fails on a race report).
const raceServer = true
