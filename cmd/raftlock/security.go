package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/raftlock/raftlock/api"
)

// The environment variables of the TLS and auth flags. Not RAFTLOCK_TOKEN:
// that is the fencing token a CMD of "raftlock lock" gets.
const (
	envCACert        = "RAFTLOCK_CACERT"
	envCert          = "RAFTLOCK_CERT"
	envKey           = "RAFTLOCK_KEY"
	envAuthTokenFile = "RAFTLOCK_AUTH_TOKEN_FILE"
)

// security are the global flags that say how raftlock proves the cluster's
// identity and its own: --cacert, --cert, --key, --auth-token-file.
type security struct {
	caCert, cert, key, tokenFile string
}

// flagOrEnv returns the flag's value, or the environment variable's when
// the flag is empty, and the name of where it came from.
func (e *env) flagOrEnv(flag, flagName, envName string) (string, string) {
	if flag != "" {
		return flag, "--" + flagName
	}
	return e.getenv(envName), envName
}

// tlsConfig returns the TLS configuration of the flags, nil when none is
// set (https then trusts the system's roots). The client certificate is
// read now, so that a bad one is reported at once, and again at a
// handshake after its files changed, so that a long-running sidecar
// follows a rotation.
func (e *env) tlsConfig() (*tls.Config, error) {
	ca, caFrom := e.flagOrEnv(e.sec.caCert, "cacert", envCACert)
	cert, certFrom := e.flagOrEnv(e.sec.cert, "cert", envCert)
	key, keyFrom := e.flagOrEnv(e.sec.key, "key", envKey)
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", caFrom, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: %s holds no PEM certificate", caFrom, ca)
		}
		cfg.RootCAs = pool
	}
	switch {
	case cert == "" && key == "":
	case cert == "":
		return nil, usageErrorf("%s needs --cert (or %s): the client certificate of the key", keyFrom, envCert)
	case key == "":
		return nil, usageErrorf("%s needs --key (or %s): the private key of the certificate", certFrom, envKey)
	default:
		kp := &keyPair{cert: cert, key: key}
		if _, err := kp.get(); err != nil {
			return nil, fmt.Errorf("%s, %s: %w", certFrom, keyFrom, err)
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	}
	return cfg, nil
}

// flagError is an error in the flags themselves (exit 2, with the usage),
// rather than in what they name (a file that cannot be read: exit 1).
type flagError struct{ error }

func usageErrorf(format string, args ...any) error { return flagError{fmt.Errorf(format, args...)} }

// keyPair is a client certificate read from its files, read again when
// they change.
type keyPair struct {
	cert, key string

	mu     sync.Mutex
	loaded *tls.Certificate
	stamp  [2]fileStamp // of cert and key when loaded
}

// fileStamp tells whether a file changed.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// get returns the certificate, read again if a file changed since. A
// failed re-read (a rotation half done) keeps the certificate read before.
func (k *keyPair) get() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	sc, err1 := stampOf(k.cert)
	sk, err2 := stampOf(k.key)
	if err := errors.Join(err1, err2); err != nil {
		if k.loaded != nil {
			return k.loaded, nil
		}
		return nil, err
	}
	if k.loaded != nil && k.stamp == [2]fileStamp{sc, sk} {
		return k.loaded, nil
	}
	c, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		if k.loaded != nil {
			return k.loaded, nil
		}
		return nil, err
	}
	k.loaded, k.stamp = &c, [2]fileStamp{sc, sk}
	return k.loaded, nil
}

// authToken returns the bearer token in the file of --auth-token-file (or
// RAFTLOCK_AUTH_TOKEN_FILE), "" when neither is set. Surrounding blanks
// and the final newline are not part of it. The token itself never appears
// in an error.
func (e *env) authToken() (string, error) {
	path, from := e.flagOrEnv(e.sec.tokenFile, "auth-token-file", envAuthTokenFile)
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", from, err)
	}
	tok := string(bytes.TrimSpace(b))
	if tok == "" {
		return "", fmt.Errorf("%s: %s is empty", from, path)
	}
	if _, ok := api.BearerToken("Bearer " + tok); !ok {
		return "", fmt.Errorf("%s: %s does not hold a token (one line of printable ASCII without spaces, at most 512 bytes)", from, path)
	}
	return tok, nil
}

// plainRemote returns the first endpoint that is http:// to a host that is
// not a loopback address ("" if none): a token sent there travels in
// clear text over a network.
func plainRemote(eps []string) string {
	for _, ep := range eps {
		u, err := url.Parse(ep)
		if err != nil || u.Scheme != "http" {
			continue
		}
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			continue
		}
		return ep
	}
	return ""
}
