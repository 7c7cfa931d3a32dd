package lock

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// allOps has one command of every op with every field the op encodes set,
// including extreme values.
var allOps = []*Command{
	{Op: OpTick, Now: 1},
	{Op: OpTick},
	{Op: OpOpenSession, Now: 1_700_000_000_000_000_000, TTL: 10e9, Owner: "worker-1"},
	{Op: OpOpenSession, Now: -5, TTL: math.MaxInt64, Owner: ""},
	{Op: OpKeepAlive, Now: 7, Sessions: []uint64{1, math.MaxUint64, 300}},
	{Op: OpKeepAlive, Now: 7},
	{Op: OpCloseSession, Now: 8, Session: 42},
	{Op: OpExpire, Now: math.MaxInt64},
	{Op: OpAcquire, Now: 9, Session: 3, Name: "jobs/ä", Wait: true},
	{Op: OpAcquire, Now: 9, Name: "x", TTL: 5e9, Owner: "eph"},
	{Op: OpRelease, Now: math.MinInt64, Session: 3, Name: "x", Token: math.MaxUint64},
	{Op: OpCancel, Now: 10, Session: 3, Name: "x"},
	{Op: OpPublish, Member: Member{ID: 2, PeerURL: "http://10.0.0.2:2380", ClientURL: "http://10.0.0.2:2379"}},
	{Op: OpCampaign, Now: 11, Session: 3, Name: "leader/ä", Value: "http://10.0.0.1:8080", Wait: true},
	{Op: OpCampaign, Now: 11, Session: 3, Name: "e"},
	{Op: OpProclaim, Now: 12, Session: math.MaxUint64, Name: "e", Token: math.MaxUint64, Value: strings.Repeat("x", MaxValueSize)},
	{Op: OpProclaim, Now: 12, Session: 3, Name: "e", Token: 9},
	{Op: OpResign, Now: 13, Session: 3, Name: "e", Token: 7},
	{Op: OpResign, Now: 13, Session: 3, Name: "e"},
	{Op: OpOpenSession, Now: 14, TTL: 5e9, Owner: "o", RequestID: "b3c1e0f7a9d24e61"},
	{Op: OpOpenSession, Now: 14, TTL: 5e9, RequestID: strings.Repeat("r", MaxRequestIDLen)},
	// Version 3: a principal, a forced release, access control.
	{Op: OpOpenSession, Now: 15, TTL: 5e9, Owner: "o", Principal: "alice"},
	{Op: OpOpenSession, Now: 15, TTL: 5e9, RequestID: "r", Principal: "alice"},
	{Op: OpKeepAlive, Now: 15, Sessions: []uint64{4}, Principal: "alice", TokenID: 77},
	{Op: OpRelease, Now: 16, Name: "x", Force: true, Principal: "root"},
	{Op: OpRelease, Now: 16, Session: 3, Name: "x", Token: 4, Principal: "bob"},
	{Op: OpAuthPutUser, Now: 17, Name: "alice", Roles: []string{"a", "b"}, Principal: "root"},
	{Op: OpAuthPutUser, Now: 17, Name: "carol"},
	{Op: OpAuthDeleteUser, Name: "alice", Principal: "root"},
	{Op: OpAuthPutRole, Name: "jobs", Permissions: []Permission{{Prefix: "", Actions: ActionRead}, {Prefix: "jobs/", Actions: ActionLock | ActionElect}}},
	{Op: OpAuthPutRole, Name: "none"},
	{Op: OpAuthDeleteRole, Name: "jobs"},
	{Op: OpAuthCreateToken, Name: "alice", Hash: strings.Repeat("h", TokenHashLen)},
	{Op: OpAuthRevokeToken, Token: 12},
	{Op: OpAuthEnable, Principal: "root"},
	{Op: OpAuthBootstrap, Hash: strings.Repeat("\x00", TokenHashLen)},
	{Op: OpSetLimits, Limits: Limits{SessionsPerPrincipal: 1, LocksPerSession: 2, WaitersPerLock: 3, ElectionsPerSession: 4, MaxStateBytes: 1 << 40}, Principal: "root"},
	{Op: OpInitLimits, Limits: Limits{WaitersPerLock: 7}},
	{Op: OpAlarm, Alarm: Alarm{Member: 3, Kind: AlarmNoSpace}, Wait: true},
	{Op: OpAlarm, Alarm: Alarm{Member: 3, Kind: AlarmNoSpace}},
	// Version 4: membership and the cluster version.
	{Op: OpMemberAdd, Member: Member{ID: 4, PeerURL: "https://h4:7071"}, Wait: true},
	{Op: OpMemberAdd, Member: Member{ID: math.MaxUint64, PeerURL: "http://127.0.0.1:1"}},
	{Op: OpMemberPromote, Member: Member{ID: 4}},
	{Op: OpMemberRemove, Member: Member{ID: 2}},
	{Op: OpClusterVersion, ClusterVersion: 4},
	// Version 5: atomic multi-acquire, lock-delay.
	{Op: OpOpenSession, Now: 21, TTL: 5e9, Owner: "o", RequestID: "r", LockDelay: 10e9},
	{Op: OpOpenSession, TTL: 5e9, LockDelay: MaxLockDelay, Principal: "alice"},
	{Op: OpAcquireAll, Now: 20, Session: 3, Names: []string{"a", "b/c"}},
	{Op: OpAcquireAll, Session: 3, Names: []string{"x"}, Principal: "alice", TokenID: 9},
	// Version 6: semaphores, shared holds.
	{Op: OpAcquire, Now: 22, Session: 3, Name: "db", Wait: true, Mode: Shared},
	{Op: OpAcquire, Now: 22, Name: "db", TTL: 5e9, Owner: "eph", Mode: Shared, Principal: "alice"},
	{Op: OpAcquireAll, Session: 3, Names: []string{"a", "b"}, Modes: []Mode{Shared, Exclusive}},
	{Op: OpSemAcquire, Now: 23, Session: 3, Name: "pool/ä", Limit: math.MaxUint32, Wait: true},
	{Op: OpSemAcquire, Session: math.MaxUint64, Name: "p", Limit: 1, Principal: "bob", TokenID: 2},
	{Op: OpSemRelease, Now: 24, Session: 3, Name: "p", Token: math.MaxUint64},
	{Op: OpSemCancel, Now: 25, Session: 3, Name: "p"},
}

