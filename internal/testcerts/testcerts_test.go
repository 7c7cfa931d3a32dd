package testcerts

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

func TestIssuedCertificateVerifiesAgainstItsCAOnly(t *testing.T) {
	ca, other := NewCA(t, "ca"), NewCA(t, "other")
	o := Loopback
	o.CommonName, o.Server, o.Client = "member", true, true
	p := ca.Issue(t, o)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := p.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "localhost", KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("usage %v: %v", usage, err)
		}
	}
	if _, err := p.Cert.Verify(x509.VerifyOptions{Roots: other.Pool()}); err == nil {
		t.Error("verified against another CA")
	}

	dir := t.TempDir()
	certFile, keyFile := p.WriteFiles(t, dir, "member")
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(Bundle(ca, other)) {
		t.Fatal("bundle does not parse")
	}
	if _, err := p.Cert.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		t.Fatalf("against a bundle: %v", err)
	}
}
