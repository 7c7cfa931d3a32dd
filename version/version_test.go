package version

import (
	"runtime"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	i := Get()
	if i.Version == "" || i.Go != runtime.Version() {
		t.Fatalf("%+v", i)
	}
	if s := i.String(); !strings.Contains(s, i.Version) || !strings.HasSuffix(s, runtime.Version()) {
		t.Fatalf("String %q", s)
	}
	Version = "v9.9.9"
	defer func() { Version = "" }()
	if got := Get().Version; got != "v9.9.9" {
		t.Fatalf("link-time version ignored: %q", got)
	}
	if s := (Info{Version: "v1", Revision: "0123456789abcdef", Modified: true, Go: "go1"}).String(); s != "v1 (revision 0123456789ab, modified) go1" {
		t.Fatalf("%q", s)
	}
}
