package main

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestIDFromHostname(t *testing.T) {
	for host, want := range map[string]uint64{
		"raftlock-0":                 1,
		"raftlock-2":                 3,
		"my-lock-service-10":         11,
		"raftlock-2.raftlock.ns.svc": 3, // setHostnameAsFQDN: the first label counts
		"raftlock-2.raft-lock.svc":   3, // a '-' in the domain is not the ordinal's
		"a-18446744073709551614":     18446744073709551615,
	} {
		got, err := idFromHostname(host)
		if err != nil || got != want {
			t.Errorf("idFromHostname(%q) = %d, %v; want %d", host, got, err, want)
		}
	}
	for _, host := range []string{
		"", "raftlock", "raftlock-", "raftlock-x", "raftlock-1a", "raftlock-+1", "raftlock- 1",
		"raftlock-01",             // a leading zero: raftlock-1 would be the same member
		"raftlock.ns-1",           // the ordinal must be in the first label
		"a-18446744073709551615",  // plus one overflows
		"a-100000000000000000000", // more than 64 bits
	} {
		if id, err := idFromHostname(host); err == nil {
			t.Errorf("idFromHostname(%q) = %d, want an error", host, id)
		} else if !strings.Contains(err.Error(), "host name") {
			t.Errorf("idFromHostname(%q): %v, want an error naming the host name", host, err)
		}
	}
}

func TestIDFromHostnameFlag(t *testing.T) {
	host := func(name string) func() (string, error) {
		return func() (string, error) { return name, nil }
	}
	parse := func(args []string, env map[string]string) *options {
		t.Helper()
		o, err := parseFlags(args, func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			t.Fatalf("parseFlags(%q): %v", args, err)
		}
		return o
	}

	// Off: the host name is not even read.
	o := parse([]string{"--id", "7"}, nil)
	if err := o.applyIDFromHostname(func() (string, error) { t.Fatal("host name read"); return "", nil }); err != nil || o.id != 7 {
		t.Fatalf("without the flag: id %d, %v", o.id, err)
	}

	// On, from the flag or the environment: the pod's ordinal + 1.
	for _, o := range []*options{
		parse([]string{"--id-from-hostname"}, nil),
		parse(nil, map[string]string{"RAFTLOCK_ID_FROM_HOSTNAME": "true"}),
	} {
		if err := o.applyIDFromHostname(host("raftlock-2")); err != nil || o.id != 3 {
			t.Fatalf("raftlock-2: id %d, %v; want 3", o.id, err)
		}
	}

	// With --id as well (flag or environment): refused, whatever they say.
	for _, o := range []*options{
		parse([]string{"--id-from-hostname", "--id", "3"}, nil),
		parse([]string{"--id-from-hostname"}, map[string]string{"RAFTLOCK_ID": "3"}),
	} {
		err := o.applyIDFromHostname(host("raftlock-2"))
		if err == nil || !strings.Contains(err.Error(), "--id-from-hostname and --id") {
			t.Fatalf("with --id: %v, want a refusal naming both flags", err)
		}
	}

	// No ordinal, or no host name: refused, naming the flag.
	o = parse([]string{"--id-from-hostname"}, nil)
	if err := o.applyIDFromHostname(host("db1")); err == nil || !strings.Contains(err.Error(), `--id-from-hostname: host name "db1" has no ordinal`) {
		t.Fatalf("db1: %v", err)
	}
	boom := errors.New("boom")
	if err := o.applyIDFromHostname(func() (string, error) { return "", boom }); !errors.Is(err, boom) || !strings.Contains(err.Error(), "--id-from-hostname") {
		t.Fatalf("hostname error: %v", err)
	}
	if o.id != 0 {
		t.Fatalf("a refusal set id %d", o.id)
	}
}
