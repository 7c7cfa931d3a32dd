package linearize

import (
	"fmt"
	"math"
	"strings"
)

// describeOperation is the model's DescribeOperation: a model operation
// and its answer, for the visualization and Result.Failed.
func describeOperation(in any, out any) string {
	p := in.(*mop)
	o := out.(Output)
	var b strings.Builder
	b.WriteString(p.Kind.String())
	var args []string
	if p.Session != 0 {
		args = append(args, fmt.Sprintf("s%d", p.Session))
	}
	switch p.Kind {
	case Acquire, TryAcquire:
		if p.Shared {
			args = append(args, "shared")
		}
	case SemAcquire, SemTryAcquire:
		args = append(args, fmt.Sprintf("limit %d", p.Limit))
	case Release, SemRelease, Proclaim, Resign:
		args = append(args, fmt.Sprintf("%d", p.Token))
	}
	switch p.Kind {
	case Campaign, Proclaim:
		args = append(args, fmt.Sprintf("%q", p.Value))
	}
	fmt.Fprintf(&b, "(%s)", strings.Join(args, ", "))
	switch p.phase {
	case unknownCall:
		b.WriteString(" → Unknown [may take effect from its call on]")
		return b.String()
	case cancelCall:
		b.WriteString(" → Cancelled [may be granted from its call on]")
		return b.String()
	case cancelReturn:
		b.WriteString(" → Cancelled [holds nothing from its return on]")
		return b.String()
	}
	b.WriteString(" → ")
	b.WriteString(describeOutput(p.Kind, o))
	return b.String()
}

// describeMetadata is the model's DescribeOperationMetadata: an
// operation's partition and History id.
func describeMetadata(info any) string {
	m := info.(*mop)
	return fmt.Sprintf("%s, operation #%d", m.part.name, m.id)
}

func describeOutput(k Kind, o Output) string {
	switch o.Kind {
	case Granted:
		return fmt.Sprintf("Granted %d", o.Token)
	case Locked, NotLeader:
		if o.Kind == Locked && o.Holders != nil {
			return fmt.Sprintf("Locked (%s)", describeHolds(o.Holders, "no holder", k == Acquire || k == TryAcquire))
		}
		if o.Session == 0 {
			return o.Kind.String()
		}
		return fmt.Sprintf("%s (%s)", o.Kind, describeHolder(o.Session, o.Token, o.Value, k == Campaign || k == Proclaim || k == Resign))
	case OK:
		switch k {
		case Campaign:
			return fmt.Sprintf("OK term %d", o.Token)
		case GetLock:
			if o.Holders != nil {
				return describeHolds(o.Holders, "free", true)
			}
			if o.Session == 0 {
				return "no exclusive holder"
			}
			return describeHolder(o.Session, o.Token, o.Value, false)
		case GetLeader:
			if o.Session == 0 {
				return "no leader"
			}
			return describeHolder(o.Session, o.Token, o.Value, true)
		case GetSemaphore:
			d := describeHolds(o.Holders, "no permit held", false)
			if o.Limit != 0 {
				d += fmt.Sprintf(" (limit %d)", o.Limit)
			}
			return d
		}
	}
	return o.Kind.String()
}

func describeHolder(sess, tok uint64, value string, election bool) string {
	t := "?"
	if tok != 0 {
		t = fmt.Sprint(tok)
	}
	if election {
		return fmt.Sprintf("s%d leads %q term %s", sess, value, t)
	}
	return fmt.Sprintf("s%d holds %s", sess, t)
}

// describeHolds describes the holders a read shows; none if there are
// none.
func describeHolds(hs []Hold, none string, modes bool) string {
	if len(hs) == 0 {
		return none
	}
	d := make([]string, len(hs))
	for i, h := range hs {
		d[i] = describeHolder(h.Session, h.Token, "", false)
		if modes && h.Shared {
			d[i] += " shared"
		}
	}
	return strings.Join(d, ", ")
}

func describeState(s state, sessions []uint64) string {
	var b strings.Builder
	if s.n() == 0 {
		fmt.Fprintf(&b, "free (tokens > %d)", s.last)
	}
	for i := range s.n() {
		h := s.at(i)
		if i > 0 {
			b.WriteString(", ")
		}
		if h.sidx == -2 {
			b.WriteString("a holder granted unseen")
			continue
		}
		if h.sidx < 0 {
			b.WriteString("a session that acts no more")
			if h.shared {
				b.WriteString(" (shared)")
			}
			continue
		}
		if s.value != "" {
			fmt.Fprintf(&b, "s%d: %q ", h.sess, s.value)
		} else {
			fmt.Fprintf(&b, "s%d ", h.sess)
		}
		if h.shared {
			b.WriteString("shared ")
		}
		switch {
		case h.token != 0:
			fmt.Fprintf(&b, "token %d", h.token)
		case h.hi == math.MaxUint64:
			fmt.Fprintf(&b, "token ? >= %d", h.lo)
		default:
			fmt.Fprintf(&b, "token ? in [%d, %d]", h.lo, h.hi)
		}
		if h.via != 0 {
			b.WriteString(" (cancelled wait)")
		}
	}
	if s.n() > 0 {
		fmt.Fprintf(&b, " (last token %d)", s.last)
	}
	if n := bitCount(s.pend); n > 0 {
		fmt.Fprintf(&b, "; %d unseen writes pending", n)
	}
	var dead []string
	for i := 0; i < 8*len(s.dead); i++ {
		if bitIn(s.dead, i) && i < len(sessions) {
			dead = append(dead, fmt.Sprintf("s%d", sessions[i]))
		}
	}
	if len(dead) > 0 {
		fmt.Fprintf(&b, "; dead %s", strings.Join(dead, " "))
	}
	return b.String()
}
