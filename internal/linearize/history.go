package linearize

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// record is one recorded operation.
type record struct {
	client   int
	call     int64
	ret      int64
	returned bool
	in       Input
	out      Output
}

// History records the operations of concurrent clients. It is safe for
// concurrent use; the zero value is not: use NewHistory.
type History struct {
	mu   sync.Mutex
	ops  []record
	last *checked // the last Check, for Visualize
}

// NewHistory returns an empty history.
func NewHistory() *History { return &History{} }

// Call records the start of an operation by client (any int that identifies
// a sequential client) at time at (any unit: only the order of times
// matters) and returns the operation's id for Return.
func (h *History) Call(client int, at int64, in Input) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, record{client: client, call: at, in: in})
	return len(h.ops) - 1
}

// Return records the answer of operation id at time at (not before its
// call). An operation never returned counts as Unknown. Return panics for an
// id that Call did not give or that already returned: that is a bug of the
// harness, not of the system under test.
func (h *History) Return(id int, at int64, out Output) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if id < 0 || id >= len(h.ops) {
		panic(fmt.Sprintf("linearize: Return of unknown operation id %d", id))
	}
	r := &h.ops[id]
	if r.returned {
		panic(fmt.Sprintf("linearize: operation %d returned twice", id))
	}
	r.returned, r.ret, r.out = true, at, out
}

// Len is the number of operations recorded.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}

// Result is the outcome of Check.
type Result struct {
	// Ok: every partition is linearizable (and none timed out).
	Ok bool
	// TimedOut: no partition is illegal, but porcupine gave up on some
	// partition within the timeout: neither proof nor violation.
	TimedOut bool
	// Ops is the number of operations recorded.
	Ops int
	// Partitions is the number of lock, election and semaphore names
	// checked.
	Partitions int
	// Failed, when !Ok: the first failing partition (`lock "a"`, `election
	// "b"`, `semaphore "c"`; locks, then elections, then semaphores, each in
	// name order) and a short description (the
	// longest prefix porcupine could linearize, the first operation left
	// out), or why the history is malformed. Model operations count each
	// copy of a session operation, and an Unknown or Cancelled operation as
	// the steps the model makes of it.
	Failed string
}

// checked is what Visualize needs of a Check.
type checked struct {
	model   porcupine.Model
	parts   []partition
	bad     []int // indexes of the partitions that failed or timed out
	timeout time.Duration
}

// Check checks every lock, election and semaphore name independently,
// each within timeout (0: no limit), and remembers the check for
// Visualize. The partitions are checked in parallel on up to GOMAXPROCS
// goroutines. A malformed history (an answer that its kind cannot give, a
// missing name or session, an answer before its call, Shared or Limit
// where they do not belong, two limits for one semaphore, a hold read
// twice) fails with the reason. Check may be called again after more
// operations are recorded.
func (h *History) Check(timeout time.Duration) Result {
	h.mu.Lock()
	recs := slices.Clone(h.ops)
	h.mu.Unlock()

	res := Result{Ops: len(recs)}
	parts, sessions, err := partitionHistory(recs)
	if err != nil {
		res.Failed = "malformed history: " + err.Error()
		return res
	}
	res.Partitions = len(parts)
	model := newModel(sessions)

	outcomes := make([]verdict, len(parts))
	longest := make([][]*porcupine.Operation, len(parts))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i := range parts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			outcomes[i], longest[i] = search(model, parts[i].ops, timeout)
		}()
	}
	wg.Wait()

	c := &checked{model: model, parts: parts, timeout: timeout}
	firstIllegal, firstTimeout := -1, -1
	for i, o := range outcomes {
		switch o {
		case illegal:
			c.bad = append(c.bad, i)
			if firstIllegal < 0 {
				firstIllegal = i
			}
		case timedOut:
			c.bad = append(c.bad, i)
			if firstTimeout < 0 {
				firstTimeout = i
			}
		}
	}
	h.mu.Lock()
	h.last = c
	h.mu.Unlock()
	switch {
	case firstIllegal >= 0:
		res.Failed = explain(parts[firstIllegal], longest[firstIllegal])
	case firstTimeout >= 0:
		p := parts[firstTimeout]
		res.TimedOut = true
		res.Failed = fmt.Sprintf("%s: no verdict within %v (%d model operations)", p.name, timeout, len(p.ops))
	default:
		res.Ok = true
	}
	return res
}

