package raftnode

// The one place where tests reach into raft's private state. Everything
// else they need from raft goes through its public API (RawNode,
// BasicStatus).

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"unsafe"

	"go.etcd.io/raft/v3"
)

// raftInternalsCheckedWith is the version of go.etcd.io/raft/v3 whose
// private fields raftElectionTimeout was checked against.
const raftInternalsCheckedWith = "v3.7.0"

// raftElectionTimeout returns a pointer to the randomised election timeout
// of rn's raft (raft.go: raft.randomizedElectionTimeout, an int of ticks,
// drawn from crypto/rand by resetRandomizedElectionTimeout). raft offers
// no way to choose it, and the simulation must, so that a seed replays
// exactly. It panics when the raft module is not the version it was
// checked against, or when the field is not where and what it was: read
// raft.go of the new version and update this function.
func raftElectionTimeout(rn *raft.RawNode) *int {
	if v := raftModuleVersion(); v != raftInternalsCheckedWith {
		panic(fmt.Sprintf("simulation: go.etcd.io/raft/v3 is %s, but raftElectionTimeout was checked against %s: check raft.randomizedElectionTimeout in raft.go and update raftinternals_test.go",
			v, raftInternalsCheckedWith))
	}
	rv := reflect.ValueOf(rn).Elem().FieldByName("raft")
	if !rv.IsValid() || rv.Kind() != reflect.Pointer {
		panic("simulation: raft.RawNode has no field raft: update raftinternals_test.go for this raft version")
	}
	f := rv.Elem().FieldByName("randomizedElectionTimeout")
	if !f.IsValid() || f.Kind() != reflect.Int {
		panic("simulation: raft has no int field randomizedElectionTimeout: update raftinternals_test.go for this raft version")
	}
	return (*int)(unsafe.Pointer(f.UnsafeAddr()))
}

// raftModuleVersion is the version of go.etcd.io/raft/v3 that go.mod
// requires (a test binary's build information lists no dependencies).
func raftModuleVersion() string {
	b, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		return fmt.Sprintf("unknown (%v)", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "go.etcd.io/raft/v3" {
			return f[1]
		}
	}
	return "unknown (not in go.mod)"
}
