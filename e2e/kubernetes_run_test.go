package e2e

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
)

// TestKubernetesPodsOnLoopback runs the pods of examples/kubernetes as
// processes of this host, each with the arguments and environment that
// Kubernetes would give it: its own host name (a UTS namespace, for
// --id-from-hostname), the cluster's DNS names (a hosts file bind-mounted
// over /etc/hosts in a mount namespace), its own address (127.0.0.11, .12,
// … stand for the pod IPs; the listen address 0.0.0.0 becomes the pod's),
// and its volumes as directories (Secrets with their defaultMode, made by
// examples/tls-certs.sh with the SANS of examples/README.md). Only the
// addresses and the paths of mounted files are rewritten; every other
// argument is the manifest's.
//
// It then checks what Kubernetes would: the kubelet's probes (HTTPS to the
// pod IP, no certificate checked), the member IDs (pod ordinal + 1), one
// cluster of three, the auth commands of examples/README.md, and a sidecar
// of leader-sidecar.yaml that leads election web with that token.
//
// Namespaces need root (CI runs as root); elsewhere it is skipped.
func TestKubernetesPodsOnLoopback(t *testing.T) {
	for _, tool := range []string{"unshare", "mount", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found", tool)
		}
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI runs as root, this test is not: it needs root for unshare --uts --mount")
		}
		t.Skip("needs root (unshare --uts --mount)")
	}
	root := repoRoot(t)
	image := buildScriptImage(t)
	m := raftlockdManifest(t)
	sc := sidecarManifest(t, image)
	ns := m.stsMeta.Namespace
	server, cli := raftlockd(t), raftlockCLI(t)
	dir := t.TempDir()

	// Certificates, as examples/README.md makes them.
	readme, err := os.ReadFile(filepath.Join(root, "examples", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	sans := regexp.MustCompile(`SANS='([^']+)'`).FindSubmatch(readme)
	if sans == nil {
		t.Fatalf("examples/README.md: no SANS='…' line")
	}
	certs := filepath.Join(dir, "k8s-tls")
	mk := exec.Command("bash", filepath.Join(root, "examples", "tls-certs.sh"), certs)
	mk.Env = append(os.Environ(), "SANS="+string(sans[1]))
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("tls-certs.sh: %v\n%s", err, out)
	}
	rootToken := randomToken(t)
	file := func(name string) string { return filepath.Join(certs, name) }
	// The Secrets, as the kubectl lines of examples/README.md make them
	// (raftlock-client, the sidecar's, once its token exists).
	secrets := map[string]map[string]string{
		"raftlock-peer-tls":   {"ca.crt": file("peer-ca.crt"), "tls.crt": file("member1.crt"), "tls.key": file("member1.key")},
		"raftlock-client-tls": {"ca.crt": file("client-ca.crt"), "tls.crt": file("server1.crt"), "tls.key": file("server1.key")},
		"raftlock-auth":       {"token": writeTemp(t, dir, "root.token", rootToken)},
	}

	// The cluster's DNS: each member's stable name, and the client
	// Service's, resolve to the pod's address.
	podIP := func(i int) string { return fmt.Sprintf("127.0.0.%d", 11+i) }
	sidecarIP := "127.0.0.21"
	var hosts strings.Builder
	hosts.WriteString("127.0.0.1 localhost\n")
	addrs := map[string]string{} // host name → address, for the test's own dialer
	for i := 0; i < m.sts.Replicas; i++ {
		name := fmt.Sprintf("%s-%d.%s.%s.svc", m.stsMeta.Name, i, m.headlessMeta.Name, ns)
		fmt.Fprintf(&hosts, "%s %s %s.cluster.local\n", podIP(i), name, name)
		addrs[name] = podIP(i)
	}
	for _, name := range []string{m.clientMeta.Name + "." + ns + ".svc", m.clientMeta.Name} {
		fmt.Fprintf(&hosts, "%s %s %s.cluster.local\n", podIP(0), name, name)
		addrs[name] = podIP(0)
	}
	hostsFile := writeTemp(t, dir, "hosts", hosts.String())

	// The members.
	type proc struct {
		name string
		cmd  *exec.Cmd
		log  *lockedBuf
		done chan struct{} // closed when the process has exited, err set
		err  error
	}
	var procs []*proc
	start := func(podName, ip string, pod k8sPodSpec, c k8sContainer, bin string) *proc {
		t.Helper()
		env, args := podArgs(t, c, podName, ns)
		if len(c.Command) > 0 {
			args = args[1:] // the image's path; bin is this tree's build
		}
		vols := podVolumes(t, filepath.Join(dir, podName), pod, secrets)
		rewrite := func(s string) string {
			s = strings.ReplaceAll(s, "0.0.0.0:", ip+":")
			mounts := slices.Clone(c.VolumeMounts)
			slices.SortFunc(mounts, func(a, b k8sMount) int { return len(b.MountPath) - len(a.MountPath) })
			for _, mt := range mounts {
				s = strings.ReplaceAll(s, mt.MountPath+"/", vols[mt.Name]+"/")
			}
			return s
		}
		var envList []string
		for k, v := range env {
			envList = append(envList, k+"="+rewrite(v))
		}
		for i := range args {
			args[i] = rewrite(args[i])
		}
		p := &proc{name: podName, log: &lockedBuf{}, done: make(chan struct{})}
		p.cmd = exec.Command("unshare", append([]string{"--uts", "--mount", "--", "sh", "-c",
			`hostname "$1" && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"`, "sh", podName, hostsFile, bin}, args...)...)
		p.cmd.Env = envList
		p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", podName, err)
		}
		go func() { p.err = p.cmd.Wait(); close(p.done) }()
		procs = append(procs, p)
		return p
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			for _, p := range procs {
				t.Logf("%s:\n%s", p.name, lastLines(p.log.String(), 30))
			}
		}
	})
	var members []*proc
	for i := 0; i < m.sts.Replicas; i++ {
		members = append(members, start(fmt.Sprintf("%s-%d", m.stsMeta.Name, i), podIP(i), m.sts.Template.Spec, m.c, server))
	}

	// The kubelet's probes: HTTPS to the pod IP, the certificate not
	// checked, no client certificate.
	kubelet := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	probe := func(url string) int {
		resp, err := kubelet.Get(url)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	clientPort := 0
	for _, p := range m.c.Ports {
		if p.Name == "client" {
			clientPort = p.ContainerPort
		}
	}
	for i, p := range members {
		await.True(t, 60*time.Second, p.name+" ready (readinessProbe /readyz)", func() bool {
			select {
			case <-p.done:
				t.Fatalf("%s exited: %v\n%s", p.name, p.err, lastLines(p.log.String(), 30))
			default:
			}
			return probe(fmt.Sprintf("https://%s:%d/readyz", podIP(i), clientPort)) == http.StatusOK
		})
		if code := probe(fmt.Sprintf("https://%s:%d/healthz", podIP(i), clientPort)); code != http.StatusOK {
			t.Errorf("%s livenessProbe /healthz: %d", p.name, code)
		}
	}

	// A client of the cluster: the client CA, root's token, the cluster's
	// names.
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(file("client-ca.crt"))
	if err != nil || !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("client-ca.crt: %v", err)
	}
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, _ := net.SplitHostPort(addr)
			if a, ok := addrs[host]; ok {
				addr = net.JoinHostPort(a, port)
			}
			return dialer.DialContext(ctx, network, addr)
		},
	}}
	var clusterID string
	for i, p := range members {
		url := fmt.Sprintf("https://%s-%d.%s.%s.svc:%d/v1/status", m.stsMeta.Name, i, m.headlessMeta.Name, ns, clientPort)
		r, err := request(hc, "GET", url, rootToken, nil)
		if err != nil || r.status != http.StatusOK {
			t.Fatalf("%s: GET %s: %v %v", p.name, url, r, err)
		}
		var st api.Status
		b, _ := json.Marshal(r.body)
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("%s status: %v", p.name, err)
		}
		if st.ID != uint64(i)+1 || len(st.Members) != m.sts.Replicas || st.Leader == 0 {
			t.Errorf("%s: member %d of %d members, leader %d; want member %d of %d (--id-from-hostname)", p.name, st.ID, len(st.Members), st.Leader, i+1, m.sts.Replicas)
		}
		if clusterID == "" {
			clusterID = st.ClusterID
		} else if st.ClusterID != clusterID {
			t.Errorf("%s: cluster %s, %s-0's is %s: one cluster", p.name, st.ClusterID, m.stsMeta.Name, clusterID)
		}
	}

	// The auth lines of examples/README.md, from a pod that sees the
	// cluster's names; the sidecar's endpoints.
	sidecarEnv, _ := podArgs(t, sc.c, "x", ns)
	raftlock := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("unshare", append([]string{"--mount", "--", "sh", "-c",
			`mount --bind "$1" /etc/hosts && shift && exec "$@"`, "sh", hostsFile, cli}, args...)...)
		cmd.Env = []string{"RAFTLOCK_ENDPOINTS=" + sidecarEnv["RAFTLOCK_ENDPOINTS"], "RAFTLOCK_CACERT=" + file("client-ca.crt"),
			"RAFTLOCK_AUTH_TOKEN_FILE=" + secrets["raftlock-auth"]["token"]}
		out, err := cmd.Output()
		if err != nil {
			msg := err.Error()
			if ee, ok := err.(*exec.ExitError); ok {
				msg += ": " + string(ee.Stderr)
			}
			t.Fatalf("raftlock %s: %s", strings.Join(args, " "), msg)
		}
		return string(out)
	}
	raftlock("status")
	raftlock("auth", "role", "add", "web-elector", "--perm", "web=elect")
	raftlock("auth", "user", "add", "web", "--role", "web-elector")
	webToken := strings.TrimSpace(raftlock("auth", "token", "create", "web"))
	secrets["raftlock-client"] = map[string]string{"ca.crt": file("client-ca.crt"), "token": writeTemp(t, dir, "web.token", webToken)}

	// The sidecar leads election web as user web, and says so on its port.
	sidecarPod := sc.dMeta.Name + "-5d8c7b9f4-abcde"
	sp := start(sidecarPod, sidecarIP, sc.d.Template.Spec, sc.c, cli)
	_, sargs := podArgs(t, sc.c, sidecarPod, ns)
	_, sflags := k8sFlags(t, "sidecar", sargs[1:])
	_, port, _ := net.SplitHostPort(sflags["listen"])
	base := "http://" + net.JoinHostPort(sidecarIP, port)
	await.True(t, 30*time.Second, "the sidecar leads (readinessProbe /ready)", func() bool {
		select {
		case <-sp.done:
			t.Fatalf("sidecar exited: %v\n%s", sp.err, lastLines(sp.log.String(), 30))
		default:
		}
		return probe(base+"/ready") == http.StatusOK
	})
	r, err := request(http.DefaultClient, "GET", base+"/", "", nil)
	if err != nil || r.status != http.StatusOK || r.body["name"] != sidecarPod {
		t.Errorf("sidecar GET /: %v %v, want {\"name\":%q}", r, err, sidecarPod)
	}
	if code := probe(base + "/healthz"); code != http.StatusOK {
		t.Errorf("sidecar livenessProbe /healthz: %d", code)
	}

	// Every pod stops cleanly on SIGTERM, as on a deletion.
	for _, p := range procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		select {
		case <-p.done:
			if p.err != nil {
				t.Errorf("%s after SIGTERM: %v", p.name, p.err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s did not stop within 20s of SIGTERM", p.name)
		}
	}
}

// podVolumes makes the volumes of a pod as directories under dir and
// returns them by volume name: a Secret's files (secrets[secretName]: key
// → the file to copy) with its defaultMode, an emptyDir or a volume claim
// (every other name a mount uses) empty.
func podVolumes(t *testing.T, dir string, pod k8sPodSpec, secrets map[string]map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, c := range pod.Containers {
		for _, mt := range c.VolumeMounts {
			out[mt.Name] = filepath.Join(dir, mt.Name)
		}
	}
	for name, d := range out {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, v := range pod.Volumes {
			if v.Name != name || v.Secret == nil {
				continue
			}
			files, ok := secrets[v.Secret.SecretName]
			if !ok {
				t.Fatalf("volume %s: no Secret %s made", name, v.Secret.SecretName)
			}
			mode := os.FileMode(0o644)
			if v.Secret.DefaultMode != nil {
				mode = os.FileMode(*v.Secret.DefaultMode)
			}
			for key, src := range files {
				b, err := os.ReadFile(src)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(d, key), b, mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(d, key), mode); err != nil { // past the umask
					t.Fatal(err)
				}
			}
		}
	}
	return out
}

func randomToken(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// writeTemp writes content to dir/name (0600) and returns its path.
func writeTemp(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