// wantVersion is the version Encode must write for c.
func wantVersion(c *Command) byte {
	switch {
	case semOp(c.Op), c.Mode == Shared, c.Modes != nil:
		return commandVersion6
	case c.Op == OpAcquireAll, c.Op == OpOpenSession && c.LockDelay != 0:
		return commandVersion5
	case c.Op >= OpMemberAdd && c.Op <= OpClusterVersion:
		return commandVersion4
	case needsV3(c):
		return commandVersion3
	case c.Op == OpOpenSession && c.RequestID != "":
		return commandVersion2
	}
	return commandVersion1
}

func TestEncodeRoundTrip(t *testing.T) {
	for _, c := range allOps {
		b := Encode(c)
		if want := wantVersion(c); b[0] != want {
			t.Fatalf("%+v: version byte %d", c, b[0])
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip: got %+v, want %+v", got, c)
		}
		if !bytes.Equal(Encode(got), b) {
			t.Fatalf("%+v: encoding not deterministic", c)
		}
	}
}

func TestEncodeDropsUnusedFields(t *testing.T) {
	full := Command{Now: 3, Session: 9, Name: "x", TTL: 5, Owner: "o", Wait: true, Token: 4,
		Sessions: []uint64{1}, Member: Member{ID: 1}, Value: "v"}
	for _, want := range []*Command{
		{Op: OpTick, Now: 3},
		{Op: OpAcquire, Now: 3, Session: 9, Name: "x", TTL: 5, Owner: "o", Wait: true},
		{Op: OpRelease, Now: 3, Session: 9, Name: "x", Token: 4},
		{Op: OpCampaign, Now: 3, Session: 9, Name: "x", Value: "v", Wait: true},
		{Op: OpProclaim, Now: 3, Session: 9, Name: "x", Token: 4, Value: "v"},
		{Op: OpResign, Now: 3, Session: 9, Name: "x", Token: 4},
	} {
		c := full
		c.Op = want.Op
		got, err := Decode(Encode(&c))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%v: got %+v, want %+v", want.Op, got, want)
		}
	}
}

func TestDecodeTruncated(t *testing.T) {
	for _, c := range allOps {
		b := Encode(c)
		for n := 0; n < len(b); n++ {
			if _, err := Decode(b[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%+v truncated to %d of %d: err %v, want ErrCorrupt", c, n, len(b), err)
			}
		}
		if _, err := Decode(append(b[:len(b):len(b)], 0)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%+v with a trailing byte: err %v, want ErrCorrupt", c, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"nil", nil, ErrCorrupt},
		{"version 0", []byte{0, byte(OpTick), 0}, ErrUnknownVersion},
		{"version 7", append([]byte{7}, Encode(allOps[0])[1:]...), ErrUnknownVersion},
		{"version 3 without a principal", []byte{3, byte(OpTick), 0, 0}, ErrCorrupt},
		{"version 1 auth op", []byte{1, byte(OpAuthEnable), 0}, ErrCorrupt},
		{"version 2 without a request ID", append([]byte{2}, Encode(allOps[0])[1:]...), ErrCorrupt},
		{"op 0", []byte{1, 0, 0}, ErrCorrupt},
		{"unknown op", []byte{1, 200, 0}, ErrCorrupt},
		{"wait byte 2", func() []byte {
			b := Encode(&Command{Op: OpAcquire, Session: 1, Name: "x"})
			b[len(b)-1] = 2
			return b
		}(), ErrCorrupt},
		{"campaign wait byte 2", func() []byte {
			b := Encode(&Command{Op: OpCampaign, Session: 1, Name: "x", Value: "v"})
			b[len(b)-1] = 2
			return b
		}(), ErrCorrupt},
		{"huge value length", []byte{1, byte(OpCampaign), 0, 1, 1, 'x', 0xff, 0xff, 0xff, 0xff, 0x0f, 0}, ErrCorrupt},
		{"huge string length", []byte{1, byte(OpCancel), 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}, ErrCorrupt},
		{"huge count", []byte{1, byte(OpKeepAlive), 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, ErrCorrupt},
		{"overlong varint", []byte{1, byte(OpTick), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, ErrCorrupt},
	} {
		c, err := Decode(tc.b)
		if !errors.Is(err, tc.want) || c != nil {
			t.Errorf("%s: got %+v, %v; want %v", tc.name, c, err, tc.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range allOps {
		f.Add(Encode(c))
	}
	f.Add([]byte{})
	f.Add([]byte{2})
	f.Add([]byte{1, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			if c != nil {
				t.Fatal("command with error")
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownVersion) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// Whatever decodes re-encodes to something that decodes the same.
		again, err := Decode(Encode(c))
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("re-decode: %+v, %v; want %+v", again, err, c)
		}
		// And applying it never panics.
		New().Apply(1, 1, c)
	})
}
