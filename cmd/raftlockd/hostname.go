package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// idFromHostnameHelp is the help of --id-from-hostname.
const idFromHostnameHelp = "take the member ID from the host name: the number after its last '-', plus one (a StatefulSet's pod raftlock-0 is member 1, raftlock-2 member 3); for images without a shell. Refused with --id, and when the host name has no such number"

// applyIDFromHostname sets the member ID from the host name when
// --id-from-hostname is set, and does nothing otherwise. hostname is
// os.Hostname in the command and a fake in tests.
//
// It refuses a member ID given as well (--id or RAFTLOCK_ID): the two would
// disagree on some pod, and a member that starts under another member's ID
// speaks for it. The error names the host name when it has no ordinal.
func (o *options) applyIDFromHostname(hostname func() (string, error)) error {
	if !o.idFromHostname {
		return nil
	}
	if o.id != 0 {
		return errors.New("--id-from-hostname and --id (or RAFTLOCK_ID) are both set: give one of them")
	}
	host, err := hostname()
	if err != nil {
		return fmt.Errorf("--id-from-hostname: read the host name: %w", err)
	}
	id, err := idFromHostname(host)
	if err != nil {
		return fmt.Errorf("--id-from-hostname: %w", err)
	}
	o.id = id
	return nil
}

// idFromHostname returns the member ID of a host named like a StatefulSet's
// pod, "<name>-<ordinal>": the ordinal plus one, since member IDs are never
// 0. Only the first label counts ("raftlock-2.raftlock.ns.svc" is
// "raftlock-2"), so a pod with setHostnameAsFQDN gets the same ID. The
// ordinal is decimal digits without a leading zero (two host names never
// give the same ID).
func idFromHostname(host string) (uint64, error) {
	label, _, _ := strings.Cut(host, ".")
	i := strings.LastIndexByte(label, '-')
	if i < 0 {
		return 0, fmt.Errorf("host name %q has no ordinal: want <name>-<number>, as a StatefulSet names its pods (raftlock-0 is member 1)", host)
	}
	digits := label[i+1:]
	ordinal, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || (len(digits) > 1 && digits[0] == '0') {
		return 0, fmt.Errorf("host name %q has no ordinal: %q after the last '-' is not a number (want <name>-<number>, as a StatefulSet names its pods)", host, digits)
	}
	if ordinal == math.MaxUint64 {
		return 0, fmt.Errorf("host name %q: ordinal %d is too large for a member ID", host, ordinal)
	}
	return ordinal + 1, nil
}
