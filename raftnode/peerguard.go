package raftnode

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	etcdversion "go.etcd.io/etcd/api/v3/version"
	"go.etcd.io/etcd/server/v3/etcdserver/api/rafthttp"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// Only members speak Raft. Two gates enforce it, whatever TLS said:
//
//   - Node.Process drops (and counts, Status.DroppedPeerMessages) every
//     inbound message whose From is not a member other than this node, or
//     whose To is not this node. It is the last word: it holds whatever
//     the transport, and whatever the request's headers claimed.
//   - The peer guard (PeerGuard, in front of rafthttp's handler) refuses a
//     request whose sender header names no member before rafthttp sees
//     it, and bounds what it reads. rafthttp would otherwise read a /raft
//     body of any size into memory, add a remote (and so dial out) to the
//     address a stranger names in X-PeerURLs, and count the stranger in
//     prometheus series labelled by its address.
//
// Without peer TLS the sender header is only a claim: anyone who can reach
// the peer port can name a member and speak for it. With mutual TLS
// (--peer-trusted-ca-file) only holders of a certificate of the peer CA get
// past the handshake, and the checks here then guard against a member's
// mistakes (a stale peer, a wrong URL) rather than strangers.

// Headers rafthttp sends with every peer request.
const (
	headerFrom     = "X-Server-From" // the sender's member ID, hex
	headerTo       = "X-Raft-To"     // the addressee's member ID, hex (streams)
	headerPeerURLs = "X-PeerURLs"    // the sender's peer URLs
)

// MinSnapshotMessageBytes is the least MaxSnapshotBytes a Node answers: a
// snapshot of 1,000,000 held locks is about 33.5 MiB.
const MinSnapshotMessageBytes = 64 << 20

// PeerGate is what the peer guard needs to know of this node. *Node
// implements it; its methods are safe for concurrent use.
type PeerGate interface {
	// IsMember reports whether id is a current member of the cluster (this
	// node included).
	IsMember(id uint64) bool
	// MaxMessageBytes bounds the body of a /raft request that carries
	// anything but a snapshot.
	MaxMessageBytes() int64
	// MaxSnapshotBytes bounds the body of a /raft request that carries a
	// snapshot (MsgSnap). It is asked once per such request.
	MaxSnapshotBytes() int64
}

var _ PeerGate = (*Node)(nil)

// IsMember implements PeerGate: the members are the voters and learners
// of the configuration the loop last applied (the initial cluster until
// one is known), and the members added since that the others vouched for
// or that a membership change in this node's own log adds (vouch.go). Asked about an unknown ID above every ID it knows, it asks
// the others in the background.
func (n *Node) IsMember(id uint64) bool {
	if id == 0 {
		return false
	}
	if n.memberSet.Load().ids[id] {
		return true
	}
	if n.vouchers.isVouched(id) {
		n.vouch(id) // trusted from the log: the members confirm its URL
		return true
	}
	n.vouch(id)
	return false
}

// MaxMessageBytes implements PeerGate: 4 × MaxSizePerMsg + 4 MiB (8 MiB with
// the default 1 MiB). Raft fills an append message with entries up to
// MaxSizePerMsg, except that an entry larger than that goes alone; the
// largest raftlock entries are merged keep-alives (a few bytes per session:
// 4 MiB is about a million sessions) and commands of client bodies of at
// most 1 MiB. Larger messages travel on rafthttp's streams, which the peer
// guard does not bound: the stream's reader is the member that dialled.
func (n *Node) MaxMessageBytes() int64 {
	return 4*int64(n.cfg.MaxSizePerMsg) + 4<<20
}