// explain describes why partition p is not linearizable: the longest
// prefix the search could linearize and the first operation (by answer
// time) left out of it.
func explain(p partition, longest []*porcupine.Operation) string {
	msg := fmt.Sprintf("%s: not linearizable (%d model operations)", p.name, len(p.ops))
	in := make(map[*porcupine.Operation]bool, len(longest))
	for _, op := range longest {
		in[op] = true
	}
	var stuck *porcupine.Operation
	for i := range p.ops {
		op := &p.ops[i]
		if in[op] {
			continue
		}
		if stuck == nil || op.Return < stuck.Return || (op.Return == stuck.Return && op.Call < stuck.Call) {
			stuck = op
		}
	}
	msg += fmt.Sprintf("; the longest linearizable prefix has %d operations", len(longest))
	if len(longest) > 0 {
		msg += ", ending with " + describeOp(*longest[len(longest)-1])
	}
	if stuck != nil {
		msg += "; first operation left out: " + describeOp(*stuck)
	}
	return msg
}

func describeOp(op porcupine.Operation) string {
	m := op.Input.(*mop)
	ret := fmt.Sprint(op.Return)
	if op.Return == math.MaxInt64 || op.Output.(Output).Kind == Unknown {
		ret = "∞"
	}
	return fmt.Sprintf("#%d client %d [%d, %s] %s", m.id, op.ClientId, op.Call, ret, describeOperation(op.Input, op.Output))
}

// Visualize writes porcupine's HTML visualization of the last Check (that
// was not refused as malformed): of the partitions that failed or timed out
// if any did, else of all of them.
// It checks those partitions again (verbosely, within the Check's timeout
// per partition), so it is slow for big histories. Operations carry their
// partition and History id as metadata.
func (h *History) Visualize(w io.Writer) error {
	h.mu.Lock()
	c := h.last
	h.mu.Unlock()
	if c == nil {
		return errors.New("linearize: Visualize before Check")
	}
	sel := c.bad
	if len(sel) == 0 {
		sel = make([]int, len(c.parts))
		for i := range sel {
			sel[i] = i
		}
	}
	var all []porcupine.Operation
	groups := make([][]porcupine.Operation, len(sel))
	for i, pi := range sel {
		groups[i] = c.parts[pi].ops
		all = append(all, groups[i]...)
	}
	m := c.model
	m.Partition = func([]porcupine.Operation) [][]porcupine.Operation { return groups }
	_, info := porcupine.CheckOperationsVerbose(m, all, c.timeout*time.Duration(len(sel)))
	return porcupine.Visualize(m, info, w)
}

// partition is the model operations of one lock, election or semaphore
// name.
type partition struct {
	name string // `lock "a"`, `election "b"`, `semaphore "c"`
	ops  []porcupine.Operation
	info *partInfo
}

type partKey struct {
	ns   namespace
	name string
}

