package lock

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Format versions of encoded commands. Version 2 adds the client request
// ID of OpOpenSession; Encode writes version 1 whenever a command has
// nothing that needs version 2, so that a log written without request IDs
// stays readable by a build that knows only version 1.
//
// Version 3 adds the principal and its token ID of every command (after
// Now), the Force of
// OpRelease, and the access-control ops; it is written only for a command
// that has a principal, a Force or an auth op, so a cluster without auth
// writes the versions it wrote before.
//
// Version 4 holds the membership ops and OpClusterVersion (membership.go),
// with the layout of version 3 before the op's fields; it is written only
// for them.
//
// Version 5 holds OpAcquireAll and the lock-delay of OpOpenSession.
// Version 6 holds the semaphore ops, the Mode of a shared OpAcquire (a
// byte after Wait) and the Modes of an OpAcquireAll that has them (a
// byte per name after the names); it is written only for those.
const (
	commandVersion1 byte = 1
	commandVersion2 byte = 2
	commandVersion3 byte = 3
	commandVersion4 byte = 4
	commandVersion5 byte = 5
	commandVersion6 byte = 6
)

// needsV3 reports whether c can only be written in version 3.
func needsV3(c *Command) bool {
	return c.Principal != "" || c.TokenID != 0 || (c.Op == OpRelease && c.Force) || authOp(c.Op)
}

// Encode encodes c: a version byte (1, or 2 for an OpOpenSession with a
// RequestID), the op byte, then the fields that the op uses (varints and
// length-prefixed strings) in a fixed order. The encoding is deterministic; fields the op
// does not use are dropped, so Decode(Encode(c)) equals c with those fields
// zeroed. An unknown Op encodes as version, op and Now only, and Decode
// rejects it with ErrCorrupt. Encode does not retain c.
func Encode(c *Command) []byte {
	e := encoder{b: make([]byte, 0, 16+len(c.Name)+len(c.Owner)+len(c.Value)+len(c.RequestID)+len(c.Sessions)*3)}
	version := byte(CommandVersion(c))
	e.byte(version)
	e.byte(byte(c.Op))
	e.varint(c.Now)
	if version >= commandVersion3 {
		e.str(c.Principal)
		e.uvarint(c.TokenID)
	}
	switch c.Op {
	case OpTick, OpExpire:
	case OpOpenSession:
		e.varint(c.TTL)
		e.str(c.Owner)
		if version >= commandVersion2 {
			e.str(c.RequestID)
		}
		if version == commandVersion5 {
			e.varint(c.LockDelay)
		}
	case OpKeepAlive:
		e.uvarint(uint64(len(c.Sessions)))
		for _, id := range c.Sessions {
			e.uvarint(id)
		}
	case OpCloseSession:
		e.uvarint(c.Session)
	case OpAcquire:
		e.uvarint(c.Session)
		e.str(c.Name)
		e.varint(c.TTL)
		e.str(c.Owner)
		e.bool(c.Wait)
		if version == commandVersion6 {
			e.byte(byte(c.Mode))
		}
	case OpSemAcquire:
		e.uvarint(c.Session)
		e.str(c.Name)
		e.uvarint(uint64(c.Limit))
		e.bool(c.Wait)
	case OpSemRelease:
		e.uvarint(c.Session)
		e.str(c.Name)
		e.uvarint(c.Token)
	case OpSemCancel:
		e.uvarint(c.Session)
		e.str(c.Name)
	case OpRelease:
		e.uvarint(c.Session)
		e.str(c.Name)
		e.uvarint(c.Token)
		if version == commandVersion3 {
			e.bool(c.Force)
		}
	case OpCancel:
		e.uvarint(c.Session)
		e.str(c.Name)
	case OpPublish:
		e.uvarint(c.Member.ID)
		e.str(c.Member.PeerURL)
		e.str(c.Member.ClientURL)
	case OpMemberAdd:
		e.uvarint(c.Member.ID)
		e.str(c.Member.PeerURL)
		e.bool(c.Wait)
	case OpMemberPromote, OpMemberRemove:
		e.uvarint(c.Member.ID)
	case OpClusterVersion:
		e.byte(c.ClusterVersion)
	case OpAcquireAll:
		e.uvarint(c.Session)
		e.uvarint(uint64(len(c.Names)))
		for _, n := range c.Names {
			e.str(n)
		}
		if version == commandVersion6 {
			for _, md := range c.Modes {
				e.byte(byte(md))
			}
		}
	case OpCampaign:
		e.uvarint(c.Session)
		e.str(c.Name)
		e.str(c.Value)
		e.bool(c.Wait)
	case OpProclaim:
		e.uvarint(c.Session)
		e.str(c.Name)
		e.uvarint(c.Token)
		e.str(c.Value)
	case OpResign:
		e.uvarint(c.Session)
		e.str(c.Name)
		e.uvarint(c.Token)
	case OpAuthPutUser:
		e.str(c.Name)
		e.uvarint(uint64(len(c.Roles)))
		for _, r := range c.Roles {
			e.str(r)
		}
	case OpAuthPutRole:
		e.str(c.Name)
		e.uvarint(uint64(len(c.Permissions)))
		for _, p := range c.Permissions {
			e.str(p.Prefix)
			e.byte(byte(p.Actions))
		}
	case OpAuthDeleteUser, OpAuthDeleteRole:
		e.str(c.Name)
	case OpAuthCreateToken:
		e.str(c.Name)
		e.str(c.Hash)
	case OpAuthRevokeToken:
		e.uvarint(c.Token)
	case OpAuthEnable:
	case OpAuthBootstrap:
		e.str(c.Hash)
	case OpSetLimits, OpInitLimits:
		e.limits(c.Limits)
	case OpAlarm:
		e.uvarint(c.Alarm.Member)
		e.byte(byte(c.Alarm.Kind))
		e.bool(c.Wait)
	}
	return e.b
}