// MaxSnapshotBytes implements PeerGate: twice the largest snapshot file this
// node keeps in its data dir (the newest few), and at least
// MinSnapshotMessageBytes. A snapshot message is the state machine's
// snapshot, the same bytes as a snap file, so the bound follows the state's
// size: the leader's state may have grown since this node's last snapshot,
// but rarely to double. A member that was down while the state more than
// doubled (and grew past 32 MiB) refuses the leader's snapshot and says so
// in its log, naming both sizes; raftlockd's --peer-max-snapshot-bytes
// raises the bound.
func (n *Node) MaxSnapshotBytes() int64 {
	largest := int64(0)
	// The wal package keeps snap files in DataDir/snap (see wal/doc.go).
	ents, err := os.ReadDir(filepath.Join(n.cfg.DataDir, "snap"))
	if err == nil {
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".snap") {
				continue
			}
			if fi, err := e.Info(); err == nil && fi.Size() > largest {
				largest = fi.Size()
			}
		}
	}
	return max(int64(MinSnapshotMessageBytes), 2*largest)
}

// droppedPeerMessages returns how many inbound messages Process dropped.
func (n *Node) droppedPeerMessages() uint64 { return n.peerDrops.Load() }

// acceptInbound reports whether an inbound message may reach raft: its
// From is a member other than this node and its To is this node. It counts
// and logs (at 1, 2, 4, 8, … drops: a flood writes a few lines) the others.
func (n *Node) acceptInbound(m *raftpb.Message) bool {
	from, to := m.GetFrom(), m.GetTo()
	var why string
	switch {
	case to != n.id:
		why = "addressed to another member"
	case from == n.id:
		why = "claims to come from this member"
	case !n.IsMember(from):
		why = "not from a member"
	default:
		return true
	}
	if k := n.peerDrops.Add(1); k&(k-1) == 0 {
		n.log.Warn("dropped an inbound raft message: "+why, "type", m.GetType().String(),
			"from", from, "to", to, "term", m.GetTerm(), "dropped_total", k)
	}
	return false
}

// PeerGuard is the peer endpoint's http.Handler: it refuses what no member
// sends before rafthttp's handler reads anything, then hands the request
// over. For every request it
//
//   - deletes X-PeerURLs: peers' URLs come from the membership, never from
//     a request (rafthttp would add a remote and dial the address given);
//   - serves GET /raft/probing (rafthttp's health probe, no body) to
//     anyone;
//   - for /raft (one message) and /raft/stream/{message,msgapp}/{id}:
//     refuses with 403, reading nothing but the headers, a request whose
//     X-Server-From is not a member other than this node or whose X-Raft-To
//     (required on streams) is not this node, and a stream whose path names
//     another sender than its header;
//   - for /raft, reads at most the first 33 bytes of the body (the
//     message's type, to and from, which protobuf writes first) and refuses
//     a message whose to is not this node or whose from is not its sender;
//     then bounds the body to MaxSnapshotBytes for a snapshot (MsgSnap) and
//     to MaxMessageBytes for anything else: 413 before reading when the
//     declared length is over, a failed read when a body without one runs
//     over. A snapshot's read deadline is extended by one second per MiB;
//   - refuses every other path with 404, /raft/snapshot included: it is
//     where etcd streams its database, which raftlock never sends (its
//     snapshots are MsgSnap messages on /raft), and rafthttp's handler would
//     dereference the nil snapshotter there.
//
// A refusal answers on the hijacked connection and closes it, so that the
// server does not read the body to reuse the connection.
//
// rafthttp's prometheus metrics label some series (receive failures) by the
// remote address: with strangers refused here, before rafthttp, they
// cannot create series.
type PeerGuard struct {
	self    uint64
	selfHex string
	gate    PeerGate
	next    http.Handler
	log     *slog.Logger
	refused atomic.Uint64
}

// NewPeerGuard returns a guard for member self that hands accepted requests
// to next (rafthttp's handler). logger may be nil.
func NewPeerGuard(self uint64, gate PeerGate, next http.Handler, logger *slog.Logger) *PeerGuard {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &PeerGuard{self: self, selfHex: strconv.FormatUint(self, 16), gate: gate, next: next, log: logger}
}

// Refused returns how many requests the guard has refused.
func (g *PeerGuard) Refused() uint64 { return g.refused.Load() }