// partitionHistory validates recs and splits them into partitions, sorted
// by namespace (locks, elections, semaphores), then by name. It returns
// the session table (index to ID) that the models' dead sets refer to.
func partitionHistory(recs []record) ([]partition, []uint64, error) {
	clientSet := map[int]struct{}{}
	limits := map[string]int{} // semaphore name to its limit
	for i, r := range recs {
		if err := validate(r); err != nil {
			return nil, nil, fmt.Errorf("operation %d (%s): %v", i, r.in.Kind, err)
		}
		if r.in.Limit != 0 {
			if l, ok := limits[r.in.Name]; ok && l != r.in.Limit {
				return nil, nil, fmt.Errorf("operation %d (%s): limit %d of semaphore %q, another operation gives %d", i, r.in.Kind, r.in.Limit, r.in.Name, l)
			}
			limits[r.in.Name] = r.in.Limit
		}
		clientSet[r.client] = struct{}{}
	}
	clients := make([]int, 0, len(clientSet))
	for c := range clientSet {
		clients = append(clients, c)
	}
	slices.Sort(clients)
	clientIdx := make(map[int]int, len(clients))
	for i, c := range clients {
		clientIdx[c] = i
	}

	var sessions []uint64
	sessIdx := map[uint64]int{}
	index := func(s uint64) int {
		if s == 0 {
			return -1
		}
		i, ok := sessIdx[s]
		if !ok {
			i = len(sessions)
			sessIdx[s] = i
			sessions = append(sessions, s)
		}
		return i
	}

	type partBuild struct {
		partition
		sessions map[uint64]bool
	}
	byKey := map[partKey]*partBuild{}
	var keys []partKey
	add := func(pb *partBuild, id int, r record, ph phase, idx int) {
		m := &mop{Input: r.in, sidx: index(r.in.Session), phase: ph, idx: idx, id: id, part: pb.info}
		out := r.out
		if !holdersRead(r.in.Kind, out.Kind) {
			out.Holders = nil // ignored
		}
		if r.in.Kind != GetSemaphore {
			out.Limit = 0 // ignored
		}
		if out.Holders != nil {
			// Sorted by session, as the model keeps its holders.
			out.Holders = slices.Clone(out.Holders)
			slices.SortFunc(out.Holders, func(a, b Hold) int { return cmp.Compare(a.Session, b.Session) })
		}
		call, ret := r.call, r.ret
		if !r.returned {
			out = Output{Kind: Unknown}
		}
		switch {
		case ph == cancelCall:
			ret = call
		case ph == cancelReturn:
			call = ret
		case out.Kind == Unknown:
			// An Unknown write registers its effect at its call; the model
			// may fire it at any later point.
			m.phase = unknownCall
			ret = call
		}
		if m.phase == unknownCall || m.phase == cancelCall {
			m.idx = len(pb.info.pending)
			pb.info.pending = append(pb.info.pending, m)
		}
		m.call = call
		if m.sidx >= 0 {
			if r, ok := pb.info.lastRet[m.sidx]; !ok || ret > r {
				pb.info.lastRet[m.sidx] = ret
			}
		}
		seen := func(sess uint64) {
			if i := index(sess); i >= 0 {
				if r, ok := pb.info.lastSeen[i]; !ok || ret > r {
					pb.info.lastSeen[i] = ret
				}
			}
		}
		seen(r.in.Session)
		seen(out.Session)
		for _, h := range out.Holders {
			seen(h.Session)
		}
		pb.ops = append(pb.ops, porcupine.Operation{
			ClientId: clientIdx[r.client],
			Input:    m,
			Call:     call,
			Output:   out,
			Return:   ret,
			Metadata: m, // see describeMetadata
		})
	}
	// dropped: answers that carry no information and change nothing.
	dropped := func(r record) bool {
		if r.returned && r.out.Kind != Unknown {
			return false
		}
		switch r.in.Kind {
		case GetLock, GetLeader, GetSemaphore, KeepAlive, CloseSession:
			// An unknown CloseSession may have ended the session, which
			// the model may assume of any session at any time.
			return true
		}
		return false
	}
	for id, r := range recs {
		if isSessionKind(r.in.Kind) {
			continue
		}
		k := partKey{ns: nsOf(r.in.Kind), name: r.in.Name}
		pb := byKey[k]
		if pb == nil {
			name := fmt.Sprintf("%s %q", nsNames[k.ns], k.name)
			info := &partInfo{name: name, ns: k.ns, lastRet: map[int]int64{}, lastSeen: map[int]int64{}, minLo: map[int]uint64{}}
			if k.ns == nsSemaphore {
				info.limit = limits[k.name]
			}
			pb = &partBuild{partition: partition{name: name, info: info}, sessions: map[uint64]bool{}}
			byKey[k] = pb
			keys = append(keys, k)
		}
		if r.in.Shared {
			pb.info.shared = true
		}
		if r.in.Session != 0 {
			pb.sessions[r.in.Session] = true
		}
		switch {
		case dropped(r):
		case r.returned && r.out.Kind == Cancelled:
			k := len(pb.info.pending)
			add(pb, id, r, cancelCall, 0)
			add(pb, id, r, cancelReturn, k)
		default:
			add(pb, id, r, whole, 0)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].ns != keys[j].ns {
			return keys[i].ns < keys[j].ns
		}
		return keys[i].name < keys[j].name
	})
	for id, r := range recs {
		if !isSessionKind(r.in.Kind) || dropped(r) {
			continue
		}
		for _, k := range keys {
			if pb := byKey[k]; pb.sessions[r.in.Session] {
				add(pb, id, r, whole, 0)
			}
		}
	}
	parts := make([]partition, len(keys))
	for i, k := range keys {
		parts[i] = byKey[k].partition
		boundUnseen(parts[i])
	}
	return parts, sessions, nil
}

