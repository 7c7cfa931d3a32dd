//go:build !race

package e2e

// raceServer: see race_on_test.go.
const raceServer = false