// peekLen covers three leading varint fields: a one-byte tag and a varint
// of at most 10 bytes each.
const peekLen = 3 * (1 + binary.MaxVarintLen64)

// snapshotReadRate is the slowest transfer of a snapshot body the guard
// waits for, on top of the server's read timeout.
const snapshotReadRate = 1 << 20 // bytes per second

// ServeHTTP implements http.Handler (see PeerGuard).
func (g *PeerGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Header.Del(headerPeerURLs)
	p := r.URL.Path
	switch {
	case p == rafthttp.ProbingPrefix:
		if r.Method != http.MethodGet || r.ContentLength != 0 {
			g.refuse(w, r, http.StatusBadRequest, "a probe is a GET without a body")
			return
		}
		g.next.ServeHTTP(w, r)
	case p == rafthttp.RaftPrefix:
		if r.Method != http.MethodPost {
			g.refuse(w, r, http.StatusMethodNotAllowed, "/raft takes POST")
			return
		}
		from, why := g.sender(r)
		if why != "" {
			status := senderStatus(why)
			if why == notMember {
				// rafthttp takes a 403 to a message as "you were
				// removed", and stops: a member that this node does not
				// know yet (a joiner, while this node has not applied its
				// addition) must not be told that.
				status = http.StatusServiceUnavailable
			}
			g.refuse(w, r, status, why)
			return
		}
		g.message(w, r, from)
	case strings.HasPrefix(p, rafthttp.RaftStreamPrefix+"/"):
		g.stream(w, r)
	case p == PeerVersionPath || p == PeerClusterPath:
		g.servePeerInfo(w, r)
	default:
		g.refuse(w, r, http.StatusNotFound, "no such peer endpoint")
	}
}

// sender returns the member that r says it comes from, or why it is
// refused.
func (g *PeerGuard) sender(r *http.Request) (uint64, string) {
	h := r.Header.Get(headerFrom)
	from, err := strconv.ParseUint(h, 16, 64)
	switch {
	case err != nil || from == 0:
		return 0, "no member ID in " + headerFrom
	case from == g.self:
		return 0, "the sender claims to be this member"
	case g.removed(from):
		return 0, removedMember
	case !g.gate.IsMember(from):
		return 0, notMember
	}
	if to := r.Header.Get(headerTo); to != "" && to != g.selfHex {
		return 0, "the request is addressed to another member"
	}
	return from, ""
}

// notMember is sender's reason for a sender that is not a member (a
// stranger, or a member this node has not applied the addition of yet).
const notMember = "the sender is not a member"

// removedMember is sender's reason for a removed member: refuse answers it
// 410 Gone, as rafthttp does, so that the member learns it was removed
// and stops.
const removedMember = "removed member"

func (g *PeerGuard) removed(id uint64) bool {
	rc, ok := g.gate.(removedChecker)
	return ok && rc.IsIDRemoved(id)
}

// stream checks a stream request: GET, no body, a member sender named
// alike in the path and X-Server-From, and X-Raft-To this node.
func (g *PeerGuard) stream(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	dir, base := path.Dir(p), path.Base(p)
	if p != path.Clean(p) || (dir != rafthttp.RaftStreamPrefix+"/message" && dir != rafthttp.RaftStreamPrefix+"/msgapp") {
		g.refuse(w, r, http.StatusNotFound, "no such stream")
		return
	}
	if r.Method != http.MethodGet || r.ContentLength != 0 {
		g.refuse(w, r, http.StatusBadRequest, "a stream is a GET without a body")
		return
	}
	from, why := g.sender(r)
	switch {
	case why != "":
	case r.Header.Get(headerTo) != g.selfHex:
		why = "a stream must name this member in " + headerTo
	case base != strconv.FormatUint(from, 16):
		why = "the stream's path names another sender than " + headerFrom
	}
	if why != "" {
		g.refuse(w, r, senderStatus(why), why)
		return
	}
	g.next.ServeHTTP(w, r)
}

