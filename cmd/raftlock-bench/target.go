package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	recipe "go.etcd.io/etcd/client/v3/experimental/recipes"
	"go.uber.org/zap"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/client"
)

// Target is a lock service under test: a raftlock cluster through the SDK
// in client/, or an etcd cluster through clientv3/concurrency. Its methods
// are safe for concurrent use.
type Target interface {
	// Name is "raftlock" or "etcd".
	Name() string
	// HasSemaphores reports whether its workers can Acquire and Release
	// (etcd has no semaphore recipe).
	HasSemaphores() bool
	// Settle waits until the cluster takes every request the workloads
	// send (raftlock: until its cluster version allows semaphores and
	// shared locks, a moment after a new cluster's first leader).
	Settle(ctx context.Context) error
	// NewWorker opens a session with ttl (kept alive by the client
	// library) on behalf of one worker.
	NewWorker(ctx context.Context, ttl time.Duration) (Worker, error)
	// OpenSession opens a session with ttl that the client library keeps
	// alive until it is closed.
	OpenSession(ctx context.Context, ttl time.Duration) (Session, error)
	// Leader returns the client URL of the current leader.
	Leader(ctx context.Context) (string, error)
	// RaftIndex returns the commit index of the Raft log (as a node knows
	// it: the leader's when it answers).
	RaftIndex(ctx context.Context) (uint64, error)
	// KeepAlivesSent returns how many keep-alive requests the target's
	// client has sent so far and how many session renewals they carried
	// (a batched request renews many), or -1, -1 when it cannot tell
	// (etcd streams them over gRPC).
	KeepAlivesSent() (requests, renewals int64)
	// Close releases the client. Sessions should be closed first.
	Close() error
}

// Session is a session (lease) kept alive by the client library.
type Session interface {
	// Done is closed when the session ends (closed or lost).
	Done() <-chan struct{}
	// Close ends the session on the server.
	Close(ctx context.Context) error
}

// Worker is one session with its locks and elections. Its methods are
// safe for concurrent use as long as two calls do not use the same name
// at the same time.
type Worker interface {
	// Lock acquires lock name, waiting for it.
	Lock(ctx context.Context, name string) error
	// TryLock acquires lock name if it is free, without waiting.
	TryLock(ctx context.Context, name string) error
	// Unlock releases lock name.
	Unlock(ctx context.Context, name string) error
	// Campaign waits until the session leads election name.
	Campaign(ctx context.Context, name, value string) error
	// Resign gives up the leadership of election name.
	Resign(ctx context.Context, name string) error
	// Acquire takes a permit of semaphore name (limit permits), waiting
	// for one; Release gives it back. errUnsupported for a target
	// without semaphores.
	Acquire(ctx context.Context, name string, limit int) error
	Release(ctx context.Context, name string) error
	// RWLock takes read-write lock name, shared or exclusive, waiting
	// for it; RWUnlock releases it.
	RWLock(ctx context.Context, name string, shared bool) error
	RWUnlock(ctx context.Context, name string, shared bool) error
	// Close closes the session, releasing what it holds.
	Close(ctx context.Context) error
}

// countingTransport counts the keep-alive requests that pass through it,
// and the session renewals they carry.
type countingTransport struct {
	base       http.RoundTripper
	keepAlives atomic.Int64
	renewals   atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/keepalive") {
		t.keepAlives.Add(1)
		t.renewals.Add(renewalsOf(r))
	}
	return t.base.RoundTrip(r)
}