func (e *encoder) limits(l Limits) {
	e.uvarint(l.SessionsPerPrincipal)
	e.uvarint(l.LocksPerSession)
	e.uvarint(l.WaitersPerLock)
	e.uvarint(l.ElectionsPerSession)
	e.uvarint(l.MaxStateBytes)
}

func (d *decoder) limits() Limits {
	return Limits{
		SessionsPerPrincipal: d.uvarint("sessions per principal"),
		LocksPerSession:      d.uvarint("locks per session"),
		WaitersPerLock:       d.uvarint("waiters per lock"),
		ElectionsPerSession:  d.uvarint("elections per session"),
		MaxStateBytes:        d.uvarint("max state bytes"),
	}
}

// Decode decodes a command written by Encode. It returns an error wrapping
// ErrUnknownVersion when the version byte is not one this build knows, and
// one wrapping ErrCorrupt for empty, truncated or trailing bytes, an unknown
// op or an invalid field; it never panics. The returned command does not
// alias b.
func Decode(b []byte) (*Command, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("decode command: %w: empty", ErrCorrupt)
	}
	version := b[0]
	if version < commandVersion1 || version > commandVersion6 {
		return nil, fmt.Errorf("decode command: %w %d", ErrUnknownVersion, version)
	}
	d := decoder{b: b, off: 1}
	c := &Command{Op: Op(d.byte("op"))}
	c.Now = d.varint("now")
	if version >= commandVersion3 {
		c.Principal = d.str("principal")
		c.TokenID = d.uvarint("token id")
	}
	switch c.Op {
	case OpTick, OpExpire:
	case OpOpenSession:
		c.TTL = d.varint("ttl")
		c.Owner = d.str("owner")
		if version >= commandVersion2 {
			c.RequestID = d.str("request id")
		}
		if version == commandVersion5 {
			c.LockDelay = d.varint("lock delay")
		}
	case OpKeepAlive:
		n := d.count("sessions")
		if n > 0 {
			c.Sessions = make([]uint64, n)
			for i := range c.Sessions {
				c.Sessions[i] = d.uvarint("session")
			}
		}
	case OpCloseSession:
		c.Session = d.uvarint("session")
	case OpAcquire:
		c.Session = d.uvarint("session")
		c.Name = d.str("name")
		c.TTL = d.varint("ttl")
		c.Owner = d.str("owner")
		c.Wait = d.bool("wait")
		if version == commandVersion6 {
			c.Mode = Mode(d.byte("mode"))
			if d.err == nil && c.Mode != Shared {
				d.fail("version 6 encoding of an exclusive acquire")
			}
		}
	case OpSemAcquire:
		c.Session = d.uvarint("session")
		c.Name = d.str("name")
		limit := d.uvarint("limit")
		if d.err == nil && limit > math.MaxUint32 {
			d.fail("semaphore limit")
		}
		c.Limit = uint32(limit)
		c.Wait = d.bool("wait")
	case OpSemRelease:
		c.Session = d.uvarint("session")
		c.Name = d.str("name")
		c.Token = d.uvarint("token")
	case OpSemCancel:
		c.Session = d.uvarint("session")
		c.Name = d.str("name")
	case OpRelease:
		c.Session = d.uvarint("session")
		c.Name = d.str("name")
		c.Token = d.uvarint("token")
		if version == commandVersion3 {
			c.Force = d.bool("force")
		}
	case OpCancel:
		c.Session = d.uvarint("session")
		c.Name = d.str("name")
	case OpPublish:
		c.Member.ID = d.uvarint("member id")
		c.Member.PeerURL = d.str("peer url")
		c.Member.ClientURL = d.str("client url")
	case OpMemberAdd:
		c.Member.ID = d.uvarint("member id")
		c.Member.PeerURL = d.str("peer url")
		c.Wait = d.bool("learner")
	case OpMemberPromote, OpMemberRemove:
		c.Member.ID = d.uvarint("member id")
	case OpClusterVersion:
		c.ClusterVersion = d.byte("cluster version")
	case OpAcquireAll:
		c.Session = d.uvarint("session")
		if n := d.count("names"); n > 0 {
			c.Names = make([]string, n)
			for i := range c.Names {
				c.Names[i] = d.str("name")
			}
		}
		if version == commandVersion6 && d.err == nil {
			c.Modes = make([]Mode, len(c.Names))
			for i := range c.Modes {
				c.Modes[i] = Mode(d.byte("mode"))
			}
		}
	case OpCampaign:
		c.Session = d.uvarint("session")
		c.Name = d.str("name")
		c.Value = d.str("value")
		c.Wait = d.bool("wait")
	case OpProclaim:
		c.Session = d.uvarint("session")
		c.Name = d.str("name")
		c.Token = d.uvarint("token")
		c.Value = d.str("value")
	case OpResign:
		c.Session = d.uvarint("session")
		c.Name = d.str("name")
		c.Token = d.uvarint("token")
	case OpAuthPutUser:
		if version != commandVersion3 {
			d.fail(fmt.Sprintf("op %d in version %d", c.Op, version))
		}
		c.Name = d.str("user")
		if n := d.count("roles"); n > 0 {
			c.Roles = make([]string, n)
			for i := range c.Roles {
				c.Roles[i] = d.str("role")
			}
		}
	case OpAuthPutRole:
		if version != commandVersion3 {
			d.fail(fmt.Sprintf("op %d in version %d", c.Op, version))
		}
		c.Name = d.str("role")
		if n := d.count("permissions"); n > 0 {
			c.Permissions = make([]Permission, n)
			for i := range c.Permissions {
				c.Permissions[i] = Permission{Prefix: d.str("prefix"), Actions: Actions(d.byte("actions"))}
			}
		}
	case OpAuthDeleteUser, OpAuthDeleteRole:
		if version != commandVersion3 {
			d.fail(fmt.Sprintf("op %d in version %d", c.Op, version))
		}
		c.Name = d.str("name")
	case OpAuthCreateToken:
		if version != commandVersion3 {
			d.fail(fmt.Sprintf("op %d in version %d", c.Op, version))
		}
		c.Name = d.str("user")
		c.Hash = d.str("hash")
	case OpAuthRevokeToken:
		if version != commandVersion3 {
			d.fail(fmt.Sprintf("op %d in version %d", c.Op, version))
		}
		c.Token = d.uvarint("token id")
	case OpAuthEnable:
		if version != commandVersion3 {
			d.fail(fmt.Sprintf("op %d in version %d", c.Op, version))
		}
	case OpAuthBootstrap:
		if version != commandVersion3 {
			d.fail(fmt.Sprintf("op %d in version %d", c.Op, version))
		}
		c.Hash = d.str("hash")
	case OpSetLimits, OpInitLimits:
		if version != commandVersion3 {
			d.fail(fmt.Sprintf("op %d in version %d", c.Op, version))
		}
		c.Limits = d.limits()
	case OpAlarm:
		if version != commandVersion3 {
			d.fail(fmt.Sprintf("op %d in version %d", c.Op, version))
		}
		c.Alarm = Alarm{Member: d.uvarint("alarm member"), Kind: AlarmKind(d.byte("alarm kind"))}
		c.Wait = d.bool("alarm raised")
	default:
		d.fail(fmt.Sprintf("unknown op %d", c.Op))
	}
	// Encode writes the lowest version that holds the command; any other
	// is not an encoding of ours.
	switch {
	case version == commandVersion2 && (c.Op != OpOpenSession || c.RequestID == ""):
		d.fail("version 2 encoding of a command that needs version 1")
	case version == commandVersion3 && (!needsV3(c) || needsV4(c)):
		d.fail("version 3 encoding of a command that needs another version")
	case version == commandVersion4 && !needsV4(c):
		d.fail("version 4 encoding of a command that needs an older version")
	case version == commandVersion5 && (!needsV5(c) || needsV6(c)), version < commandVersion5 && c.Op == OpAcquireAll:
		d.fail(fmt.Sprintf("op %d in version %d", c.Op, version))
	case version == commandVersion6 && !needsV6(c), version != commandVersion6 && semOp(c.Op):
		d.fail(fmt.Sprintf("op %d in version %d", c.Op, version))
	}
	if err := d.finish(); err != nil {
		return nil, fmt.Errorf("decode command: %w", err)
	}
	return c, nil
}

