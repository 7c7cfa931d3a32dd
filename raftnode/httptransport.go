package raftnode

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
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
	t       *rafthttp.Transport
	guard   *PeerGuard
	errC    chan error
	log     *slog.Logger
	done    chan struct{}
	probeRT http.RoundTripper

	mu    sync.Mutex
	peers map[uint64]string // the peers added, for the version prober
}

// HTTPTransportConfig configures NewHTTPTransportWith.
type HTTPTransportConfig struct {
	// ID is this member's ID. Required.
	ID uint64
	// Peers are the cluster's members, ID → peer URL, this member included.
	Peers map[uint64]string
	// Receiver gets the inbound messages. Required.
	Receiver Receiver
	// Gate tells the peer guard who the members are and how much it may
	// read. nil: the Receiver if it is a PeerGate (a *Node is), otherwise
	// the members of Peers with DefaultConfig's bounds.
	Gate PeerGate
	// TLS is the peer client's TLS when the peer URLs are https: this
	// member's certificate (CertFile, KeyFile, re-read at each handshake),
	// the CA that signs the members' certificates (TrustedCAFile) and
	// AllowedCNs, which the members' server certificates must match too.
	// Empty for plaintext http.
	TLS transport.TLSInfo
	// ClusterID is the cluster's ID (Node.ClusterID); 0: ClusterID(Peers),
	// the ID of a cluster created before IDs were stored.
	ClusterID uint64
	// OnRemoved is called (once, on a goroutine of the transport) when
	// another member says that this one was removed from the cluster.
	OnRemoved func()
	// VersionProbeInterval is how often the transport asks every peer for
	// the command format it reads (and times the round trip), for a
	// Receiver that takes the answers (a *Node: ReportProbe). Default 2s.
	VersionProbeInterval time.Duration
	// Logger receives the transport's warnings; nil discards them.
	Logger *slog.Logger
}

// NewHTTPTransport starts a plaintext rafthttp transport for member id of
// the cluster whose members are peers (ID → peer URL), delivering to r.
// Serve Handler on the member's peer URL. See NewHTTPTransportWith.
func NewHTTPTransport(id uint64, peers map[uint64]string, r Receiver, logger *slog.Logger) (*HTTPTransport, error) {
	return NewHTTPTransportWith(HTTPTransportConfig{ID: id, Peers: peers, Receiver: r, Logger: logger})
}

// NewHTTPTransportWith starts a rafthttp transport as cfg says. Its Handler
// serves the peer endpoints behind a PeerGuard.
func NewHTTPTransportWith(cfg HTTPTransportConfig) (*HTTPTransport, error) {
	id, peers, r, logger := cfg.ID, cfg.Peers, cfg.Receiver, cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if r == nil {
		return nil, errors.New("raftnode: transport: no receiver")
	}
	// rafthttp logs through zap. Its warnings and errors go to our log: a
	// peer refused for a cluster ID mismatch (members started with
	// different --initial-cluster values) shows only there.
	for pid, u := range peers {
		if _, err := types.NewURLs([]string{u}); err != nil {
			return nil, fmt.Errorf("raftnode: member %d: peer url %q: %w", pid, u, err)
		}
	}
	zl := zap.NewNop()
	if logger.Enabled(context.Background(), slog.LevelWarn) {
		zl = wal.NewZapLogger(logger.With("component", "rafthttp")).WithOptions(zap.IncreaseLevel(zap.WarnLevel))
	}
	sid := strconv.FormatUint(id, 16)
	gate := cfg.Gate
	if gate == nil {
		if g, ok := r.(PeerGate); ok {
			gate = g
		} else {
			gate = staticGate{members: peers, maxMsg: 4*int64(DefaultConfig().MaxSizePerMsg) + 4<<20}
		}
	}
	tlsInfo := cfg.TLS
	if !tlsInfo.Empty() && tlsInfo.Logger == nil {
		tlsInfo.Logger = zl
	}
	ht := &HTTPTransport{
		errC:  make(chan error, 1),
		log:   logger,
		done:  make(chan struct{}),
		peers: map[uint64]string{},
	}
	cid := cfg.ClusterID
	if cid == 0 {
		cid = ClusterID(peers)
	}
	ht.t = &rafthttp.Transport{
		Logger:      zl,
		TLSInfo:     tlsInfo,
		DialTimeout: time.Second,
		ID:          types.ID(id),
		ClusterID:   types.ID(cid),
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
	ht.guard = NewPeerGuard(id, gate, ht.t.Handler(), logger.With("component", "peer-guard"))
	go func() {
		select {
		case err := <-ht.errC:
			logger.Error("peer transport failed", "err", err)
			if strings.Contains(err.Error(), "permanently removed") && cfg.OnRemoved != nil {
				// rafthttp's error for a 410 Gone is not exported.
				cfg.OnRemoved()
			}
		case <-ht.done:
		}
	}()
	if vr, ok := r.(probeReporter); ok {
		rt, err := rafthttp.NewRoundTripper(tlsInfo, time.Second)
		if err != nil {
			ht.Stop()
			return nil, fmt.Errorf("raftnode: version prober: %w", err)
		}
		ht.probeRT = rt
		every := cfg.VersionProbeInterval
		if every <= 0 {
			every = 2 * time.Second
		}
		go ht.probeVersions(id, vr, every)
	}
	return ht, nil
}

// staticGate is the PeerGate of a fixed member set.
type staticGate struct {
	members map[uint64]string
	maxMsg  int64
}

func (g staticGate) IsMember(id uint64) bool {
	_, ok := g.members[id]
	return id != 0 && ok
}
func (g staticGate) MaxMessageBytes() int64  { return g.maxMsg }
func (g staticGate) MaxSnapshotBytes() int64 { return MinSnapshotMessageBytes }

// Handler serves the peer endpoints (/raft...) behind the PeerGuard. Mount
// it on the peer URL.
func (ht *HTTPTransport) Handler() http.Handler { return ht.guard }

// Guard returns the PeerGuard in front of Handler.
func (ht *HTTPTransport) Guard() *PeerGuard { return ht.guard }

// Send implements Transport.
func (ht *HTTPTransport) Send(msgs []*raftpb.Message) { ht.t.Send(msgs) }

// AddPeer implements Transport.
func (ht *HTTPTransport) AddPeer(id uint64, url string) {
	ht.mu.Lock()
	ht.peers[id] = url
	ht.mu.Unlock()
	if ht.t.Get(types.ID(id)) != nil {
		return
	}
	ht.t.AddPeer(types.ID(id), []string{url})
}

// RemovePeer implements Transport.
func (ht *HTTPTransport) RemovePeer(id uint64) {
	ht.mu.Lock()
	delete(ht.peers, id)
	ht.mu.Unlock()
	if ht.t.Get(types.ID(id)) == nil {
		return
	}
	ht.t.RemovePeer(types.ID(id))
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

// ClusterIDFor derives a new cluster's ID from its token and initial
// members. With an empty token it is ClusterID(peers), the ID of clusters
// created before tokens existed.
func ClusterIDFor(token string, peers map[uint64]string) uint64 {
	if token == "" {
		return ClusterID(peers)
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "token=%s;", token)
	fmt.Fprintf(h, "%x", ClusterID(peers))
	return h.Sum64()
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