// CloseIdleConnections closes the idle connections of the transport
// underneath (client.Client.Close calls it through http.Client).
func (t *countingTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// renewalsOf returns how many sessions keep-alive request r renews: the
// IDs of a batched one (read from a copy of its body), 1 otherwise.
func renewalsOf(r *http.Request) int64 {
	if r.URL.Path != api.KeepAlivePath {
		return 1
	}
	if r.GetBody == nil {
		return 0
	}
	body, err := r.GetBody()
	if err != nil {
		return 0
	}
	defer body.Close()
	var req api.KeepAliveRequest
	if json.NewDecoder(body).Decode(&req) != nil {
		return 0
	}
	return int64(len(req.IDs))
}

// raftlockTarget is a raftlock cluster, reached through client/.
type raftlockTarget struct {
	name string
	c    *client.Client
	// kc are the Clients that hold the sessions of the keepalive
	// workload, used in turn: each Client renews its sessions together.
	kc   []*client.Client
	next atomic.Uint64
	ct   *countingTransport
}

// raftlockOptions tune a raftlock target.
type raftlockOptions struct {
	name        string // target name; "" is "raftlock"
	idlePerHost int    // idle HTTP connections kept per host
	// keepaliveClients is how many Clients share the sessions of the
	// keepalive workload (at least 1).
	keepaliveClients int
	// perSession makes every Client renew each session with its own
	// request (the SDK before the batched keep-alive).
	perSession bool
	// unbatched makes every Client send each acquire and release alone
	// (the SDK before POST /v1/batch).
	unbatched bool
	// tls is the TLS of https endpoints (--tls); nil for http.
	tls *tls.Config
}

// newRaftlockTarget returns a target for the cluster at endpoints. Its
// HTTP client keeps idlePerHost idle connections per host (the SDK's own
// default is 32) and counts keep-alives.
func newRaftlockTarget(endpoints []string, idlePerHost int) (*raftlockTarget, error) {
	return newRaftlockTargetWith(endpoints, raftlockOptions{idlePerHost: idlePerHost, keepaliveClients: 1})
}

// newRaftlockTargetWith is newRaftlockTarget with every option. With
// o.tls its transport is the one client.New makes for Config.TLS (a clone
// of http.DefaultTransport with TLSClientConfig set, so HTTP/2 is
// negotiated with raftlockd), with the counting wrapped around it: the
// SDK refuses Config.TLS together with Config.HTTPClient.
func newRaftlockTargetWith(endpoints []string, o raftlockOptions) (*raftlockTarget, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = o.idlePerHost
	if o.tls != nil {
		base.TLSClientConfig = o.tls.Clone()
		base.Protocols = new(http.Protocols)
		base.Protocols.SetHTTP1(true)
	}
	ct := &countingTransport{base: base}
	newClient := func() (*client.Client, error) {
		return client.New(client.Config{Endpoints: endpoints, HTTPClient: &http.Client{Transport: ct}, PerSessionKeepAlives: o.perSession, UnbatchedLocks: o.unbatched})
	}
	t := &raftlockTarget{name: o.name, ct: ct}
	if t.name == "" {
		t.name = "raftlock"
	}
	var err error
	if t.c, err = newClient(); err != nil {
		return nil, err
	}
	for range max(o.keepaliveClients, 1) {
		c, err := newClient()
		if err != nil {
			return nil, err
		}
		t.kc = append(t.kc, c)
	}
	return t, nil
}

func (t *raftlockTarget) Name() string { return t.name }

func (t *raftlockTarget) HasSemaphores() bool { return true }

// primitivesVersion is the cluster version from which raftlock takes
// semaphores and shared locks.
const primitivesVersion = 6

func (t *raftlockTarget) Settle(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		st, err := t.c.Status(ctx)
		if err == nil && st.ClusterVersion >= primitivesVersion {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("cluster version %d, not %d: does every member run a build with semaphores?", st.ClusterVersion, primitivesVersion)
			}
			return fmt.Errorf("raftlock: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (t *raftlockTarget) NewWorker(ctx context.Context, ttl time.Duration) (Worker, error) {
	s, err := t.c.NewSession(ctx, client.WithTTL(ttl), client.WithOwner("raftlock-bench"))
	if err != nil {
		return nil, err
	}
	return &raftlockWorker{s: s, mutexes: map[string]*client.Mutex{}, elections: map[string]*client.Election{},
		sems: map[string]*client.Semaphore{}, rws: map[string]*client.RWMutex{}}, nil
}

func (t *raftlockTarget) OpenSession(ctx context.Context, ttl time.Duration) (Session, error) {
	c := t.kc[(t.next.Add(1)-1)%uint64(len(t.kc))]
	s, err := c.NewSession(ctx, client.WithTTL(ttl), client.WithOwner("raftlock-bench"))
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (t *raftlockTarget) Leader(ctx context.Context) (string, error) {
	st, err := t.c.Status(ctx)
	if err != nil {
		return "", err
	}
	if st.LeaderURL == "" {
		return "", errors.New("raftlock: no leader known")
	}
	return st.LeaderURL, nil
}

func (t *raftlockTarget) RaftIndex(ctx context.Context) (uint64, error) {
	st, err := t.c.Status(ctx)
	if err != nil {
		return 0, err
	}
	return st.Commit, nil
}

func (t *raftlockTarget) KeepAlivesSent() (int64, int64) {
	return t.ct.keepAlives.Load(), t.ct.renewals.Load()
}

func (t *raftlockTarget) Close() error {
	for _, c := range t.kc {
		c.Close()
	}
	return t.c.Close()
}

type raftlockWorker struct {
	s *client.Session

	mu        sync.Mutex
	mutexes   map[string]*client.Mutex
	elections map[string]*client.Election
	sems      map[string]*client.Semaphore
	rws       map[string]*client.RWMutex
}

func (w *raftlockWorker) semaphore(name string, limit int) *client.Semaphore {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.sems[name]
	if m == nil {
		m = w.s.NewSemaphore(name, limit)
		w.sems[name] = m
	}
	return m
}

func (w *raftlockWorker) rw(name string) *client.RWMutex {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.rws[name]
	if m == nil {
		m = w.s.NewRWMutex(name)
		w.rws[name] = m
	}
	return m
}

func (w *raftlockWorker) Acquire(ctx context.Context, name string, limit int) error {
	return w.semaphore(name, limit).Acquire(ctx)
}

func (w *raftlockWorker) Release(ctx context.Context, name string) error {
	w.mu.Lock()
	m := w.sems[name]
	w.mu.Unlock()
	if m == nil {
		return fmt.Errorf("semaphore %q was never acquired", name)
	}
	return m.Release(ctx)
}

func (w *raftlockWorker) RWLock(ctx context.Context, name string, shared bool) error {
	if shared {
		return w.rw(name).RLock(ctx)
	}
	return w.rw(name).Lock(ctx)
}

func (w *raftlockWorker) RWUnlock(ctx context.Context, name string, shared bool) error {
	if shared {
		return w.rw(name).RUnlock(ctx)
	}
	return w.rw(name).Unlock(ctx)
}

func (w *raftlockWorker) mutex(name string) *client.Mutex {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.mutexes[name]
	if m == nil {
		m = w.s.NewMutex(name)
		w.mutexes[name] = m
	}
	return m
}

func (w *raftlockWorker) election(name string) *client.Election {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.elections[name]
	if e == nil {
		e = w.s.NewElection(name)
		w.elections[name] = e
	}
	return e
}

func (w *raftlockWorker) Lock(ctx context.Context, name string) error {
	return w.mutex(name).Lock(ctx)
}

func (w *raftlockWorker) TryLock(ctx context.Context, name string) error {
	return w.mutex(name).TryLock(ctx)
}

func (w *raftlockWorker) Unlock(ctx context.Context, name string) error {
	return w.mutex(name).Unlock(ctx)
}

func (w *raftlockWorker) Campaign(ctx context.Context, name, value string) error {
	return w.election(name).Campaign(ctx, value)
}

func (w *raftlockWorker) Resign(ctx context.Context, name string) error {
	return w.election(name).Resign(ctx)
}

func (w *raftlockWorker) Close(ctx context.Context) error { return w.s.Close(ctx) }

// etcdPrefix is the key prefix of everything the bench writes to etcd.
const etcdPrefix = "/raftlock-bench/"

// etcdTarget is an etcd cluster, reached through clientv3/concurrency.
type etcdTarget struct {
	c         *clientv3.Client
	endpoints []string
}

// newEtcdTarget returns a target for the etcd cluster at endpoints, over
// TLS with tlsCfg when that is not nil (https endpoints).
func newEtcdTarget(endpoints []string, tlsCfg *tls.Config) (*etcdTarget, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		TLS:         tlsCfg,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	return &etcdTarget{c: c, endpoints: endpoints}, nil
}

func (t *etcdTarget) Name() string { return "etcd" }

func (t *etcdTarget) HasSemaphores() bool { return false }

func (t *etcdTarget) Settle(context.Context) error { return nil }

// ttlSeconds rounds ttl up to whole seconds, at least 1 (etcd leases
// have a TTL in seconds).
func ttlSeconds(ttl time.Duration) int {
	return max(1, int((ttl+time.Second-1)/time.Second))
}

func (t *etcdTarget) newSession(ctx context.Context, ttl time.Duration) (*concurrency.Session, error) {
	// concurrency.WithContext would bound the keep-alives too, not only
	// the lease grant, so ctx is only checked before: the session lives
	// until Close, and the grant is bounded by the client's own timeouts.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return concurrency.NewSession(t.c, concurrency.WithTTL(ttlSeconds(ttl)))
}

func (t *etcdTarget) NewWorker(ctx context.Context, ttl time.Duration) (Worker, error) {
	s, err := t.newSession(ctx, ttl)
	if err != nil {
		return nil, err
	}
	return &etcdWorker{s: s, mutexes: map[string]*concurrency.Mutex{}, elections: map[string]*concurrency.Election{}, rws: map[string]*recipe.RWMutex{}}, nil
}

func (t *etcdTarget) OpenSession(ctx context.Context, ttl time.Duration) (Session, error) {
	s, err := t.newSession(ctx, ttl)
	if err != nil {
		return nil, err
	}
	return etcdSession{s}, nil
}

func (t *etcdTarget) Leader(ctx context.Context) (string, error) {
	var lastErr error
	for _, ep := range t.endpoints {
		st, err := t.c.Status(ctx, ep)
		if err != nil {
			lastErr = err
			continue
		}
		if st.Header != nil && st.Header.MemberId == st.Leader {
			return ep, nil
		}
	}
	if lastErr != nil {
		return "", lastErr
	}
	return "", errors.New("etcd: no endpoint is the leader")
}

func (t *etcdTarget) RaftIndex(ctx context.Context) (uint64, error) {
	var lastErr error
	for _, ep := range t.endpoints {
		st, err := t.c.Status(ctx, ep)
		if err != nil {
			lastErr = err
			continue
		}
		return st.RaftIndex, nil
	}
	return 0, lastErr
}

func (t *etcdTarget) KeepAlivesSent() (int64, int64) { return -1, -1 }

func (t *etcdTarget) Close() error { return t.c.Close() }

type etcdSession struct{ s *concurrency.Session }

func (s etcdSession) Done() <-chan struct{}       { return s.s.Done() }
func (s etcdSession) Close(context.Context) error { return s.s.Close() }

type etcdWorker struct {
	s *concurrency.Session

	mu        sync.Mutex
	mutexes   map[string]*concurrency.Mutex
	elections map[string]*concurrency.Election
	rws       map[string]*recipe.RWMutex
}

// Acquire: etcd has no semaphore recipe.
func (w *etcdWorker) Acquire(context.Context, string, int) error { return errUnsupported }

// Release: etcd has no semaphore recipe.
func (w *etcdWorker) Release(context.Context, string) error { return errUnsupported }

// rw returns the worker's recipe RWMutex of name (etcd's
// client/v3/experimental/recipes: one key per holder or waiter under the
// prefix, shared or exclusive by its key's name).
func (w *etcdWorker) rw(name string) *recipe.RWMutex {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.rws[name]
	if m == nil {
		m = recipe.NewRWMutex(w.s, etcdPrefix+"rwlock/"+name)
		w.rws[name] = m
	}
	return m
}

// RWLock: the recipe's methods take no context; they use the session's
// client, whose requests end when the client closes.
func (w *etcdWorker) RWLock(ctx context.Context, name string, shared bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if shared {
		return w.rw(name).RLock()
	}
	return w.rw(name).Lock()
}

func (w *etcdWorker) RWUnlock(_ context.Context, name string, shared bool) error {
	if shared {
		return w.rw(name).RUnlock()
	}
	return w.rw(name).Unlock()
}

func (w *etcdWorker) mutex(name string) *concurrency.Mutex {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.mutexes[name]
	if m == nil {
		m = concurrency.NewMutex(w.s, etcdPrefix+"lock/"+name)
		w.mutexes[name] = m
	}
	return m
}

func (w *etcdWorker) election(name string) *concurrency.Election {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.elections[name]
	if e == nil {
		e = concurrency.NewElection(w.s, etcdPrefix+"election/"+name)
		w.elections[name] = e
	}
	return e
}

func (w *etcdWorker) Lock(ctx context.Context, name string) error {
	return w.mutex(name).Lock(ctx)
}

func (w *etcdWorker) TryLock(ctx context.Context, name string) error {
	return w.mutex(name).TryLock(ctx)
}

func (w *etcdWorker) Unlock(ctx context.Context, name string) error {
	return w.mutex(name).Unlock(ctx)
}

func (w *etcdWorker) Campaign(ctx context.Context, name, value string) error {
	return w.election(name).Campaign(ctx, value)
}

func (w *etcdWorker) Resign(ctx context.Context, name string) error {
	return w.election(name).Resign(ctx)
}

func (w *etcdWorker) Close(context.Context) error { return w.s.Close() }
