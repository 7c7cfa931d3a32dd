package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The Kubernetes examples (examples/kubernetes) cannot be applied here, so
// they are checked against what they rely on: every flag they pass exists in
// raftlockd and raftlock and parses (the binaries of this tree are run with
// exactly those arguments), the image is the one deploy/container/build.sh
// tags, and names, ports and URLs agree between the StatefulSet, its
// headless Service, the client Service and the sidecar Deployment.

// Just the fields of the Kubernetes objects that the checks read. YAML is
// read as Kubernetes reads it (sigs.k8s.io/yaml: YAML to JSON, then
// encoding/json).
type (
	k8sMeta struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	}
	k8sObject struct {
		Kind     string          `json:"kind"`
		Metadata k8sMeta         `json:"metadata"`
		Spec     json.RawMessage `json:"spec"`
	}
	k8sService struct {
		ClusterIP                string            `json:"clusterIP"`
		PublishNotReadyAddresses bool              `json:"publishNotReadyAddresses"`
		Selector                 map[string]string `json:"selector"`
		Ports                    []struct {
			Name       string `json:"name"`
			Port       int    `json:"port"`
			TargetPort any    `json:"targetPort"`
		} `json:"ports"`
	}
	k8sSelector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	}
	// k8sWorkload is a StatefulSet, a Deployment or a PodDisruptionBudget.
	k8sWorkload struct {
		ServiceName string      `json:"serviceName"`
		Replicas    int         `json:"replicas"`
		Selector    k8sSelector `json:"selector"`
		Template    struct {
			Metadata k8sMeta    `json:"metadata"`
			Spec     k8sPodSpec `json:"spec"`
		} `json:"template"`
		VolumeClaimTemplates []struct {
			Metadata k8sMeta `json:"metadata"`
		} `json:"volumeClaimTemplates"`
	}
	k8sPodSpec struct {
		SecurityContext struct {
			RunAsNonRoot *bool  `json:"runAsNonRoot"`
			RunAsUser    *int64 `json:"runAsUser"`
			FSGroup      *int64 `json:"fsGroup"`
		} `json:"securityContext"`
		Containers []k8sContainer `json:"containers"`
		Volumes    []struct {
			Name   string `json:"name"`
			Secret *struct {
				SecretName  string `json:"secretName"`
				DefaultMode *int   `json:"defaultMode"`
			} `json:"secret"`
			EmptyDir *struct{} `json:"emptyDir"`
		} `json:"volumes"`
	}
	k8sContainer struct {
		Name    string   `json:"name"`
		Image   string   `json:"image"`
		Command []string `json:"command"`
		Args    []string `json:"args"`
		Env     []struct {
			Name      string `json:"name"`
			Value     string `json:"value"`
			ValueFrom *struct {
				FieldRef *struct {
					FieldPath string `json:"fieldPath"`
				} `json:"fieldRef"`
			} `json:"valueFrom"`
		} `json:"env"`
		Ports []struct {
			Name          string `json:"name"`
			ContainerPort int    `json:"containerPort"`
		} `json:"ports"`
		ReadinessProbe  *k8sProbe  `json:"readinessProbe"`
		LivenessProbe   *k8sProbe  `json:"livenessProbe"`
		VolumeMounts    []k8sMount `json:"volumeMounts"`
		SecurityContext *struct {
			RunAsNonRoot *bool `json:"runAsNonRoot"`
		} `json:"securityContext"`
	}
	k8sMount struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
		ReadOnly  bool   `json:"readOnly"`
	}
	k8sProbe struct {
		HTTPGet *struct {
			Path   string `json:"path"`
			Port   any    `json:"port"`
			Scheme string `json:"scheme"`
		} `json:"httpGet"`
	}
)

// k8sFile is the objects of one manifest file.
type k8sFile struct {
	name string
	objs []k8sObject
}

