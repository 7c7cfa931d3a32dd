//go:build !raftlock_mutants

package raftnode

// mutated reports whether a known bug is switched on: never, in a build
// without the tag raftlock_mutants (see mutants.go).
func mutated(mutant) bool { return false }
