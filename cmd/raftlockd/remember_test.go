package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A data dir that holds a member remembers its URLs: flags not given are
// taken from it, flags given win, and a corrupt file stops the start
// naming it.
func TestRecallURLs(t *testing.T) {
	dir := t.TempDir()
	parse := func(args ...string) (*options, error) {
		return parseFlags(append([]string{"--data-dir", dir}, args...), func(string) string { return "" }, &strings.Builder{})
	}
	first, err := parse("--listen-client", "http://127.0.0.1:7080", "--listen-peer", "http://127.0.0.1:7081", "--advertise-client", "http://db1:7080")
	if err != nil {
		t.Fatal(err)
	}
	if err := first.rememberURLs(); err != nil {
		t.Fatal(err)
	}
	// Without a WAL the data dir holds no member yet: nothing is recalled.
	if o, _ := parse(); o.listenClient != "http://127.0.0.1:7070" {
		t.Fatalf("recalled into a new data dir: %s", o.listenClient)
	}
	if err := os.Mkdir(filepath.Join(dir, "wal"), 0o700); err != nil {
		t.Fatal(err)
	}
	o, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if o.listenClient != "http://127.0.0.1:7080" || o.listenPeer != "http://127.0.0.1:7081" ||
		o.advertiseClient != "http://db1:7080" || o.advertisePeer != "http://127.0.0.1:7081" {
		t.Fatalf("recalled %+v", o)
	}
	// A flag given again wins; the advertise URL that only followed its
	// listen URL follows the new one.
	o, err = parse("--listen-peer", "http://127.0.0.1:9091", "--advertise-client", "http://db2:7080")
	if err != nil {
		t.Fatal(err)
	}
	if o.listenPeer != "http://127.0.0.1:9091" || o.advertisePeer != "http://127.0.0.1:9091" || o.advertiseClient != "http://db2:7080" || o.listenClient != "http://127.0.0.1:7080" {
		t.Fatalf("overridden %+v", o)
	}
	// The peer URL given must be the member's.
	o, _ = parse("--advertise-peer", "http://127.0.0.1:9091")
	if err := o.checkPeerURL(1, map[uint64]string{1: "http://127.0.0.1:7081"}); err == nil || !strings.Contains(err.Error(), "does not change") {
		t.Fatalf("a new peer URL for an existing member: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, urlsFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := parse(); err == nil || !strings.Contains(err.Error(), urlsFile) {
		t.Fatalf("a corrupt %s: %v", urlsFile, err)
	}
}