// loadK8s reads the YAML documents of examples/kubernetes/<name>.
func loadK8s(t *testing.T, name string) k8sFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "kubernetes", name))
	if err != nil {
		t.Fatal(err)
	}
	f := k8sFile{name: name}
	for i, doc := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(b), -1) {
		var o k8sObject
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("%s: document %d: %v", name, i+1, err)
		}
		if o.Kind == "" && o.Metadata.Name == "" {
			continue // comments only
		}
		if o.Kind == "" || o.Metadata.Name == "" {
			t.Fatalf("%s: document %d has no kind or no metadata.name", name, i+1)
		}
		f.objs = append(f.objs, o)
	}
	return f
}

// one decodes the spec of the only object of kind that satisfies match
// (nil: any) into spec, and returns its metadata.
func (f k8sFile) one(t *testing.T, kind string, match func(k8sObject) bool, spec any) k8sMeta {
	t.Helper()
	var found []k8sObject
	for _, o := range f.objs {
		if o.Kind == kind && (match == nil || match(o)) {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d matching objects of kind %s, want 1", f.name, len(found), kind)
	}
	if err := json.Unmarshal(found[0].Spec, spec); err != nil {
		t.Fatalf("%s: %s %s: %v", f.name, kind, found[0].Metadata.Name, err)
	}
	return found[0].Metadata
}

func isHeadless(o k8sObject) bool {
	var s k8sService
	return json.Unmarshal(o.Spec, &s) == nil && s.ClusterIP == "None"
}

// k8sExpand expands s as Kubernetes expands a container's command, args and
// env values: "$(NAME)" is the value of the container's variable NAME, "$$"
// is "$". Kubernetes leaves a reference to an unknown variable as it is,
// which is never what a manifest means: that is an error here.
func k8sExpand(s string, vars map[string]string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String(), nil
			}
			name := s[i+2 : i+2+end]
			v, ok := vars[name]
			if !ok {
				return "", fmt.Errorf("%q: $(%s) is not a variable of the container (Kubernetes would leave it as it is)", s, name)
			}
			b.WriteString(v)
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String(), nil
}

// podArgs returns a container's environment and its command and args
// expanded, in the pod podName of namespace ns (the only field references
// resolved are metadata.name and metadata.namespace).
func podArgs(t *testing.T, c k8sContainer, podName, ns string) (env map[string]string, args []string) {
	t.Helper()
	env = map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			env[e.Name] = podName
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			env[e.Name] = ns
		case e.ValueFrom != nil:
			t.Fatalf("container %s: env %s: only fieldRef metadata.name and metadata.namespace are modelled", c.Name, e.Name)
		default:
			v, err := k8sExpand(e.Value, env)
			if err != nil {
				t.Fatalf("container %s: env %s: %v", c.Name, e.Name, err)
			}
			env[e.Name] = v
		}
	}
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		v, err := k8sExpand(a, env)
		if err != nil {
			t.Fatalf("container %s: %v", c.Name, err)
		}
		args = append(args, v)
	}
	return env, args
}

// k8sFlags splits arguments into the positional ones before the first flag
// (a subcommand) and flags. The manifests write every flag as --name=value
// (a bare --name is a boolean, "true"), so that this needs no knowledge of
// which flags take a value; a positional argument after a flag is refused.
func k8sFlags(t *testing.T, who string, args []string) (pos []string, flags map[string]string) {
	t.Helper()
	flags = map[string]string{}
	for _, a := range args {
		name, ok := strings.CutPrefix(a, "--")
		if !ok {
			if len(flags) > 0 {
				t.Fatalf("%s: %q after a flag: write every flag as --name=value", who, a)
			}
			pos = append(pos, a)
			continue
		}
		name, value, hasValue := strings.Cut(name, "=")
		if !hasValue {
			value = "true"
		}
		if _, dup := flags[name]; dup {
			t.Fatalf("%s: --%s given twice", who, name)
		}
		flags[name] = value
	}
	return pos, flags
}

// containerPort resolves a probe's or a Service's target port (a name or a
// number) to a port of container c; 0 if it names none.
func containerPort(c k8sContainer, port any) int {
	for _, p := range c.Ports {
		switch v := port.(type) {
		case string:
			if p.Name == v {
				return p.ContainerPort
			}
		case float64:
			if float64(p.ContainerPort) == v {
				return p.ContainerPort
			}
		}
	}
	return 0
}

