package raftnode

import (
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/etcdserver/api/rafthttp"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v2stats"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/raftlock/raftlock/wal"
)

// HTTPTransport is the production Transport: etcd's rafthttp, which keeps a
// long-lived stream per peer, queues per peer without blocking the sender,
// and reports unreachable peers and snapshot outcomes to the Receiver.
type HTTPTransport struct {
	t    *rafthttp.Transport
	errC chan error
	log  *slog.Logger
	done chan struct{}
}

// NewHTTPTransport starts a rafthttp transport for member id of the cluster
// whose members are peers (ID → peer URL), delivering to r. Serve Handler on
// the member's peer URL.
func NewHTTPTransport(id uint64, peers map[uint64]string, r Receiver, logger *slog.Logger) (*HTTPTransport, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// rafthttp logs through zap. Its warnings and errors go to our log: a
	// peer refused for a cluster ID mismatch (members started with
	// different --initial-cluster values) shows only there.
	for pid, u := range peers {
		if _, err := types.NewURLs([]string{u}); err != nil {
			return nil, fmt.Errorf("raftnode: member %d: peer url %q: %w", pid, u, err)
		}
	}
	zl := wal.NewZapLogger(logger.With("component", "rafthttp")).WithOptions(zap.IncreaseLevel(zap.WarnLevel))
	sid := strconv.FormatUint(id, 16)
	ht := &HTTPTransport{
		errC: make(chan error, 1),
		log:  logger,
		done: make(chan struct{}),
	}
	ht.t = &rafthttp.Transport{
		Logger:      zl,
		DialTimeout: time.Second,
		ID:          types.ID(id),
		ClusterID:   types.ID(ClusterID(peers)),
		Raft:        r,
		ServerStats: v2stats.NewServerStats(sid, sid),
		LeaderStats: v2stats.NewLeaderStats(zl, sid),
		ErrorC:      ht.errC,
	}
	if u, ok := peers[id]; ok {
		urls, err := types.NewURLs([]string{u})
		if err != nil {
			return nil, fmt.Errorf("raftnode: peer url %q: %w", u, err)
		}
		ht.t.URLs = urls
	}
	if err := ht.t.Start(); err != nil {
		return nil, fmt.Errorf("raftnode: start transport: %w", err)
	}
	go func() {
		select {
		case err := <-ht.errC:
			logger.Error("peer transport failed", "err", err)
		case <-ht.done:
		}
	}()
	return ht, nil
}

// Handler serves the peer endpoints (/raft...). Mount it on the peer URL.
func (ht *HTTPTransport) Handler() http.Handler { return ht.t.Handler() }

// Send implements Transport.
func (ht *HTTPTransport) Send(msgs []*raftpb.Message) { ht.t.Send(msgs) }

// AddPeer implements Transport.
func (ht *HTTPTransport) AddPeer(id uint64, url string) {
	if ht.t.Get(types.ID(id)) != nil {
		return
	}
	ht.t.AddPeer(types.ID(id), []string{url})
}

// Stop implements Transport.
func (ht *HTTPTransport) Stop() {
	select {
	case <-ht.done:
	default:
		close(ht.done)
		ht.t.Stop()
	}
}

// ClusterID derives the cluster's ID from its initial members, so that
// members of different clusters refuse each other's messages.
func ClusterID(peers map[uint64]string) uint64 {
	ids := make([]uint64, 0, len(peers))
	for id := range peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	h := fnv.New64a()
	for _, id := range ids {
		fmt.Fprintf(h, "%d=%s,", id, peers[id])
	}
	return h.Sum64()
}