// boundUnseen sets the lo of p's pending shared grants and permits (see
// mop.lo): the least, over the session's pending shared grants and
// permits, of the greatest token shown by an answer returned before the
// call; and the partition's minLo.
func boundUnseen(p partition) {
	type shown struct {
		at  int64
		tok uint64
	}
	var tokens []shown // the tokens answers show (granted before their return)
	for _, op := range p.ops {
		m, o := op.Input.(*mop), op.Output.(Output)
		if m.phase != whole {
			continue
		}
		add := func(t uint64) {
			if t != 0 {
				tokens = append(tokens, shown{op.Return, t})
			}
		}
		switch o.Kind {
		case Granted, Locked, NotLeader:
			add(o.Token)
		case OK:
			switch m.Kind {
			case Release, SemRelease, Proclaim, Resign:
				add(m.Token)
			default:
				add(o.Token)
			}
		}
		for _, h := range o.Holders {
			add(h.Token)
		}
	}
	slices.SortFunc(tokens, func(a, b shown) int { return cmp.Compare(a.at, b.at) })
	for i := 1; i < len(tokens); i++ {
		tokens[i].tok = max(tokens[i].tok, tokens[i-1].tok)
	}
	for _, m := range p.info.pending {
		if !isGrant(m.Kind) || strict(m) {
			continue
		}
		// The greatest token shown by an answer returned before m's call.
		i, _ := slices.BinarySearchFunc(tokens, m.call, func(s shown, at int64) int {
			if s.at < at {
				return -1
			}
			return 1
		})
		if i > 0 {
			m.lo = tokens[i-1].tok
		}
		if lo, ok := p.info.minLo[m.sidx]; !ok || m.lo < lo {
			p.info.minLo[m.sidx] = m.lo
		}
	}
	// One bound per session, the least: the session's unseen grants are
	// then alike (see shadowed), which keeps the sets of states small.
	for _, m := range p.info.pending {
		if isGrant(m.Kind) && !strict(m) {
			m.lo = p.info.minLo[m.sidx]
		}
	}
}

// holdersRead reports whether Output.Holders of answer o to kind k is
// read (see Output).
func holdersRead(k Kind, o OutKind) bool {
	switch k {
	case GetLock, GetSemaphore:
		return o == OK
	case Acquire, TryAcquire, SemAcquire, SemTryAcquire:
		return o == Locked
	}
	return false
}

// validate refuses what the models cannot interpret.
func validate(r record) error {
	in := r.in
	kinds, ok := allowed[in.Kind]
	if !ok {
		return errors.New("unknown kind")
	}
	switch {
	case isSessionKind(in.Kind):
		if in.Name != "" {
			return fmt.Errorf("a session operation has name %q", in.Name)
		}
	case in.Name == "":
		return errors.New("no name")
	}
	if in.Session == 0 && in.Kind != GetLock && in.Kind != GetLeader && in.Kind != GetSemaphore {
		return errors.New("no session")
	}
	if in.Shared && in.Kind != Acquire && in.Kind != TryAcquire {
		return errors.New("Shared set: only Acquire and TryAcquire have a mode")
	}
	switch in.Kind {
	case SemAcquire, SemTryAcquire:
		if in.Limit < 1 {
			return fmt.Errorf("limit %d, want at least 1", in.Limit)
		}
	default:
		if in.Limit != 0 {
			return fmt.Errorf("limit %d set: only SemAcquire and SemTryAcquire have a limit", in.Limit)
		}
	}
	if !r.returned {
		return nil
	}
	if r.ret < r.call {
		return fmt.Errorf("answered at %d, before its call at %d", r.ret, r.call)
	}
	if !slices.Contains(kinds, r.out.Kind) {
		names := make([]string, len(kinds))
		for i, k := range kinds {
			names[i] = k.String()
		}
		return fmt.Errorf("answer %s; it can answer %s", r.out.Kind, strings.Join(names, ", "))
	}
	if holdersRead(in.Kind, r.out.Kind) {
		seen := make(map[uint64]bool, len(r.out.Holders))
		for _, h := range r.out.Holders {
			switch {
			case h.Session == 0 || h.Token == 0:
				return fmt.Errorf("holder %+v: a hold needs a session and a token", h)
			case seen[h.Session]:
				return fmt.Errorf("session %d read as a holder twice", h.Session)
			}
			seen[h.Session] = true
		}
	}
	return nil
}