// mountOf returns the mount of c whose directory holds file, and the pod's
// volume mounted there.
func mountOf(pod k8sPodSpec, c k8sContainer, file string) (mountPath string, readOnly bool, volume string, secretMode *int, isSecret, isEmptyDir bool) {
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(path.Clean(file), path.Clean(m.MountPath)+"/") {
			for _, v := range pod.Volumes {
				if v.Name == m.Name {
					if v.Secret != nil {
						return m.MountPath, m.ReadOnly, m.Name, v.Secret.DefaultMode, true, false
					}
					return m.MountPath, m.ReadOnly, m.Name, nil, false, v.EmptyDir != nil
				}
			}
			return m.MountPath, m.ReadOnly, m.Name, nil, false, false
		}
	}
	return "", false, "", nil, false, false
}

// subset reports whether every label of sel is in labels (and sel is not
// empty: an empty selector selects everything).
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// urlParts parses scheme://host:port.
func urlParts(t *testing.T, what, raw string) (scheme, host string, port int) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Port() == "" {
		t.Fatalf("%s %q: want scheme://host:port (%v)", what, raw, err)
	}
	port, _ = strconv.Atoi(u.Port())
	return u.Scheme, u.Hostname(), port
}

// helpFlags returns the flag names that "raftlockd --help" lists.
func helpFlags(t *testing.T, bin string) map[string]bool {
	t.Helper()
	out, _ := exec.Command(bin, "--help").CombinedOutput()
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		names[m[1]] = true
	}
	if !names["listen-client"] {
		t.Fatalf("raftlockd --help lists no -listen-client:\n%s", out)
	}
	return names
}

// k8sMembers is what raftlockd.yaml declares.
type k8sMembers struct {
	file                              k8sFile
	sts, pdb                          k8sWorkload
	stsMeta, headlessMeta, clientMeta k8sMeta
	headless, client                  k8sService
	c                                 k8sContainer // raftlockd's
}

// raftlockdManifest reads raftlockd.yaml: its StatefulSet and the raftlockd
// container, the headless and the client Service, the disruption budget.
func raftlockdManifest(t *testing.T) k8sMembers {
	t.Helper()
	m := k8sMembers{file: loadK8s(t, "raftlockd.yaml")}
	m.stsMeta = m.file.one(t, "StatefulSet", nil, &m.sts)
	m.headlessMeta = m.file.one(t, "Service", isHeadless, &m.headless)
	m.clientMeta = m.file.one(t, "Service", func(o k8sObject) bool { return !isHeadless(o) }, &m.client)
	m.file.one(t, "PodDisruptionBudget", nil, &m.pdb)
	for _, c := range m.sts.Template.Spec.Containers {
		if c.Name == "raftlockd" {
			m.c = c
		}
	}
	if m.c.Name == "" {
		t.Fatalf("%s: StatefulSet %s has no container raftlockd", m.file.name, m.stsMeta.Name)
	}
	return m
}

// k8sSidecar is what leader-sidecar.yaml declares.
type k8sSidecar struct {
	file           k8sFile
	d              k8sWorkload
	dMeta, svcMeta k8sMeta
	svc            k8sService
	c              k8sContainer // the container of raftlock's image
}

// sidecarManifest reads leader-sidecar.yaml: its Deployment and Service,
// and the one container that runs image.
func sidecarManifest(t *testing.T, image string) k8sSidecar {
	t.Helper()
	s := k8sSidecar{file: loadK8s(t, "leader-sidecar.yaml")}
	s.dMeta = s.file.one(t, "Deployment", nil, &s.d)
	s.svcMeta = s.file.one(t, "Service", nil, &s.svc)
	for _, c := range s.d.Template.Spec.Containers {
		if c.Image == image {
			if s.c.Name != "" {
				t.Fatalf("%s: two containers of image %s", s.file.name, image)
			}
			s.c = c
		}
	}
	if s.c.Name == "" {
		t.Fatalf("%s: no container of image %s (what %s/build.sh tags)", s.file.name, image, containerDir)
	}
	return s
}