// encoder appends the primitive encodings shared by commands and snapshots.
type encoder struct{ b []byte }

func (e *encoder) byte(v byte)      { e.b = append(e.b, v) }
func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) bool(v bool) {
	if v {
		e.byte(1)
	} else {
		e.byte(0)
	}
}

// decoder reads what encoder wrote. The first error sticks: later reads
// return zero values, and finish reports it (or trailing bytes).
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at offset %d", ErrCorrupt, what, d.off)
	}
}

func (d *decoder) byte(what string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail("truncated " + what)
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) bool(what string) bool {
	switch d.byte(what) {
	case 0:
		return false
	case 1:
		return true
	}
	d.off--
	d.fail("bad " + what)
	return false
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("truncated or overlong " + what)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail("truncated or overlong " + what)
		return 0
	}
	d.off += n
	return v
}

// count reads a collection length. Every element takes at least one byte, so
// a length above the bytes left is corrupt; this bounds allocations.
func (d *decoder) count(what string) int {
	n := d.uvarint(what + " count")
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail("impossible " + what + " count")
		return 0
	}
	return int(n)
}

func (d *decoder) str(what string) string {
	n := d.uvarint(what + " length")
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail("truncated " + what)
		return ""
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

func (d *decoder) finish() error {
	if d.err == nil && d.off != len(d.b) {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)-d.off))
	}
	return d.err
}
