package raftnode

import (
	"context"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Transport carries raft messages between members. Send must not block: a
// transport queues per peer, drops what does not fit, and reports the peer
// unreachable. Messages handed to Send belong to the transport afterwards.
type Transport interface {
	Send(msgs []*raftpb.Message)
	// AddPeer makes peer id reachable at url (idempotent).
	AddPeer(id uint64, url string)
	// RemovePeer forgets peer id (idempotent).
	RemovePeer(id uint64)
	// Stop releases the transport's resources.
	Stop()
}

// Receiver is the node side a transport delivers to. *Node implements it
// (and so etcd's rafthttp.Raft).
type Receiver interface {
	Process(ctx context.Context, m *raftpb.Message) error
	IsIDRemoved(id uint64) bool
	ReportUnreachable(id uint64)
	ReportSnapshot(id uint64, status raft.SnapshotStatus)
}