func TestKubernetesManifests(t *testing.T) {
	image := buildScriptImage(t)
	m := raftlockdManifest(t)
	f, sts, stsMeta, pdb := m.file, m.sts, m.stsMeta, m.pdb
	headless, headlessMeta, clientSvc, clientMeta := m.headless, m.headlessMeta, m.client, m.clientMeta

	ns := stsMeta.Namespace
	if ns == "" {
		t.Fatalf("StatefulSet %s has no namespace: the member names depend on it", stsMeta.Name)
	}
	for _, o := range f.objs {
		if o.Metadata.Namespace != ns {
			t.Errorf("%s %s: namespace %q, want %q as the StatefulSet's", o.Kind, o.Metadata.Name, o.Metadata.Namespace, ns)
		}
	}

	// Names and selectors.
	pod := sts.Template.Spec
	labels := sts.Template.Metadata.Labels
	if sts.ServiceName != headlessMeta.Name {
		t.Errorf("StatefulSet serviceName %q, want the headless Service %q", sts.ServiceName, headlessMeta.Name)
	}
	if !headless.PublishNotReadyAddresses {
		t.Errorf("headless Service: publishNotReadyAddresses must be true: members reach each other before they are Ready")
	}
	for what, sel := range map[string]map[string]string{
		"StatefulSet selector": sts.Selector.MatchLabels,
		"headless Service":     headless.Selector,
		"client Service":       clientSvc.Selector,
		"PodDisruptionBudget":  pdb.Selector.MatchLabels,
	} {
		if !subset(sel, labels) {
			t.Errorf("%s selects %v, not the StatefulSet's pods (labels %v)", what, sel, labels)
		}
	}
	if sts.Replicas < 3 || sts.Replicas%2 == 0 {
		t.Errorf("replicas %d: want an odd number of at least 3", sts.Replicas)
	}

	// The container: the image of build.sh, its entrypoint, a user that is
	// not root.
	c := m.c
	if c.Image != image {
		t.Errorf("image %q, want %q (what %s/build.sh tags)", c.Image, image, containerDir)
	}
	if len(c.Command) != 0 && !slices.Equal(c.Command, []string{imageServer}) {
		t.Errorf("command %q: the image has no shell; leave the entrypoint (%s)", c.Command, imageServer)
	}
	sc := pod.SecurityContext
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != imageUID || sc.FSGroup == nil {
		t.Errorf("pod securityContext: want runAsNonRoot, runAsUser %d (the image's user) and an fsGroup (the data volume and 0440 secrets)", imageUID)
	}
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["client"] == 0 || ports["peer"] == 0 {
		t.Fatalf("container ports %v: want client and peer", ports)
	}

	// Services' ports reach the container's.
	for _, s := range []struct {
		name string
		svc  k8sService
		want []string
	}{{headlessMeta.Name, headless, []string{"client", "peer"}}, {clientMeta.Name, clientSvc, []string{"client"}}} {
		var got []string
		for _, p := range s.svc.Ports {
			target := p.TargetPort
			if target == nil {
				target = float64(p.Port)
			}
			if cp := containerPort(c, target); cp == 0 || cp != ports[p.Name] {
				t.Errorf("Service %s port %s (%d → %v) does not reach container port %s (%d)", s.name, p.Name, p.Port, target, p.Name, ports[p.Name])
			}
			if s.svc.ClusterIP == "None" && p.Port != ports[p.Name] {
				t.Errorf("headless Service %s port %s is %d: a headless name resolves to the pod, so it must be the container port %d", s.name, p.Name, p.Port, ports[p.Name])
			}
			got = append(got, p.Name)
		}
		if !slices.Equal(got, s.want) {
			t.Errorf("Service %s ports %q, want %q", s.name, got, s.want)
		}
	}

	// The flags of every pod: all pods take the same arguments, and the
	// pod's own name makes them its own.
	bin := raftlockd(t)
	known := helpFlags(t, bin)
	claims := map[string]bool{}
	for _, v := range sts.VolumeClaimTemplates {
		claims[v.Metadata.Name] = true
	}
	memberHost := func(i int) string { return fmt.Sprintf("%s-%d.%s.%s.svc", stsMeta.Name, i, headlessMeta.Name, ns) }
	var initial string
	advertisedPeers := map[uint64]string{}
	for i := 0; i < sts.Replicas; i++ {
		podName := fmt.Sprintf("%s-%d", stsMeta.Name, i)
		env, args := podArgs(t, c, podName, ns)
		if len(c.Command) != 0 {
			args = args[1:]
		}
		who := fmt.Sprintf("pod %s", podName)
		pos, flags := k8sFlags(t, who, args)
		if len(pos) > 0 {
			t.Fatalf("%s: positional arguments %q: raftlockd takes none", who, pos)
		}
		for name := range env {
			if flag, ok := strings.CutPrefix(name, "RAFTLOCK_"); ok {
				flag = strings.ReplaceAll(strings.ToLower(flag), "_", "-")
				if !known[flag] {
					t.Errorf("%s: env %s: raftlockd has no flag --%s", who, name, flag)
				}
				if _, dup := flags[flag]; !dup {
					flags[flag] = env[name]
				}
			}
		}

		// Every flag exists and parses: raftlockd parses them all before
		// it looks at --version.
		run := exec.Command(bin, append(slices.Clone(args), "--version")...)
		run.Env = []string{}
		if out, err := run.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "raftlockd ") {
			t.Fatalf("%s: raftlockd %s --version: %v\n%s", who, strings.Join(args, " "), err, out)
		}

		// Member ID from the host name, never as well as --id.
		if flags["id-from-hostname"] != "true" {
			t.Errorf("%s: no --id-from-hostname: the image has no shell to compute --id", who)
		}
		if _, ok := flags["id"]; ok {
			t.Errorf("%s: --id: every pod takes the same arguments, so the ID comes from --id-from-hostname (raftlockd refuses both)", who)
		}
		id := uint64(i) + 1 // --id-from-hostname of podName (cmd/raftlockd/hostname_test.go)

		// Listen, advertise: TLS on both ports, on the container ports,
		// advertised under the pod's stable name.
		tlsOn := map[string]bool{"client": flags["cert-file"] != "", "peer": flags["peer-cert-file"] != ""}
		for _, kind := range []string{"client", "peer"} {
			if !tlsOn[kind] {
				t.Errorf("%s: no TLS on the %s port (the example keeps the security issue's TLS)", who, kind)
			}
			scheme, host, port := urlParts(t, "--listen-"+kind, flags["listen-"+kind])
			if scheme != "https" || port != ports[kind] || (host != "0.0.0.0" && host != "" && host != "::") {
				t.Errorf("%s: --listen-%s %s: want https://0.0.0.0:%d (all addresses, the container port)", who, kind, flags["listen-"+kind], ports[kind])
			}
			want := fmt.Sprintf("https://%s-%d.%s.%s.svc:%d", stsMeta.Name, i, headlessMeta.Name, ns, ports[kind])
			if got := flags["advertise-"+kind]; got != want {
				t.Errorf("%s: --advertise-%s %q, want %q (its name under the headless Service)", who, kind, got, want)
			}
		}
		advertisedPeers[id] = flags["advertise-peer"]
		if initial == "" {
			initial = flags["initial-cluster"]
		} else if flags["initial-cluster"] != initial {
			t.Errorf("%s: --initial-cluster differs between pods", who)
		}

		// Clients name the client Service: its names are allowed hosts.
		allowed := strings.Split(flags["allowed-hosts"], ",")
		for _, h := range []string{clientMeta.Name, clientMeta.Name + "." + ns + ".svc", clientMeta.Name + "." + ns + ".svc.cluster.local"} {
			if !slices.Contains(allowed, h) {
				t.Errorf("%s: --allowed-hosts %q lacks %s, a name of the client Service", who, allowed, h)
			}
		}

		// Files come from the pod's volumes: certificates, keys and the
		// token from read-only Secrets (the token not readable by others:
		// raftlockd refuses it then), the data from the claim.
		for name, v := range flags {
			if !strings.HasSuffix(name, "-file") {
				continue
			}
			mount, ro, vol, mode, secret, _ := mountOf(pod, c, v)
			if mount == "" || !ro || !secret {
				t.Errorf("%s: --%s %s is not in a read-only Secret volume (mount %q, volume %q)", who, name, v, mount, vol)
			}
			if name == "auth-bootstrap-token-file" && (mode == nil || *mode&0o007 != 0) {
				t.Errorf("%s: --%s %s: its Secret's defaultMode must give others nothing (raftlockd refuses the file)", who, name, v)
			}
		}
		mount, ro, vol, _, _, _ := mountOf(pod, c, flags["data-dir"])
		if mount == "" || ro || !claims[vol] {
			t.Errorf("%s: --data-dir %s is not below a volumeClaimTemplate's mount (mount %q, volume %q)", who, flags["data-dir"], mount, vol)
		}
	}

	// --initial-cluster names every member, ID i+1 for pod i, by the URL
	// that member advertises.
	members := map[uint64]string{}
	for _, part := range strings.Split(initial, ",") {
		idStr, u, ok := strings.Cut(part, "=")
		id, err := strconv.ParseUint(idStr, 10, 64)
		if !ok || err != nil {
			t.Fatalf("--initial-cluster %q: %q is not ID=URL", initial, part)
		}
		members[id] = u
	}
	if !maps.Equal(members, advertisedPeers) {
		t.Errorf("--initial-cluster %q: want every pod's ID and --advertise-peer, %v", initial, advertisedPeers)
	}
	if len(members) != sts.Replicas {
		t.Errorf("--initial-cluster has %d members, replicas %d", len(members), sts.Replicas)
	}

	// Probes: /readyz for readiness, /healthz for liveness, on the client
	// port with its scheme.
	for _, p := range []struct {
		what, path string
		probe      *k8sProbe
	}{{"readinessProbe", "/readyz", c.ReadinessProbe}, {"livenessProbe", "/healthz", c.LivenessProbe}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet of %s", p.what, p.path)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path || containerPort(c, g.Port) != ports["client"] || g.Scheme != "HTTPS" {
			t.Errorf("%s: %s on %v over %q, want %s on the client port over HTTPS", p.what, g.Path, g.Port, g.Scheme, p.path)
		}
	}

	checkSidecarManifest(t, image, ns, memberHost, sts.Replicas, ports["client"], clientMeta.Name)
}

