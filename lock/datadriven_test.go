package lock

import (
	"bytes"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestData runs the scripts in testdata/ (go test ./lock -rewrite
// regenerates their output). Commands:
//
//	open ttl=10s [owner=a]
//	keepalive ids=(1,2)
//	close id=1
//	expire
//	acquire id=1 name=x [wait] [shared] [ttl=…] [owner=…]
//	acquire-all id=1 names=x,y [modes=x,s]   (x: exclusive, s: shared)
//	sem-acquire id=1 name=s limit=3 [wait]
//	sem-release id=1 name=s token=2
//	sem-cancel id=1 name=s
//	acquire-ephemeral ttl=10s name=x [owner=a] [wait]
//	release id=1 name=x token=2 | release name=x force by=root
//	cancel id=1 name=x
//	tick
//	publish id=1 [peer=…] [client=…]
//	campaign id=1 name=e [value=v | valuelen=N] [wait]
//	proclaim id=1 name=e term=3 [value=v | valuelen=N]
//	resign id=1 name=e term=3          (term=0 or none: withdraw a candidacy)
//	op op=42 [id=…] [name=…] [ttl=…]  (a raw command, for invalid ones)
//	noop                               (an entry without a command)
//	dump | snapshot | restore
//
// Every applying command takes now=<duration since the epoch> (default 0),
// raft-term=N (sticky, default 1) and index=N (default: previous index + 1);
// term=N is the raft term too, except for proclaim and resign where it is
// the leadership term (Command.Token). The
// harness also checks after each command that the machine's invariants hold,
// that the command survives Encode/Decode, and that a CodeInvalid result
// changed nothing but the applied index.
func TestData(t *testing.T) {
	// Only *.txt: testdata/fuzz holds the fuzzers' corpora.
	paths, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			h := &harness{m: New(), term: 1, lastG: map[string]uint64{}, lastT: map[string]uint64{}}
			datadriven.RunTest(t, path, h.run)
		})
	}
}

type harness struct {
	m     *Machine
	term  uint64
	snap  []byte
	lastG map[string]uint64 // last token granted per lock
	lastT map[string]uint64 // last term elected per election
}

