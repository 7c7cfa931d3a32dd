package raftnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/etcdserver/api/rafthttp"

	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/version"
)

// Paths of raftlock's own peer endpoints, served by the PeerGuard to
// members only, beside rafthttp's /raft endpoints.
const (
	// PeerVersionPath answers the member's build and the newest command
	// format it reads (PeerVersion): the leader asks every member, to
	// raise the cluster version (etcd asks its peers' /version alike).
	PeerVersionPath = "/raftlock/version"
	// PeerClusterPath answers the cluster's ID, command version and
	// members (ClusterInfo): a member that joins a running cluster asks
	// it of the others before it creates its data dir.
	PeerClusterPath = "/raftlock/cluster"
)

// PeerVersion is the answer of PeerVersionPath.
type PeerVersion struct {
	Version        string `json:"version"`
	CommandVersion int    `json:"command_version"`
}

// ClusterInfo is the answer of PeerClusterPath.
type ClusterInfo struct {
	// ClusterID in hexadecimal (it is a 64-bit hash).
	ClusterID      string       `json:"cluster_id"`
	ClusterVersion int          `json:"cluster_version"`
	Members        []MemberInfo `json:"members"`
}

// MemberInfo is one member in ClusterInfo.
type MemberInfo struct {
	ID      uint64 `json:"id"`
	PeerURL string `json:"peer_url"`
	Learner bool   `json:"learner,omitempty"`
}

// ClusterInfo returns the cluster's ID, command version and members as this
// node last applied them.
func (n *Node) ClusterInfo() ClusterInfo {
	st := n.Status()
	ci := ClusterInfo{ClusterID: strconv.FormatUint(n.clusterID, 16), ClusterVersion: st.ClusterVersion}
	for _, m := range st.Members {
		ci.Members = append(ci.Members, MemberInfo{ID: m.ID, PeerURL: m.PeerURL, Learner: m.Learner})
	}
	return ci
}

// clusterInformer is what the PeerGuard needs to answer PeerClusterPath
// (*Node).
type clusterInformer interface{ ClusterInfo() ClusterInfo }

// removedChecker is what the PeerGuard needs to answer a removed member
// 410 Gone, which makes rafthttp on that member report that it was
// removed (*Node).
type removedChecker interface{ IsIDRemoved(id uint64) bool }

// probeReporter receives what the prober learns of each peer (*Node).
type probeReporter interface {
	ReportProbe(id uint64, ok bool, commandVersion int, rtt time.Duration)
}

// servePeerInfo answers PeerVersionPath and PeerClusterPath to a member.
func (g *PeerGuard) servePeerInfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.ContentLength > 0 {
		g.refuse(w, r, http.StatusMethodNotAllowed, r.URL.Path+" takes GET without a body")
		return
	}
	if _, why := g.sender(r); why != "" {
		g.refuse(w, r, senderStatus(why), why)
		return
	}
	var v any
	switch r.URL.Path {
	case PeerVersionPath:
		v = PeerVersion{Version: version.Get().Version, CommandVersion: lock.MaxCommandVersion}
	case PeerClusterPath:
		ci, ok := g.gate.(clusterInformer)
		if !ok {
			g.refuse(w, r, http.StatusNotFound, "no cluster information here")
			return
		}
		v = ci.ClusterInfo()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// FetchClusterInfo asks the members at peers (ID → peer URL; self is
// skipped) for the cluster's information, as member self, over TLS when
// tlsInfo is not empty. The first answer wins; the error names every
// member that did not answer. A joining member calls it before it creates
// its data dir: the others answer only once the member was added.
func FetchClusterInfo(ctx context.Context, self uint64, peers map[uint64]string, tlsInfo transport.TLSInfo) (ClusterInfo, error) {
	rt, err := rafthttp.NewRoundTripper(tlsInfo, 5*time.Second)
	if err != nil {
		return ClusterInfo{}, fmt.Errorf("raftnode: fetch cluster info: %w", err)
	}
	c := &http.Client{Transport: rt, Timeout: 5 * time.Second}
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(peers)) {
		if id == self {
			continue
		}
		var ci ClusterInfo
		if err := getPeerJSON(ctx, c, self, peers[id]+PeerClusterPath, &ci); err != nil {
			errs = append(errs, fmt.Errorf("member %d at %s: %w", id, peers[id], err))
			continue
		}
		return ci, nil
	}
	if len(errs) == 0 {
		return ClusterInfo{}, errors.New("raftnode: fetch cluster info: no other member to ask")
	}
	return ClusterInfo{}, fmt.Errorf("raftnode: fetch cluster info: %w", errors.Join(errs...))
}

// errNoEndpoint: the member answered 404 (a build without the endpoint).
var errNoEndpoint = errors.New("no such endpoint")

func getPeerJSON(ctx context.Context, c *http.Client, self uint64, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set(headerFrom, strconv.FormatUint(self, 16))
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return errNoEndpoint
	case resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("refused (%s): is this member added to the cluster (raftlock member add)?", http.StatusText(resp.StatusCode))
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("answered %s", resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode the answer: %w", err)
	}
	return nil
}

// probeVersions asks every peer for the command format it reads, every
// interval, and reports it and the round trip to r, until done is closed. A member that
// answers 404 runs a build from before the cluster version: it reads
// lock.BaseCommandVersion.
// probeClient is the HTTP client of the transport's own peer requests.
func (ht *HTTPTransport) probeClient() *http.Client {
	return &http.Client{Transport: ht.probeRT, Timeout: 5 * time.Second}
}

func (ht *HTTPTransport) probeVersions(self uint64, r probeReporter, interval time.Duration) {
	c := &http.Client{Transport: ht.probeRT, Timeout: interval}
	tk := time.NewTicker(interval)
	defer tk.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-ht.done
		cancel()
	}()
	for {
		ht.mu.Lock()
		peers := maps.Clone(ht.peers)
		ht.mu.Unlock()
		for id, u := range peers {
			var v PeerVersion
			began := time.Now()
			err := getPeerJSON(ctx, c, self, u+PeerVersionPath, &v)
			rtt := time.Since(began)
			switch {
			case errors.Is(err, errNoEndpoint):
				r.ReportProbe(id, true, lock.BaseCommandVersion, rtt)
			case err == nil && v.CommandVersion > 0:
				r.ReportProbe(id, true, v.CommandVersion, rtt)
			case ctx.Err() == nil:
				r.ReportProbe(id, false, 0, 0)
			}
		}
		select {
		case <-tk.C:
		case <-ht.done:
			return
		}
	}
}
