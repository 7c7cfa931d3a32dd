package wal

import (
	"testing"

	etcdwal "go.etcd.io/etcd/server/v3/storage/wal"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Small segments keep preallocation and the copies made by wal.Repair
	// cheap. Set before any test runs, so no test races with it.
	etcdwal.SegmentSizeBytes = 256 * 1024
	goleak.VerifyTestMain(m)
}