func (h *harness) run(t *testing.T, d *datadriven.TestData) string {
	var cmd *Command
	switch d.Cmd {
	case "dump":
		return h.dump()
	case "snapshot":
		h.snap = h.m.Snapshot()
		return fmt.Sprintf("snapshot index=%d bytes=%d\n", h.m.AppliedIndex(), len(h.snap))
	case "restore":
		m := New()
		if err := m.Restore(h.snap); err != nil {
			d.Fatalf(t, "restore: %v", err)
		}
		if !bytes.Equal(m.Snapshot(), h.snap) {
			d.Fatalf(t, "restored machine snapshots differently")
		}
		h.m = m
		for name, tok := range h.lastG {
			h.lastG[name] = min(tok, m.AppliedIndex())
		}
		for name, term := range h.lastT {
			h.lastT[name] = min(term, m.AppliedIndex())
		}
		return h.dump()
	case "noop":
	case "open":
		cmd = &Command{Op: OpOpenSession, TTL: durArg(t, d, "ttl"), Owner: strArg(d, "owner"), RequestID: strArg(d, "req"), LockDelay: durArg(t, d, "lock-delay")}
	case "keepalive":
		cmd = &Command{Op: OpKeepAlive, Sessions: idsArg(t, d, "ids")}
	case "close":
		cmd = &Command{Op: OpCloseSession, Session: uintArg(t, d, "id")}
	case "expire":
		cmd = &Command{Op: OpExpire}
	case "tick":
		cmd = &Command{Op: OpTick}
	case "acquire":
		cmd = &Command{Op: OpAcquire, Session: uintArg(t, d, "id"), Name: strArg(d, "name"),
			Wait: d.HasArg("wait"), TTL: durArg(t, d, "ttl"), Owner: strArg(d, "owner"), Mode: modeArg(d)}
	case "acquire-ephemeral":
		cmd = &Command{Op: OpAcquire, TTL: durArg(t, d, "ttl"), Owner: strArg(d, "owner"),
			Name: strArg(d, "name"), Wait: d.HasArg("wait"), Mode: modeArg(d)}
	case "sem-acquire":
		cmd = &Command{Op: OpSemAcquire, Session: uintArg(t, d, "id"), Name: strArg(d, "name"),
			Limit: uint32(uintArg(t, d, "limit")), Wait: d.HasArg("wait")}
	case "sem-release":
		cmd = &Command{Op: OpSemRelease, Session: uintArg(t, d, "id"), Name: strArg(d, "name"),
			Token: uintArg(t, d, "token")}
	case "sem-cancel":
		cmd = &Command{Op: OpSemCancel, Session: uintArg(t, d, "id"), Name: strArg(d, "name")}
	case "release":
		cmd = &Command{Op: OpRelease, Session: uintArg(t, d, "id"), Name: strArg(d, "name"),
			Token: uintArg(t, d, "token"), Force: d.HasArg("force"), Principal: strArg(d, "by")}
	case "cancel":
		cmd = &Command{Op: OpCancel, Session: uintArg(t, d, "id"), Name: strArg(d, "name")}
	case "publish":
		cmd = &Command{Op: OpPublish, Member: Member{ID: uintArg(t, d, "id"),
			PeerURL: strArg(d, "peer"), ClientURL: strArg(d, "client")}}
	case "campaign":
		cmd = &Command{Op: OpCampaign, Session: uintArg(t, d, "id"), Name: strArg(d, "name"),
			Value: valueArg(t, d), Wait: d.HasArg("wait")}
	case "proclaim":
		cmd = &Command{Op: OpProclaim, Session: uintArg(t, d, "id"), Name: strArg(d, "name"),
			Token: uintArg(t, d, "term"), Value: valueArg(t, d)}
	case "resign":
		cmd = &Command{Op: OpResign, Session: uintArg(t, d, "id"), Name: strArg(d, "name"),
			Token: uintArg(t, d, "term")}
	case "acquire-all":
		cmd = &Command{Op: OpAcquireAll, Session: uintArg(t, d, "id"), Names: argVals(d, "names")}
		for _, v := range argVals(d, "modes") {
			md := Exclusive
			if v == "s" {
				md = Shared
			}
			cmd.Modes = append(cmd.Modes, md)
		}
	case "cluster-version":
		cmd = &Command{Op: OpClusterVersion, ClusterVersion: uint8(uintArg(t, d, "v"))}
	case "op":
		cmd = &Command{Op: Op(uintArg(t, d, "op")), Session: uintArg(t, d, "id"),
			Name: strArg(d, "name"), TTL: durArg(t, d, "ttl")}
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}

	index := h.m.AppliedIndex() + 1
	if d.HasArg("index") {
		index = uintArg(t, d, "index")
	}
	if d.HasArg("raft-term") {
		h.term = uintArg(t, d, "raft-term")
	} else if d.HasArg("term") && d.Cmd != "proclaim" && d.Cmd != "resign" {
		h.term = uintArg(t, d, "term")
	}
	if cmd != nil {
		cmd.Now = durArg(t, d, "now")
	}
	if cmd != nil && d.Cmd != "op" {
		if got, err := Decode(Encode(cmd)); err != nil {
			d.Fatalf(t, "decode: %v", err)
		} else if !reflect.DeepEqual(got, cmd) {
			d.Fatalf(t, "encode/decode: got %+v, want %+v", got, cmd)
		}
	}

	before := h.m.Snapshot()
	res := h.m.Apply(index, h.term, cmd)
	if err := checkInvariants(h.m); err != nil {
		d.Fatalf(t, "invariant: %v", err)
	}
	if cmd == nil || res.Code == CodeInvalid || res.Code == CodeDeadlock {
		// Only the applied index may have moved.
		want := New()
		if err := want.Restore(before); err != nil {
			d.Fatalf(t, "restore: %v", err)
		}
		want.applied = index
		if !bytes.Equal(want.Snapshot(), h.m.Snapshot()) {
			d.Fatalf(t, "%s changed the state", res.Code)
		}
	}
	if err := checkResult(entry{index: index, term: h.term, cmd: cmd}, res, h.lastG, h.lastT); err != nil {
		d.Fatalf(t, "%v", err)
	}
	if cmd == nil {
		return fmt.Sprintf("index=%d %s\n", index, res.Code)
	}
	return fmt.Sprintf("index=%d ", index) + formatResult(res)
}

