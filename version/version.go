// Package version reports the version of the raftlock binaries from the
// build: the module version and VCS revision that the Go toolchain records
// (runtime/debug.ReadBuildInfo), or a version set at link time with
//
//	go build -ldflags "-X github.com/raftlock/raftlock/version.Version=v1.2.3" ./cmd/...
//
// for builds without VCS information (-buildvcs=false, a source tarball).
// It depends on the standard library only.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is set at link time (-ldflags -X); empty means "from the build
// info".
var Version string

// Info describes the running binary.
type Info struct {
	// Version is the link-time Version, else the main module's version
	// ("(devel)" for a build from a work tree).
	Version string `json:"version"`
	// Revision is the VCS revision the binary was built from ("" when the
	// build recorded none), Modified whether the work tree had changes.
	Revision string `json:"revision,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	// Go is the Go version that built it.
	Go string `json:"go"`
}

// Get returns the running binary's Info.
func Get() Info {
	info := Info{Version: Version, Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if info.Version == "" {
			info.Version = "(unknown)"
		}
		return info
	}
	if info.Version == "" {
		info.Version = bi.Main.Version
	}
	if info.Version == "" {
		info.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is "<program> <version> (revision <rev>[, modified]) <go>", the
// line of --version.
func (i Info) String() string {
	var b strings.Builder
	b.WriteString(i.Version)
	if i.Revision != "" {
		rev := i.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		fmt.Fprintf(&b, " (revision %s", rev)
		if i.Modified {
			b.WriteString(", modified")
		}
		b.WriteString(")")
	}
	b.WriteString(" " + i.Go)
	return b.String()
}
