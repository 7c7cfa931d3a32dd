package lock

import (
	"cmp"
	"fmt"
	"slices"
)

// AlarmKind names an alarm.
type AlarmKind uint8

// AlarmNoSpace: a member's disk is (nearly) full. While any member raises
// it, commands that would grow the state answer CodeNoSpace, as etcd's
// NOSPACE alarm does.
const AlarmNoSpace AlarmKind = 1

// String returns the alarm's wire name.
func (k AlarmKind) String() string {
	if k == AlarmNoSpace {
		return "nospace"
	}
	return fmt.Sprintf("alarm(%d)", uint8(k))
}

// Alarm is an alarm raised by a member: replicated state, so every node
// reports it (and refuses alike) until the member clears it.
type Alarm struct {
	Member uint64
	Kind   AlarmKind
}

// Alarms returns the raised alarms sorted by member and kind. The slice is
// the machine's own, replaced (never changed) when an alarm is raised or
// cleared: read it, do not modify it.
func (m *Machine) Alarms() []Alarm { return m.alarms }

// noSpaceAlarm returns the first raised AlarmNoSpace.
func (m *Machine) noSpaceAlarm() (Alarm, bool) {
	for _, a := range m.alarms {
		if a.Kind == AlarmNoSpace {
			return a, true
		}
	}
	return Alarm{}, false
}

// setAlarm applies OpAlarm: raise (Command.Wait) or clear the alarm
// Command.Alarm. Idempotent: raising a raised alarm or clearing a clear one
// changes nothing.
func (a *applier) setAlarm(c *Command) {
	a.res.Code = CodeOK
	i, found := slices.BinarySearchFunc(a.m.alarms, c.Alarm, compareAlarms)
	switch {
	case c.Wait && !found:
		a.m.alarms = slices.Insert(slices.Clone(a.m.alarms), i, c.Alarm)
	case !c.Wait && found:
		a.m.alarms = slices.Delete(slices.Clone(a.m.alarms), i, i+1)
		if len(a.m.alarms) == 0 {
			a.m.alarms = nil
		}
	}
}

func compareAlarms(x, y Alarm) int {
	if c := cmp.Compare(x.Member, y.Member); c != 0 {
		return c
	}
	return cmp.Compare(x.Kind, y.Kind)
}