func formatResult(r Result) string {
	var b strings.Builder
	b.WriteString(r.Code.String())
	if r.Session != 0 {
		fmt.Fprintf(&b, " session=%d", r.Session)
	}
	if r.TTL != 0 {
		fmt.Fprintf(&b, " ttl=%s", time.Duration(r.TTL))
	}
	if r.Token != 0 {
		fmt.Fprintf(&b, " token=%d", r.Token)
	}
	if h := r.Holder; h != nil {
		fmt.Fprintf(&b, " holder=(session=%d owner=%s token=%d since=%s)", h.Session, h.Owner, h.Token, time.Duration(h.Since))
	} else if len(r.Holders) > 0 {
		b.WriteString(" holders=[")
		for i, h := range r.Holders {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%d:%d", h.Session, h.Token)
		}
		b.WriteByte(']')
	}
	if r.Limit != 0 {
		fmt.Fprintf(&b, " limit=%d", r.Limit)
	}
	if l := r.Leader; l != nil {
		fmt.Fprintf(&b, " leader=(session=%d owner=%s term=%d value=%s since=%s)", l.Session, l.Owner, l.Term, showValue(l.Value), time.Duration(l.Since))
	}
	if r.Missing != nil {
		fmt.Fprintf(&b, " missing=%v", r.Missing)
	}
	if r.Tokens != nil {
		fmt.Fprintf(&b, " tokens=%v", r.Tokens)
	}
	if r.Code == CodeLockHeld && r.Reason != "" {
		fmt.Fprintf(&b, " reason=%q", r.Reason)
	}
	if r.Code == CodeDeadlock || r.Code == CodeModeMismatch || r.Code == CodeLimitMismatch {
		fmt.Fprintf(&b, "\n  reason: %s", r.Reason)
	}
	b.WriteByte('\n')
	for _, e := range r.Events {
		fmt.Fprintf(&b, "  event %d.%d %s session=%d", e.Revision, e.Seq, e.Type, e.Session)
		if e.Name != "" {
			fmt.Fprintf(&b, " name=%s", e.Name)
		}
		if e.Token != 0 {
			fmt.Fprintf(&b, " token=%d", e.Token)
		}
		if e.Value != "" {
			fmt.Fprintf(&b, " value=%s", showValue(e.Value))
		}
		if e.Mode == Shared {
			b.WriteString(" mode=shared")
		}
		fmt.Fprintf(&b, " time=%s\n", time.Duration(e.Time))
	}
	return b.String()
}