// senderStatus is the status of a refusal for sender's reason why.
func senderStatus(why string) int {
	if why == removedMember {
		return http.StatusGone
	}
	return http.StatusForbidden
}

// message bounds the body of a /raft request from member from and hands it
// to rafthttp.
func (g *PeerGuard) message(w http.ResponseWriter, r *http.Request, from uint64) {
	br := bufio.NewReaderSize(r.Body, 64)
	head, _ := br.Peek(peekLen) // shorter at the end of a short body
	h := parseHead(head)
	if (h.hasTo && h.to != g.self) || (h.hasFrom && h.from != from) {
		g.refuse(w, r, http.StatusForbidden, fmt.Sprintf("the message (to %d, from %d) is not from its sender to this member", h.to, h.from))
		return
	}
	limit, kind := g.gate.MaxMessageBytes(), "message"
	if h.typ == raftpb.MessageType_MsgSnap {
		limit, kind = g.gate.MaxSnapshotBytes(), "snapshot"
	}
	if r.ContentLength > limit {
		g.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("a %s of %d bytes is over this member's limit of %d bytes", kind, r.ContentLength, limit))
		return
	}
	if kind == "snapshot" {
		size := r.ContentLength
		if size < 0 {
			size = limit
		}
		budget := 10*time.Second + time.Duration(size/snapshotReadRate)*time.Second
		// ErrNotSupported under a test recorder; the server's own deadline
		// then holds.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(budget))
		g.log.Info("receiving a snapshot", "from", from, "bytes", r.ContentLength, "limit", limit)
	}
	r.Body = http.MaxBytesReader(w, readCloser{br, r.Body}, limit)
	g.next.ServeHTTP(w, r)
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}

// head is what parseHead found at the start of an encoded raftpb.Message.
type head struct {
	typ            raftpb.MessageType
	to, from       uint64
	hasTo, hasFrom bool
}

// parseHead reads the leading fields of an encoded raftpb.Message: type (1),
// to (2), from (3). protobuf-go writes known fields in field-number order,
// so a message from rafthttp starts with them; whatever it cannot read
// stays unknown (type MsgHup, the zero value), and Process checks the whole
// message later.
func parseHead(b []byte) head {
	var h head
	for i := 0; i < 3 && len(b) > 0; i++ {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.VarintType || num < 1 || num > 3 {
			break
		}
		v, m := protowire.ConsumeVarint(b[n:])
		if m < 0 {
			break
		}
		b = b[n+m:]
		switch num {
		case 1:
			h.typ = raftpb.MessageType(v)
		case 2:
			h.to, h.hasTo = v, true
		case 3:
			h.from, h.hasFrom = v, true
		}
	}
	return h
}

// refuse answers status with reason and closes the connection without
// reading the request's body. It counts and logs the refusal (at 1, 2, 4,
// 8, … refusals, so that a flood writes a few lines).
func (g *PeerGuard) refuse(w http.ResponseWriter, r *http.Request, status int, reason string) {
	if k := g.refused.Add(1); k&(k-1) == 0 {
		g.log.Warn("refused a peer request: "+reason, "status", status, "method", r.Method, "path", r.URL.Path,
			"remote", r.RemoteAddr, "from_header", r.Header.Get(headerFrom), "refused_total", k)
	}
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 or a test recorder: answer the usual way (the server may
		// then read a small body to discard it).
		w.Header().Set("Connection", "close")
		w.Header().Set("X-Server-Version", etcdversion.Version)
		http.Error(w, reason, status)
		return
	}
	body := reason + "\n"
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	// rafthttp reads a stream's status only from a peer whose
	// X-Server-Version it supports: without it, a removed member would
	// not learn from the 410 that it was removed.
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nX-Server-Version: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), etcdversion.Version, len(body), body)
	_ = buf.Flush()
	// Closing a socket with unread input sends a reset, which can destroy
	// the answer before the client reads it: close a moment later, as
	// net/http does, without reading.
	time.AfterFunc(500*time.Millisecond, func() { _ = conn.Close() })
}
