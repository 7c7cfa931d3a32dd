package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/await"
)

// The container image (deploy/container): what the tests below and the
// Kubernetes manifests (kubernetes_test.go) rely on.
const (
	containerDir  = "deploy/container"
	imageServer   = "/usr/bin/raftlockd" // the entrypoint
	imageCLI      = "/usr/bin/raftlock"
	imageDataDir  = "/var/lib/raftlock" // the volume, owned by the image's user
	imageUID      = 65532
	imageGID      = 65532
	imageVersion  = "v0.0.0-container-e2e"
	containerTool = "podman"
)

// buildScriptImage returns the tag that deploy/container/build.sh gives the
// image by default (IMAGE="${IMAGE:-<tag>}").
func buildScriptImage(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), containerDir, "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^IMAGE="\$\{IMAGE:-([^}"]+)\}"$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf(`%s/build.sh: no line IMAGE="${IMAGE:-<default tag>}"`, containerDir)
	}
	return string(m[1])
}

// containerfile returns the Containerfile's instructions, one per line,
// continuations joined and comments dropped.
func containerfile(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), containerDir, "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	cur := ""
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if cur == "" && (l == "" || strings.HasPrefix(l, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur += s + " "
			continue
		}
		out = append(out, cur+l)
		cur = ""
	}
	return out
}

// TestContainerfile checks what the image promises without building it:
// FROM scratch and no RUN (so nothing runs at build time and no base image
// is pulled), a numeric non-root user, the ports, the volume and the
// entrypoint that the manifests assume.
func TestContainerfile(t *testing.T) {
	var from, user, entry, expose, volume []string
	for _, in := range containerfile(t) {
		kw, rest, _ := strings.Cut(in, " ")
		switch strings.ToUpper(kw) {
		case "FROM":
			from = append(from, rest)
		case "RUN":
			t.Errorf("Containerfile: %q: the image is built without RUN steps (FROM scratch has no shell)", in)
		case "USER":
			user = append(user, rest)
		case "ENTRYPOINT":
			entry = append(entry, rest)
		case "EXPOSE":
			expose = append(expose, strings.Fields(rest)...)
		case "VOLUME":
			volume = append(volume, rest)
		}
	}
	if !slices.Equal(from, []string{"scratch"}) {
		t.Errorf("FROM %q, want one stage FROM scratch", from)
	}
	if want := fmt.Sprintf("%d:%d", imageUID, imageGID); !slices.Equal(user, []string{want}) {
		t.Errorf("USER %q, want %s (numeric, not root)", user, want)
	}
	if want := fmt.Sprintf("[%q]", imageServer); !slices.Equal(entry, []string{want}) {
		t.Errorf("ENTRYPOINT %q, want %s (exec form: there is no shell)", entry, want)
	}
	if !slices.Equal(expose, []string{"7070", "7071"}) {
		t.Errorf("EXPOSE %q, want 7070 7071", expose)
	}
	if want := fmt.Sprintf("[%q]", imageDataDir); !slices.Equal(volume, []string{want}) {
		t.Errorf("VOLUME %q, want %s", volume, want)
	}
}