func (h *harness) dump() string {
	m := h.m
	var b strings.Builder
	fmt.Fprintf(&b, "index=%d term=%d clock=%s", m.AppliedIndex(), m.term, time.Duration(m.Clock()))
	if dl, ok := m.NextDeadline(); ok {
		fmt.Fprintf(&b, " next-deadline=%s", time.Duration(dl))
	}
	b.WriteByte('\n')
	var ids []uint64
	for id := range m.sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		s, _ := m.Session(id)
		fmt.Fprintf(&b, "session %d owner=%s ttl=%s deadline=%s locks=%v waiting=%v", s.ID, s.Owner,
			time.Duration(s.TTL), time.Duration(s.Deadline), s.Locks, s.Waiting)
		if s.Bound != "" {
			fmt.Fprintf(&b, " bound=%s", s.Bound)
		}
		if s.Campaigns != nil {
			fmt.Fprintf(&b, " campaigns=%v", s.Campaigns)
		}
		if len(s.Permits)+len(s.SemWaiting) > 0 {
			fmt.Fprintf(&b, " permits=%v sem-waiting=%v", s.Permits, s.SemWaiting)
		}
		b.WriteByte('\n')
	}
	waiters := func(ws []Waiter) {
		b.WriteString(" waiters=[")
		for i, w := range ws {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%d@%s", w.Session, time.Duration(w.Since))
			if w.Mode == Shared {
				b.WriteString("(shared)")
			}
		}
		b.WriteString("]\n")
	}
	holders := func(what string, hs []Holder) {
		fmt.Fprintf(&b, " %s=[", what)
		for i, h := range hs {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%d:%d@%s", h.Session, h.Token, time.Duration(h.Since))
		}
		b.WriteByte(']')
	}
	for _, l := range m.Locks("") {
		switch {
		case l.Holder != nil:
			fmt.Fprintf(&b, "lock %s holder=%d token=%d since=%s", l.Name, l.Holder.Session, l.Holder.Token, time.Duration(l.Holder.Since))
		case len(l.Holders) > 0:
			fmt.Fprintf(&b, "lock %s", l.Name)
			holders("shared", l.Holders)
		default:
			fmt.Fprintf(&b, "lock %s delayed-until=%s", l.Name, time.Duration(l.DelayedUntil))
		}
		waiters(l.Waiters)
	}
	sems, _ := m.ListSemaphores("", "", 0)
	for _, r := range sems {
		fmt.Fprintf(&b, "semaphore %s limit=%d", r.Name, r.Limit)
		holders("holders", r.Holders)
		waiters(r.Waiters)
	}
	for _, e := range m.Elections("") {
		l := e.Leader
		fmt.Fprintf(&b, "election %s leader=%d term=%d value=%s since=%s candidates=[", e.Name, l.Session, l.Term, showValue(l.Value), time.Duration(l.Since))
		for i, c := range e.Candidates {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%d:%s@%s", c.Session, showValue(c.Value), time.Duration(c.Since))
		}
		b.WriteString("]\n")
	}
	for _, mb := range m.Members() {
		fmt.Fprintf(&b, "member %d peer=%s client=%s\n", mb.ID, mb.PeerURL, mb.ClientURL)
	}
	return b.String()
}

// modeArg is Shared when the command has the shared argument.
func modeArg(d *datadriven.TestData) Mode {
	if d.HasArg("shared") {
		return Shared
	}
	return Exclusive
}

// argVals are the values of key=(a,b,c), or of key=a.
func argVals(d *datadriven.TestData, key string) []string {
	for _, a := range d.CmdArgs {
		if a.Key == key {
			var out []string
			for _, v := range a.Vals {
				out = append(out, strings.Split(strings.TrimSpace(v), ",")...)
			}
			return out
		}
	}
	return nil
}

func strArg(d *datadriven.TestData, key string) string {
	for _, a := range d.CmdArgs {
		if a.Key == key && len(a.Vals) > 0 {
			return a.Vals[0]
		}
	}
	return ""
}

// valueArg is value=… or, for long values, valuelen=N (N times 'v').
func valueArg(t *testing.T, d *datadriven.TestData) string {
	if d.HasArg("valuelen") {
		return strings.Repeat("v", int(uintArg(t, d, "valuelen")))
	}
	return strArg(d, "value")
}

// showValue prints a value, abbreviating long ones.
func showValue(v string) string {
	if len(v) > 32 {
		return fmt.Sprintf("%s…(%d bytes)", v[:8], len(v))
	}
	return strconv.Quote(v)
}

func uintArg(t *testing.T, d *datadriven.TestData, key string) uint64 {
	s := strArg(d, key)
	if s == "" {
		return 0
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		d.Fatalf(t, "%s: %v", key, err)
	}
	return v
}

// durArg parses a duration ("10s", "-1s") or a plain number of nanoseconds.
func durArg(t *testing.T, d *datadriven.TestData, key string) int64 {
	s := strArg(d, key)
	if s == "" {
		return 0
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.Fatalf(t, "%s: %v", key, err)
	}
	return int64(v)
}

func idsArg(t *testing.T, d *datadriven.TestData, key string) []uint64 {
	var ids []uint64
	for _, a := range d.CmdArgs {
		if a.Key != key {
			continue
		}
		for _, v := range a.Vals {
			id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				d.Fatalf(t, "%s: %v", key, err)
			}
			ids = append(ids, id)
		}
	}
	return ids
}