// checkSidecarManifest checks leader-sidecar.yaml against the cluster of
// raftlockd.yaml: the image, the CLI's flags and environment, the
// endpoints, the probes and the sidecar's port.
func checkSidecarManifest(t *testing.T, image, ns string, memberHost func(int) string, replicas, clientPort int, clientSvc string) {
	sm := sidecarManifest(t, image)
	d, dMeta, svc, svcMeta, c := sm.d, sm.dMeta, sm.svc, sm.svcMeta, sm.c
	labels := d.Template.Metadata.Labels
	if !subset(d.Selector.MatchLabels, labels) || !subset(svc.Selector, labels) {
		t.Errorf("Deployment %s (labels %v): selector %v, Service %s selector %v", dMeta.Name, labels, d.Selector.MatchLabels, svcMeta.Name, svc.Selector)
	}
	pod := d.Template.Spec
	if !slices.Equal(c.Command, []string{imageCLI}) {
		t.Errorf("sidecar command %q, want [%s]: the image's entrypoint is raftlockd", c.Command, imageCLI)
	}
	if c.SecurityContext == nil || c.SecurityContext.RunAsNonRoot == nil || !*c.SecurityContext.RunAsNonRoot {
		t.Errorf("sidecar: want securityContext.runAsNonRoot (the image's user is %d)", imageUID)
	}
	podName := dMeta.Name + "-7d9f8b6c5-x2x4z"
	env, args := podArgs(t, c, podName, ns)
	args = args[1:] // the command
	pos, flags := k8sFlags(t, "sidecar", args)
	if !slices.Equal(pos, []string{"sidecar"}) {
		t.Fatalf("sidecar args start %q, want the command sidecar", pos)
	}

	// Every flag exists and parses, and every RAFTLOCK_ variable is one the
	// CLI reads.
	cli := raftlockCLI(t)
	run := exec.Command(cli, append(slices.Clone(args), "--help")...)
	run.Env = []string{}
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("raftlock %s --help: %v\n%s", strings.Join(args, " "), err, out)
	}
	for name := range env {
		if strings.HasPrefix(name, "RAFTLOCK_") && !strings.Contains(string(out), "$"+name) {
			t.Errorf("sidecar env %s: raftlock sidecar --help names no such variable", name)
		}
	}
	if flags["id"] != podName {
		t.Errorf("--id %q, want the pod's name", flags["id"])
	}

	// The endpoints are the members (every one) or the client Service, on
	// the client port over https (the cluster's client port has TLS).
	var named []string
	for _, e := range strings.Split(env["RAFTLOCK_ENDPOINTS"], ",") {
		scheme, host, port := urlParts(t, "RAFTLOCK_ENDPOINTS", e)
		if scheme != "https" || port != clientPort {
			t.Errorf("endpoint %s: want https on port %d", e, clientPort)
		}
		host = strings.TrimSuffix(host, ".cluster.local")
		if host != clientSvc+"."+ns+".svc" {
			named = append(named, host)
		}
	}
	var all []string
	for i := 0; i < replicas; i++ {
		all = append(all, memberHost(i))
	}
	if len(named) > 0 && !slices.Equal(named, all) {
		t.Errorf("endpoints name members %q, want all of %q (or the Service %s.%s.svc)", named, all, clientSvc, ns)
	}

	// Files: the CA and the token from a read-only Secret the sidecar's
	// user can read (fsGroup when the mode gives others nothing), the
	// status file in a shared, writable emptyDir.
	for _, name := range []string{"RAFTLOCK_CACERT", "RAFTLOCK_AUTH_TOKEN_FILE"} {
		file := env[name]
		mount, ro, vol, mode, secret, _ := mountOf(pod, c, file)
		if file == "" || mount == "" || !ro || !secret {
			t.Errorf("sidecar %s %q is not in a read-only Secret volume (mount %q, volume %q)", name, file, mount, vol)
		}
		if mode != nil && *mode&0o004 == 0 && pod.SecurityContext.FSGroup == nil {
			t.Errorf("sidecar %s: Secret %s's mode %#o gives others nothing and the pod sets no fsGroup: user %d cannot read it", name, vol, *mode, imageUID)
		}
	}
	if mount, ro, vol, _, _, emptyDir := mountOf(pod, c, flags["status-file"]); mount == "" || ro || !emptyDir {
		t.Errorf("--status-file %s is not in a writable emptyDir (mount %q, volume %q)", flags["status-file"], mount, vol)
	}

	// The kubelet probes the sidecar's port from outside the pod.
	host, portStr, _ := strings.Cut(flags["listen"], ":")
	port, _ := strconv.Atoi(portStr)
	if host != "0.0.0.0" && host != "" {
		t.Errorf("--listen %s: the kubelet probes from outside the pod: listen on 0.0.0.0", flags["listen"])
	}
	for _, p := range []struct {
		what, path string
		probe      *k8sProbe
	}{{"readinessProbe", "/ready", c.ReadinessProbe}, {"livenessProbe", "/healthz", c.LivenessProbe}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("sidecar %s: want an httpGet of %s", p.what, p.path)
			continue
		}
		if g := p.probe.HTTPGet; g.Path != p.path || containerPort(c, g.Port) != port {
			t.Errorf("sidecar %s: %s on %v, want %s on --listen's port %d", p.what, g.Path, g.Port, p.path, port)
		}
	}
}

func TestK8sExpand(t *testing.T) {
	vars := map[string]string{"POD_NAME": "raftlock-1"}
	for in, want := range map[string]string{
		"https://$(POD_NAME).raftlock:7070": "https://raftlock-1.raftlock:7070",
		"$$(POD_NAME) $$HOME $HOME":         "$(POD_NAME) $HOME $HOME",
		"$(unclosed":                        "$(unclosed",
		"$":                                 "$",
	} {
		if got, err := k8sExpand(in, vars); err != nil || got != want {
			t.Errorf("k8sExpand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := k8sExpand("$(POD_NAMESPACE)", vars); err == nil {
		t.Errorf("an unknown variable expanded")
	}
}
