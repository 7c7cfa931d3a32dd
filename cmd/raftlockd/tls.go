package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"

	"go.etcd.io/etcd/client/pkg/v3/transport"
)

// tlsSetup is the TLS of both ports, built from the flags.
type tlsSetup struct {
	// peer is the peer port's TLS (server and rafthttp's client); empty
	// when the peer URLs are http.
	peer transport.TLSInfo
	// peerServer is the peer listener's configuration; nil without peer
	// TLS.
	peerServer *tls.Config
	// client is the client listener's configuration; nil without client
	// TLS.
	client *tls.Config
	// forward is the TLS of the follower's requests to the leader's client
	// URL; nil without client TLS.
	forward *tls.Config
	// isMember tells a request from a member (a client certificate of the
	// peer CA); nil without peer TLS.
	isMember func(*http.Request) bool
	// sharedCA is set when the peer and client trusted-CA files share a CA
	// and no CN is pinned: then every client certificate of that CA proves
	// membership.
	sharedCA bool
}

// peerTLSOn reports whether the flags ask for peer TLS.
func (o *options) peerTLSOn() bool {
	return o.peerCertFile != "" || o.peerKeyFile != "" || o.peerTrustedCAFile != ""
}

// clientTLSOn reports whether the flags ask for client TLS.
func (o *options) clientTLSOn() bool {
	return o.certFile != "" || o.keyFile != ""
}

// checkTLSFlags reports the first inconsistent TLS flag.
func (o *options) checkTLSFlags() error {
	switch {
	case o.peerTLSOn() && (o.peerCertFile == "" || o.peerKeyFile == "" || o.peerTrustedCAFile == ""):
		return errors.New("peer TLS needs --peer-cert-file, --peer-key-file and --peer-trusted-ca-file (the CA that signs every member's certificate: members prove who they are with it)")
	case o.peerClientCertAuth && !o.peerTLSOn():
		return errors.New("--peer-client-cert-auth needs --peer-cert-file, --peer-key-file and --peer-trusted-ca-file")
	case o.peerCertAllowedCN != "" && !o.peerTLSOn():
		return errors.New("--peer-cert-allowed-cn needs peer TLS (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file)")
	case o.clientTLSOn() && (o.certFile == "" || o.keyFile == ""):
		return errors.New("client TLS needs both --cert-file and --key-file")
	case o.trustedCAFile != "" && !o.clientTLSOn():
		return errors.New("--trusted-ca-file verifies client certificates: it needs --cert-file and --key-file")
	case o.clientCertAuth && o.trustedCAFile == "":
		return errors.New("--client-cert-auth needs --trusted-ca-file (the CAs that sign client certificates)")
	}
	return nil
}

// buildTLS loads the certificates and CAs the flags name and builds the
// configurations of both ports. Certificates and keys are re-read at every
// handshake (transport.TLSInfo), so replacing their files takes effect
// without a restart; the CA files are read once.
func buildTLS(o *options) (*tlsSetup, error) {
	s := &tlsSetup{}
	var peerCAs []*x509.Certificate
	if o.peerTLSOn() {
		var err error
		if peerCAs, err = readCAs(o.peerTrustedCAFile); err != nil {
			return nil, fmt.Errorf("--peer-trusted-ca-file: %w", err)
		}
		// As etcd: with a trusted CA the peer listener requires and
		// verifies a client certificate (--peer-client-cert-auth is
		// implied), and the allowed CN binds both directions.
		s.peer = transport.TLSInfo{
			CertFile:       o.peerCertFile,
			KeyFile:        o.peerKeyFile,
			TrustedCAFile:  o.peerTrustedCAFile,
			ClientCertAuth: true,
		}
		if o.peerCertAllowedCN != "" {
			s.peer.AllowedCNs = []string{o.peerCertAllowedCN}
		}
		cfg, err := s.peer.ServerConfig()
		if err != nil {
			return nil, fmt.Errorf("peer TLS (--peer-cert-file %s, --peer-key-file %s): %w", o.peerCertFile, o.peerKeyFile, err)
		}
		// rafthttp speaks HTTP/1.1, and the peer guard answers refusals on
		// the hijacked connection, which HTTP/2 cannot do.
		cfg.NextProtos = []string{"http/1.1"}
		s.peerServer = cfg
		s.isMember = memberProof(peerCAs, o.peerCertAllowedCN)
	}
	if !o.clientTLSOn() {
		return s, nil
	}
	info := transport.TLSInfo{CertFile: o.certFile, KeyFile: o.keyFile}
	cfg, err := info.ServerConfig()
	if err != nil {
		return nil, fmt.Errorf("client TLS (--cert-file %s, --key-file %s): %w", o.certFile, o.keyFile, err)
	}
	cfg.NextProtos = []string{"h2", "http/1.1"}
	// Client certificates: those of the client CAs (principals), and those
	// of the peer CA (a follower forwarding to the leader proves it is a
	// member). Required with --client-cert-auth, else verified if given
	// (bearer tokens need none).
	var clientCAs []*x509.Certificate
	if o.trustedCAFile != "" {
		if clientCAs, err = readCAs(o.trustedCAFile); err != nil {
			return nil, fmt.Errorf("--trusted-ca-file: %w", err)
		}
	}
	cfg.ClientAuth = tls.NoClientCert
	if len(clientCAs)+len(peerCAs) > 0 {
		pool := x509.NewCertPool()
		for _, c := range append(append([]*x509.Certificate{}, clientCAs...), peerCAs...) {
			pool.AddCert(c)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	if o.clientCertAuth {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	s.client = cfg
	s.sharedCA = o.peerCertAllowedCN == "" && shareAny(peerCAs, clientCAs)

	// Forwarding: present this member's peer certificate (or, without
	// peer TLS, its client-port certificate, which then needs the
	// clientAuth usage) and trust the system roots and both CA files for
	// the leader's client-port certificate.
	fwd := transport.TLSInfo{CertFile: o.certFile, KeyFile: o.keyFile}
	if o.peerTLSOn() {
		fwd = transport.TLSInfo{CertFile: o.peerCertFile, KeyFile: o.peerKeyFile}
	}
	fcfg, err := fwd.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("TLS of requests forwarded to the leader: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	for _, c := range append(append([]*x509.Certificate{}, clientCAs...), peerCAs...) {
		roots.AddCert(c)
	}
	fcfg.RootCAs = roots
	s.forward = fcfg
	return s, nil
}

// readCAs returns every certificate of a PEM file (a bundle may hold
// several CAs, e.g. the old and the new one during a rotation).
func readCAs(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cas []*x509.Certificate
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", path, len(cas)+1, err)
		}
		cas = append(cas, c)
	}
	if len(cas) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return cas, nil
}

// memberProof returns Config.IsMember: the request's client certificate was
// verified at the handshake along a chain that ends at one of the peer CAs,
// and its CN is allowedCN when that is set.
func memberProof(peerCAs []*x509.Certificate, allowedCN string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		if r.TLS == nil {
			return false
		}
		for _, chain := range r.TLS.VerifiedChains {
			if len(chain) == 0 || !containsCert(peerCAs, chain[len(chain)-1]) {
				continue
			}
			if allowedCN == "" || chain[0].Subject.CommonName == allowedCN {
				return true
			}
		}
		return false
	}
}

func containsCert(set []*x509.Certificate, c *x509.Certificate) bool {
	for _, s := range set {
		if bytes.Equal(s.Raw, c.Raw) {
			return true
		}
	}
	return false
}

func shareAny(a, b []*x509.Certificate) bool {
	for _, c := range a {
		if containsCert(b, c) {
			return true
		}
	}
	return false
}