// TestContainerImage builds the image as a user would, with
// deploy/container/build.sh and podman, checks its configuration, creates a
// container from it and exports the container's file system, and runs the
// binaries found there on this host: --version, and a single-node
// raftlockd that answers /readyz and "raftlock status". Containers are
// never run (the development machines refuse to: the runtime may not set
// rlimits there); build, create and export need no runtime.
//
// It needs podman: .ci/run installs it when it is missing, and under CI a
// missing podman fails the test; elsewhere it is skipped.
func TestContainerImage(t *testing.T) {
	tool, err := exec.LookPath(containerTool)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found: .ci/run installs it (apt-get install podman)", containerTool)
		}
		t.Skipf("%s not found (apt-get install podman)", containerTool)
	}
	root := repoRoot(t)
	tag := fmt.Sprintf("localhost/raftlock-e2e:%d-%d", os.Getpid(), time.Now().UnixNano())
	podman := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(tool, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s%s", containerTool, strings.Join(args, " "), err, out, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}

	// Build it with the script, as documented, under a tag of our own.
	start := time.Now()
	build := exec.Command("bash", filepath.Join(root, containerDir, "build.sh"))
	build.Dir = root
	build.Env = append(os.Environ(), "IMAGE="+tag, "VERSION="+imageVersion, "CONTAINER_TOOL="+tool)
	out, err := build.CombinedOutput()
	t.Cleanup(func() { exec.Command(tool, "rmi", "--force", tag).Run() })
	if err != nil {
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	t.Logf("build.sh (go build and podman build): %v", time.Since(start).Round(time.Millisecond))

	// The image's configuration.
	var imgs []struct {
		Architecture, Os string
		Config           struct {
			User         string
			Entrypoint   []string
			Cmd          []string
			WorkingDir   string
			ExposedPorts map[string]struct{}
			Volumes      map[string]struct{}
			Labels       map[string]string
		}
	}
	if err := json.Unmarshal([]byte(podman("image", "inspect", tag)), &imgs); err != nil || len(imgs) != 1 {
		t.Fatalf("image inspect: %d images, %v", len(imgs), err)
	}
	img := imgs[0]
	cfg := img.Config
	uid, gid, ok := strings.Cut(cfg.User, ":")
	if u, err := strconv.Atoi(uid); !ok || err != nil || u == 0 || u != imageUID {
		t.Errorf("User %q: want %d:%d, numeric and not root", cfg.User, imageUID, imageGID)
	} else if g, err := strconv.Atoi(gid); err != nil || g != imageGID {
		t.Errorf("User %q: want group %d", cfg.User, imageGID)
	}
	if !slices.Equal(cfg.Entrypoint, []string{imageServer}) || len(cfg.Cmd) != 0 {
		t.Errorf("Entrypoint %q Cmd %q, want [%s] and no Cmd", cfg.Entrypoint, cfg.Cmd, imageServer)
	}
	if _, ok := cfg.Volumes[imageDataDir]; !ok || len(cfg.Volumes) != 1 || cfg.WorkingDir != imageDataDir {
		t.Errorf("Volumes %v WorkingDir %q, want %s for both", cfg.Volumes, cfg.WorkingDir, imageDataDir)
	}
	for _, p := range []string{"7070/tcp", "7071/tcp"} {
		if _, ok := cfg.ExposedPorts[p]; !ok {
			t.Errorf("ExposedPorts %v: no %s", cfg.ExposedPorts, p)
		}
	}
	if v := cfg.Labels["org.opencontainers.image.version"]; v != imageVersion {
		t.Errorf("label org.opencontainers.image.version %q, want %q (VERSION)", v, imageVersion)
	}
	if img.Os != "linux" || img.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", img.Os, img.Architecture, runtime.GOARCH)
	}

	// Create a container (not run) and export its file system.
	id := podman("create", tag)
	t.Cleanup(func() { exec.Command(tool, "rm", "--force", id).Run() })
	tarPath := filepath.Join(t.TempDir(), "rootfs.tar")
	podman("export", "--output", tarPath, id)
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	tree := extractTree(t, tarPath, rootfs)

	// The tree is the two binaries and the data dir, and nothing else: no
	// shell, no libc, no passwd; the binaries belong to root, the data dir
	// to the image's user.
	want := map[string]string{
		"usr/":              "dir 0:0 0755",
		"usr/bin/":          "dir 0:0 0755",
		"usr/bin/raftlockd": "file 0:0 0755",
		"usr/bin/raftlock":  "file 0:0 0755",
		"var/":              "dir 0:0 0755",
		"var/lib/":          "dir 0:0 0755",
		"var/lib/raftlock/": fmt.Sprintf("dir %d:%d 0700", imageUID, imageGID),
	}
	for _, sh := range []string{"bin/sh", "usr/bin/sh", "bin/busybox"} {
		if _, ok := tree[sh]; ok {
			t.Errorf("exported tree has /%s: the image has no shell", sh)
		}
	}
	for name, w := range want {
		if got := tree[name]; got != w {
			t.Errorf("exported tree: %s is %q, want %q", name, got, w)
		}
	}
	for name, got := range tree {
		if _, ok := want[name]; !ok {
			t.Errorf("exported tree: unexpected %s (%s): the image holds the two binaries and the data dir only", name, got)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	server := filepath.Join(rootfs, imageServer)
	cli := filepath.Join(rootfs, imageCLI)
	for _, bin := range []string{server, cli} {
		checkStatic(t, bin)
	}

	// The binaries run on the host and say the version build.sh linked in.
	for _, c := range []struct{ bin, want string }{
		{server, "raftlockd " + imageVersion + " "},
		{cli, "raftlock " + imageVersion + " "},
	} {
		out, err := exec.Command(c.bin, "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), c.want) {
			t.Errorf("%s --version: %q, %v; want %q...", c.bin, out, err, c.want)
		}
	}

	// A single-node raftlockd from the exported tree answers /readyz, and
	// the exported CLI talks to it.
	ports := freePorts(t, 2)
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	var logBuf lockedBuf
	cmd := exec.Command(server,
		"--listen-client", clientURL,
		"--listen-peer", fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		"--data-dir", filepath.Join(t.TempDir(), "data"))
	cmd.Env = []string{} // no RAFTLOCK_* of the caller's
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
	})
	hc := &http.Client{Timeout: 2 * time.Second}
	await.True(t, 30*time.Second, "raftlockd of the image answers /readyz 200", func() bool {
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("raftlockd exited: %v\n%s", err, logBuf.String())
		default:
		}
		resp, err := hc.Get(clientURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	status := exec.CommandContext(ctx, cli, "status", "--output", "json", "--endpoints", clientURL)
	status.Env = []string{}
	if out, err := status.CombinedOutput(); err != nil || !strings.Contains(string(out), `"leader"`) {
		t.Errorf("raftlock status: %v\n%s", err, out)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("raftlockd after SIGTERM: %v\n%s", err, logBuf.String())
		}
	case <-time.After(20 * time.Second):
		t.Errorf("raftlockd did not stop within 20s of SIGTERM\n%s", logBuf.String())
	}
}

// extractTree unpacks the directories and regular files of a podman export
// into dir, and returns every entry as "dir|file uid:gid mode" by its path
// (directories with a trailing "/"). Any other kind of entry (a link, a
// device) is recorded as its kind and not extracted.
func extractTree(t *testing.T, tarPath, dir string) map[string]string {
	t.Helper()
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tree := map[string]string{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", tarPath, err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." || strings.HasPrefix(name, "../") || path.IsAbs(name) {
			continue
		}
		owner := fmt.Sprintf("%d:%d %04o", h.Uid, h.Gid, h.Mode&0o7777)
		dst := filepath.Join(dir, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			tree[name+"/"] = "dir " + owner
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			tree[name] = "file " + owner
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				t.Fatal(err)
			}
			if err := out.Close(); err != nil {
				t.Fatal(err)
			}
		default:
			tree[name] = fmt.Sprintf("type %q %s", h.Typeflag, owner)
		}
	}
	return tree
}

// checkStatic fails unless bin is a statically linked ELF executable: no
// program interpreter and no shared libraries (the image has no libc).
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: not static (CGO_ENABLED=0)", bin)
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", bin, libs)
	}
}
