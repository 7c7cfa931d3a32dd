package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// urlsFile is the file of a data dir in which raftlockd remembers the
// member's listen and advertise URLs, so that `raftlockd --data-dir DIR`
// alone restarts the member as it ran (as etcd does).
const urlsFile = "raftlockd-urls.json"

// rememberedURLs is the content of urlsFile.
type rememberedURLs struct {
	ListenClient    string `json:"listen_client"`
	ListenPeer      string `json:"listen_peer"`
	AdvertiseClient string `json:"advertise_client"`
	AdvertisePeer   string `json:"advertise_peer"`
}

// recallURLs fills the URL flags not given (on the command line or in the
// environment) from the data dir's urlsFile, when the data dir holds a
// member. A flag given again overrides the remembered URL (the file is
// then updated once the member starts; checkPeerURL refuses a peer URL
// other than the member's). A file that cannot be read or decoded stops
// the start with its name: it is never silently skipped.
func (o *options) recallURLs() error {
	path := filepath.Join(o.dataDir, urlsFile)
	if _, err := os.Stat(filepath.Join(o.dataDir, "wal")); err != nil {
		return nil // a new member: nothing to recall
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // a data dir of a build before this file
	}
	if err != nil {
		return fmt.Errorf("data dir %s: read the remembered URLs: %w", o.dataDir, err)
	}
	var r rememberedURLs
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("data dir %s: %s is corrupt (%v): delete it and give --listen-client, --listen-peer, --advertise-client and --advertise-peer again", o.dataDir, path, err)
	}
	fill := func(flag string, v *string, remembered string) {
		if !o.set[flag] && remembered != "" {
			*v = remembered
		}
	}
	fill("listen-client", &o.listenClient, r.ListenClient)
	fill("listen-peer", &o.listenPeer, r.ListenPeer)
	// An advertise URL that was only the default (its listen URL) follows
	// a listen URL given again.
	if !o.set["listen-client"] || r.AdvertiseClient != r.ListenClient {
		fill("advertise-client", &o.advertiseClient, r.AdvertiseClient)
	}
	if !o.set["listen-peer"] || r.AdvertisePeer != r.ListenPeer {
		fill("advertise-peer", &o.advertisePeer, r.AdvertisePeer)
	}
	return nil
}

// rememberURLs writes the member's URLs into its data dir (atomically: a
// temporary file, fsynced, renamed), when they changed.
func (o *options) rememberURLs() error {
	r := rememberedURLs{ListenClient: o.listenClient, ListenPeer: o.listenPeer, AdvertiseClient: o.advertiseClient, AdvertisePeer: o.advertisePeer}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	path := filepath.Join(o.dataDir, urlsFile)
	if old, err := os.ReadFile(path); err == nil && string(old) == string(b) {
		return nil
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("data dir %s: remember the URLs: %w", o.dataDir, err)
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("data dir %s: remember the URLs: %w", o.dataDir, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("data dir %s: remember the URLs: %w", o.dataDir, err)
	}
	if d, err := os.Open(o.dataDir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// checkPeerURL refuses an --advertise-peer given that is not the member's
// peer URL in the cluster: the other members dial that one, and a
// member's peer URL does not change (remove the member and add a new one
// at the new URL). (A --listen-peer alone may differ from it: behind a
// proxy or a NAT, the members dial another address.)
func (o *options) checkPeerURL(id uint64, peers map[uint64]string) error {
	if !o.set["advertise-peer"] {
		return nil
	}
	if have := peers[id]; have != "" && have != o.advertisePeer {
		return fmt.Errorf("--advertise-peer %s: member %d's peer URL in the cluster is %s, and a member's peer URL does not change; to move it, remove the member and add a new one at the new URL (raftlock member remove/add)", o.advertisePeer, id, have)
	}
	return nil
}
