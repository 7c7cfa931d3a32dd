package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/format"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The README is checked against the code it describes: its Go blocks are
// complete programs that compile against this tree, and its curl
// walk-throughs are replayed against a real raftlockd, answer by answer.

// fence is a fenced code block of a Markdown file.
type fence struct {
	lang  string
	line  int      // line number of the first line of the block's text (1-based)
	lines []string // the block's text
}

// repoRoot returns the module's root directory: go test runs each package
// in its own directory, and e2e is one level below the root.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod in %s: %v", root, err)
	}
	return root
}

// readmeFences returns the fenced blocks of the README.
func readmeFences(t *testing.T) []fence {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []fence
	var cur *fence
	for i, l := range strings.Split(string(b), "\n") {
		switch {
		case cur == nil && strings.HasPrefix(l, "```"):
			cur = &fence{lang: strings.TrimSpace(strings.TrimPrefix(l, "```")), line: i + 2}
		case cur != nil && strings.TrimSpace(l) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.lines = append(cur.lines, l)
		}
	}
	if cur != nil {
		t.Fatalf("README.md:%d: the code block is not closed", cur.line-1)
	}
	return out
}

// fenceAfter returns the first block of language lang after the heading
// line heading.
func fenceAfter(t *testing.T, heading, lang string) fence {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	at := slices.Index(strings.Split(string(b), "\n"), heading)
	if at < 0 {
		t.Fatalf("README.md has no heading %q", heading)
	}
	for _, f := range readmeFences(t) {
		if f.line > at && f.lang == lang {
			return f
		}
	}
	t.Fatalf("README.md: no %s block after %q", lang, heading)
	return fence{}
}

var vetLineRE = regexp.MustCompile(`(?:\./)?block(\d+)/main\.go:(\d+)(?::\d+)?`)

// Every ```go block of the README is a complete, gofmt'ed program that
// compiles (go vet) against this tree, as a reader who pastes it into a
// main.go of their own module would build it.
func TestReadmeGoBlocksCompile(t *testing.T) {
	root := repoRoot(t)
	var blocks []fence
	for _, f := range readmeFences(t) {
		if f.lang == "go" {
			blocks = append(blocks, f)
		}
	}
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```go block")
	}
	dir := t.TempDir()
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	// The repository's go version and requirements, and the repository
	// itself in place of its module.
	mod := regexp.MustCompile(`(?m)^module .*$`).ReplaceAllString(string(gomod), "module readme.example/blocks")
	mod += fmt.Sprintf("\nrequire github.com/raftlock/raftlock v0.0.0\n\nreplace github.com/raftlock/raftlock => %s\n", root)
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", []byte(mod))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write("go.sum", sum)
	for i, f := range blocks {
		src := strings.Join(f.lines, "\n") + "\n"
		if !strings.HasPrefix(strings.TrimSpace(src), "package ") {
			t.Errorf("README.md:%d: the Go block is not a complete program: it has no package clause", f.line)
		} else if formatted, err := format.Source([]byte(src)); err == nil && string(formatted) != src {
			t.Errorf("README.md:%d: the Go block is not gofmt'ed; gofmt gives:\n%s", f.line, formatted)
		}
		write(fmt.Sprintf("block%d/main.go", i), []byte(src))
	}
	cmd := exec.Command("go", "vet", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		// Name README lines instead of the scratch files.
		msg := vetLineRE.ReplaceAllStringFunc(string(out), func(s string) string {
			m := vetLineRE.FindStringSubmatch(s)
			i, _ := strconv.Atoi(m[1])
			n, _ := strconv.Atoi(m[2])
			return fmt.Sprintf("README.md:%d", blocks[i].line+n-1)
		})
		t.Errorf("the README's Go blocks do not compile (go vet: %v):\n%s", err, msg)
	}
}

// The walk-through with curl is replayed against a real single-node
// raftlockd: each curl command is sent as curl sends it, and each answer is
// compared with the README's, field by field; IDs, tokens, times and log
// indexes may differ, but consistently (see walk.commit).
func TestReadmeCurlWalkThrough(t *testing.T) {
	f := fenceAfter(t, "## A walk-through with curl", "console")
	c := startCluster(t, 1)
	c.leader(c.members...)
	w := newWalk(t, f)
	w.serve(c.members[0])
	w.run()
}

// The walk-through of semaphores and read-write locks: permits, the
// limit, a waiter granted on release, shared holders, a writer that waits
// for them and a reader that may not overtake it.
func TestReadmePrimitivesCurlWalkThrough(t *testing.T) {
	f := fenceAfter(t, "### Semaphores and read-write locks", "console")
	c := startCluster(t, 1)
	c.leader(c.members...)
	w := newWalk(t, f)
	w.serve(c.members[0])
	w.run()
}

// The auth walk-through with curl: the bootstrap token file, raftlockd
// started with it, users, roles and tokens, the refusals, the force-release
// in the watch and the revoked token.
func TestReadmeAuthCurlWalkThrough(t *testing.T) {
	f := fenceAfter(t, "#### Walk-through with curl", "console")
	w := newWalk(t, f)
	w.run()
}

// walk replays a console block of the README.
type walk struct {
	t     *testing.T
	f     fence
	dir   string            // the working directory of the shell lines
	vars  map[string]string // shell variables set by the block
	m     *member           // the server
	hc    *http.Client
	bg    []*pending        // background commands not yet answered
	index []pair            // log indexes: the README's and the real ones
	strs  map[string]string // secrets: the README's and the real ones
}

// pair is a log index of the README (an ID, a token, a term, a revision,
// commit) and the index the server gave in its place.
type pair struct {
	readme, real uint64
	key          string // the field
	line         int    // the README's line
}

// pending is a curl command run in the background (&).
type pending struct {
	line int
	done chan struct{}
	body []byte
	err  error
}

func newWalk(t *testing.T, f fence) *walk {
	return &walk{t: t, f: f, dir: t.TempDir(), vars: map[string]string{}, strs: map[string]string{},
		hc: &http.Client{Timeout: 30 * time.Second}}
}

// serve makes m the server that localhost:7070 (and every README port)
// stands for.
func (w *walk) serve(m *member) { w.m = m }

// step is one command of the block and the lines it printed.
type step struct {
	line int
	cmd  string
	out  []outLine
}

type outLine struct {
	line int
	text string
}

func (w *walk) steps() []step {
	var steps []step
	for i, l := range w.f.lines {
		n := w.f.line + i
		switch {
		case strings.HasPrefix(l, "$ "):
			steps = append(steps, step{line: n, cmd: strings.TrimPrefix(l, "$ ")})
		case strings.TrimSpace(l) == "":
		case len(steps) == 0:
			w.t.Fatalf("README.md:%d: output before the first command", n)
		default:
			s := &steps[len(steps)-1]
			s.out = append(s.out, outLine{n, l})
		}
	}
	return steps
}

func (w *walk) run() {
	for _, s := range w.steps() {
		w.step(s)
	}
	for _, p := range w.bg {
		w.t.Errorf("README.md:%d: the background command's answer is never shown", p.line)
	}
	var b strings.Builder
	for _, p := range w.index {
		fmt.Fprintf(&b, " %s %d→%d", p.key, p.readme, p.real)
	}
	w.t.Logf("log indexes, README→server:%s", b.String())
}

var assignRE = regexp.MustCompile(`^([A-Z_][A-Z0-9_]*)=(.*)$`)

func (w *walk) step(s step) {
	t := w.t
	// The README's secrets stand for the server's.
	for r, a := range w.strs {
		s.cmd = strings.ReplaceAll(s.cmd, r, a)
	}
	words, bg, err := shellWords(s.cmd, w.expand)
	if err != nil || len(words) == 0 {
		t.Fatalf("README.md:%d: %q: %v", s.line, s.cmd, err)
	}
	if m := assignRE.FindStringSubmatch(s.cmd); m != nil && len(words) == 1 {
		w.vars[m[1]] = words[0][len(m[1])+1:]
		if len(s.out) > 0 {
			t.Fatalf("README.md:%d: an assignment prints nothing", s.line)
		}
		return
	}
	switch words[0] {
	case "curl":
		w.curl(s, words[1:], bg)
	case "raftlockd":
		w.raftlockd(s, words[1:], bg)
	default:
		if !strings.HasPrefix(s.cmd, "(") || len(s.out) > 0 {
			t.Fatalf("README.md:%d: the walk-through does not know how to replay %q", s.line, s.cmd)
		}
		// A subshell that prepares a file, e.g. the bootstrap token.
		cmd := exec.Command("sh", "-c", s.cmd)
		cmd.Dir = w.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("README.md:%d: %q: %v\n%s", s.line, s.cmd, err, out)
		}
	}
}

// raftlockd starts the server with the README's flags (file names relative
// to the walk's directory) and the test's addresses.
func (w *walk) raftlockd(s step, args []string, bg bool) {
	t := w.t
	if !bg || len(s.out) > 0 || w.m != nil {
		t.Fatalf("README.md:%d: expected one raftlockd started in the background", s.line)
	}
	for i, a := range args {
		if i > 0 && strings.HasSuffix(args[i-1], "-file") && !filepath.IsAbs(a) {
			args[i] = filepath.Join(w.dir, a)
		}
	}
	c := startClusterWith(t, 1, clusterOptions{args: func(*member) []string { return args }})
	awaitReady(t, c)
	w.m = c.members[0]
}

// expand replaces $NAME, ${NAME} and $(cat FILE) in s.
func (w *walk) expand(s string) string {
	s = regexp.MustCompile(`\$\(cat ([^)]+)\)`).ReplaceAllStringFunc(s, func(m string) string {
		name := strings.TrimSuffix(strings.TrimPrefix(m, "$(cat "), ")")
		b, err := os.ReadFile(filepath.Join(w.dir, name))
		if err != nil {
			w.t.Fatalf("$(cat %s): %v", name, err)
		}
		return strings.TrimRight(string(b), "\n")
	})
	return regexp.MustCompile(`\$\{?([A-Z_][A-Z0-9_]*)\}?`).ReplaceAllStringFunc(s, func(m string) string {
		name := strings.Trim(m, "${}")
		v, ok := w.vars[name]
		if !ok {
			w.t.Fatalf("$%s is not set", name)
		}
		return v
	})
}

// shellWords splits a command line as sh does for the simple lines of the
// README: quotes, $ expansion (by expand) outside single quotes, a trailing
// & and a comment.
func shellWords(s string, expand func(string) string) (words []string, bg bool, err error) {
	var word, raw strings.Builder // raw: text still to expand
	in := false                   // a word is being read
	quote := byte(0)
	flush := func() { word.WriteString(expand(raw.String())); raw.Reset() }
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote == '\'':
			if ch == '\'' {
				quote = 0
				continue
			}
			word.WriteByte(ch)
		case quote == '"':
			if ch == '"' {
				quote = 0
				continue
			}
			raw.WriteByte(ch)
		case ch == '\'':
			flush()
			quote, in = ch, true
		case ch == '"':
			quote, in = ch, true
		case ch == ' ' || ch == '\t':
			if in {
				flush()
				words = append(words, word.String())
				word.Reset()
				in = false
			}
		case ch == '#' && !in:
			i = len(s)
		case ch == '&' && !in:
			bg = true
		default:
			raw.WriteByte(ch)
			in = true
		}
	}
	if quote != 0 {
		return nil, false, fmt.Errorf("unterminated quote")
	}
	if in {
		flush()
		words = append(words, word.String())
	}
	return words, bg, nil
}

// curl sends the request of a curl command line as curl sends it, and
// compares the answer with the lines the README prints after it: the
// first is the command's answer, the next ones the answers of commands
// left in the background, in order. An answer of Server-Sent Events is
// read until the README's messages have come.
func (w *walk) curl(s step, args []string, bg bool) {
	t := w.t
	if w.m == nil {
		t.Fatalf("README.md:%d: curl before a server runs", s.line)
	}
	method, target := "", ""
	var body *string
	hdr := http.Header{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() string {
			if i+1 == len(args) {
				t.Fatalf("README.md:%d: %s needs a value", s.line, a)
			}
			i++
			return args[i]
		}
		switch {
		case a == "-s" || a == "-N":
		case a == "-X":
			method = next()
		case strings.HasPrefix(a, "-X"):
			method = a[2:]
		case a == "-d":
			d := w.mapBody(s.line, next())
			body = &d
		case a == "-H":
			k, v, ok := strings.Cut(next(), ":")
			if !ok {
				t.Fatalf("README.md:%d: header %q", s.line, args[i])
			}
			hdr.Add(k, strings.TrimSpace(v))
		case strings.HasPrefix(a, "-"):
			t.Fatalf("README.md:%d: the walk-through does not know curl's %s", s.line, a)
		case target != "":
			t.Fatalf("README.md:%d: two URLs", s.line)
		default:
			target = a
		}
	}
	u := w.mapURL(s.line, target)
	if method == "" {
		method = "GET"
		if body != nil {
			method = "POST"
		}
	}
	send := func(ctx context.Context) (*http.Response, error) {
		var rd io.Reader
		if body != nil {
			rd = strings.NewReader(*body)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = hdr.Clone()
		req.Header.Set("User-Agent", "curl/8.5.0")
		req.Header.Set("Accept", "*/*")
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded") // as curl -d
		}
		return w.hc.Do(req)
	}
	if bg {
		if len(s.out) > 0 {
			t.Fatalf("README.md:%d: a background command's answer comes with a later command", s.line)
		}
		p := &pending{line: s.line, done: make(chan struct{})}
		w.bg = append(w.bg, p)
		go func() {
			defer close(p.done)
			resp, err := send(context.Background())
			if err != nil {
				p.err = err
				return
			}
			defer resp.Body.Close()
			p.body, p.err = io.ReadAll(resp.Body)
		}()
		return
	}
	if len(s.out) == 0 {
		t.Fatalf("README.md:%d: the command's answer is not shown", s.line)
	}
	if isSSE(s.out[0].text) {
		w.stream(s, send)
		return
	}
	// A read may race with a background command that has not reached the
	// server yet: it is sent again (it changes nothing) until it matches.
	retry := method == "GET" && len(w.bg) > 0
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := send(context.Background())
		if err != nil {
			t.Fatalf("README.md:%d: %v", s.line, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("README.md:%d: %v", s.line, err)
		}
		errs := w.match(s.out[0], b)
		if len(errs) == 0 {
			break
		}
		if !retry || time.Now().After(deadline) {
			w.report(s.out[0], b, errs)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, o := range s.out[1:] {
		if len(w.bg) == 0 {
			t.Errorf("README.md:%d: an answer that no command gave: %s", o.line, o.text)
			continue
		}
		p := w.bg[0]
		w.bg = w.bg[1:]
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			t.Fatalf("README.md:%d: the background command of line %d did not answer within 20s", o.line, p.line)
		}
		if p.err != nil {
			t.Fatalf("README.md:%d: the background command of line %d: %v", o.line, p.line, p.err)
		}
		if errs := w.match(o, p.body); len(errs) > 0 {
			w.report(o, p.body, errs)
		}
	}
}

func isSSE(l string) bool {
	return strings.HasPrefix(l, "id: ") || strings.HasPrefix(l, "event: ") || strings.HasPrefix(l, "data: ")
}

// stream reads the Server-Sent Events the README shows (up to ^C) and
// compares them message by message.
func (w *walk) stream(s step, send func(context.Context) (*http.Response, error)) {
	t := w.t
	type msg struct {
		line            int
		id, event, data string
	}
	var want []msg
	cur := msg{}
	for _, o := range s.out {
		if o.text == "^C" {
			break
		}
		if cur.line == 0 {
			cur.line = o.line
		}
		field, value, _ := strings.Cut(o.text, ": ")
		switch field {
		case "id":
			if cur.id != "" {
				want, cur = append(want, cur), msg{line: o.line}
			}
			cur.id = value
		case "event":
			cur.event = value
		case "data":
			cur.data = value
			want, cur = append(want, cur), msg{}
		default:
			t.Fatalf("README.md:%d: not a Server-Sent Events line: %q", o.line, o.text)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := send(ctx)
	if err != nil {
		t.Fatalf("README.md:%d: %v", s.line, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for _, m := range want {
		got := msg{}
		for sc.Scan() {
			l := sc.Text()
			if l == "" && got.data != "" {
				break
			}
			field, value, _ := strings.Cut(l, ": ")
			switch field {
			case "id":
				got.id = value
			case "event":
				got.event = value
			case "data":
				got.data = value
			}
		}
		if got.data == "" {
			t.Fatalf("README.md:%d: the stream ended before this message (%v)", m.line, sc.Err())
		}
		var errs []string
		if got.event != m.event {
			errs = append(errs, fmt.Sprintf("event %q, README %q", got.event, m.event))
		}
		var pairs []pair
		if m.id != "" || got.id != "" {
			r, err1 := strconv.ParseUint(m.id, 10, 64)
			a, err2 := strconv.ParseUint(got.id, 10, 64)
			if err1 != nil || err2 != nil {
				errs = append(errs, fmt.Sprintf("id %q, README %q", got.id, m.id))
			} else {
				pairs = append(pairs, pair{readme: r, real: a, key: "id:", line: m.line})
			}
		}
		errs = append(errs, w.matchPairs(outLine{m.line, m.data}, []byte(got.data), pairs)...)
		if len(errs) > 0 {
			w.report(outLine{m.line, m.data}, []byte(got.data), errs)
		}
	}
}

// report fails the test for README line o, to which the server answered b.
func (w *walk) report(o outLine, b []byte, errs []string) {
	w.t.Errorf("README.md:%d: the server's answer differs:\n  README: %s\n  server: %s\n  %s",
		o.line, o.text, bytes.TrimSpace(b), strings.Join(errs, "\n  "))
}

// mapURL returns the URL of a curl command line: the server's address in
// place of the README's, and the server's indexes in place of the
// README's in the path and the query.
func (w *walk) mapURL(line int, target string) string {
	if !strings.Contains(target, "://") {
		target = "http://" + target
	}
	host, rest, _ := strings.Cut(strings.TrimPrefix(target, "http://"), "/")
	switch host {
	case "localhost:7070", "localhost:7080", "localhost:7090", "127.0.0.1:7070", "127.0.0.1:7080", "127.0.0.1:7090":
	default:
		w.t.Fatalf("README.md:%d: the walk-through does not know host %q", line, host)
	}
	path, query, _ := strings.Cut(rest, "?")
	segs := strings.Split(path, "/")
	for i, sg := range segs {
		if n, err := strconv.ParseUint(sg, 10, 64); err == nil {
			segs[i] = strconv.FormatUint(w.realIndex(line, n), 10)
		}
	}
	u := strings.TrimSuffix(w.m.clientURL, "/") + "/" + strings.Join(segs, "/")
	if query != "" {
		parts := strings.Split(query, "&")
		for i, p := range parts {
			k, v, _ := strings.Cut(p, "=")
			if n, err := strconv.ParseUint(v, 10, 64); err == nil && k == "after" {
				parts[i] = k + "=" + strconv.FormatUint(w.realIndex(line, n), 10)
			}
		}
		u += "?" + strings.Join(parts, "&")
	}
	return u
}

// mapBody returns a request body with the server's indexes in place of
// the README's.
func (w *walk) mapBody(line int, body string) string {
	var v map[string]any
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return body // not JSON: sent as it is
	}
	changed := false
	for k, x := range v {
		if !indexKeys[k] {
			continue
		}
		switch x := x.(type) {
		case string:
			if n, err := strconv.ParseUint(x, 10, 64); err == nil {
				v[k] = strconv.FormatUint(w.realIndex(line, n), 10)
				changed = true
			}
		case json.Number:
			if n, err := strconv.ParseUint(string(x), 10, 64); err == nil {
				v[k] = w.realIndex(line, n)
				changed = true
			}
		}
	}
	if !changed {
		return body
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// realIndex returns the server's index for the README's index r, which an
// earlier answer must have shown.
func (w *walk) realIndex(line int, r uint64) uint64 {
	for _, p := range w.index {
		if p.readme == r {
			return p.real
		}
	}
	w.t.Fatalf("README.md:%d: %d is used before an answer gave it", line, r)
	return 0
}

// indexKeys are the fields whose values are log indexes (as strings: IDs;
// as numbers: tokens, terms, revisions). They differ from run to run, but
// consistently: the same index of the README is the same index of the
// server, and they are in the same order.
var indexKeys = map[string]bool{"id": true, "session": true, "token": true, "term": true, "commit": true, "applied": true, "revision": true}

// timeKeys are RFC 3339 times; counterKeys are numbers that vary
// otherwise (a member's progress is refreshed every tick, so its match
// may lag the commit index); opaqueKeys are strings that differ from
// cluster to cluster.
var (
	timeKeys    = map[string]bool{"since": true, "time": true, "deadline": true}
	counterKeys = map[string]bool{"read_index_requests": true, "read_index_retries": true, "match": true}
	opaqueKeys  = map[string]bool{"cluster_id": true}
)

// match compares the answer b with the README's line o, and on success
// records the indexes it pairs.
func (w *walk) match(o outLine, b []byte) []string {
	return w.matchPairs(o, b, nil)
}

func (w *walk) matchPairs(o outLine, b []byte, pairs []pair) []string {
	want, err := decodeLine(o.text)
	if err != nil {
		w.t.Fatalf("README.md:%d: the README's answer is not JSON: %v", o.line, err)
	}
	got, err := decodeLine(string(b))
	if err != nil {
		return []string{fmt.Sprintf("the answer is not JSON: %v", err)}
	}
	c := &comparison{w: w, line: o.line, pairs: pairs}
	c.compare("", "", want, got, false)
	if len(c.errs) == 0 {
		c.errs = w.commit(c.pairs)
	}
	return c.errs
}

// decodeLine decodes the JSON value at the start of s; what follows may
// only be a comment (# …).
func decodeLine(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	rest, _ := io.ReadAll(dec.Buffered())
	if r := strings.TrimSpace(string(rest) + s[dec.InputOffset()+int64(len(rest)):]); r != "" && !strings.HasPrefix(r, "#") {
		return nil, fmt.Errorf("trailing %q", r)
	}
	return v, nil
}

type comparison struct {
	w     *walk
	line  int
	pairs []pair
	errs  []string
}

func (c *comparison) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// compare compares the README's value want at path (field key) with the
// server's got. inStatus: the object is a GET /v1/status answer, whose
// term is Raft's, not a log index.
func (c *comparison) compare(path, key string, want, got any, inStatus bool) {
	switch wv := want.(type) {
	case map[string]any:
		gv, ok := got.(map[string]any)
		if !ok {
			c.errorf("%s: %v, README an object", path, got)
			return
		}
		_, status := wv["leader_url"]
		for k := range wv {
			if _, ok := gv[k]; !ok {
				c.errorf("%s.%s: missing in the answer", path, k)
			}
		}
		for k := range gv {
			if _, ok := wv[k]; !ok {
				c.errorf("%s.%s: the answer has it (%v), the README not", path, k, gv[k])
			}
		}
		keys := make([]string, 0, len(wv))
		for k := range wv {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if g, ok := gv[k]; ok {
				c.compare(path+"."+k, k, wv[k], g, status)
			}
		}
	case []any:
		gv, ok := got.([]any)
		if !ok || len(gv) != len(wv) {
			c.errorf("%s: %v, README %v", path, got, want)
			return
		}
		for i := range wv {
			c.compare(fmt.Sprintf("%s[%d]", path, i), key, wv[i], gv[i], false)
		}
	case string:
		gv, ok := got.(string)
		if !ok {
			c.errorf("%s: %v, README %q", path, got, wv)
			return
		}
		_, digits := strconv.ParseUint(wv, 10, 64)
		switch {
		case indexKeys[key] && digits == nil:
			c.index(path, key, wv, gv)
		case timeKeys[key]:
			if _, err := time.Parse(time.RFC3339Nano, wv); err != nil {
				c.errorf("%s: the README's %q is not an RFC 3339 time", path, wv)
			}
			if _, err := time.Parse(time.RFC3339Nano, gv); err != nil {
				c.errorf("%s: %q is not an RFC 3339 time", path, gv)
			}
		case key == "token":
			c.w.strs[wv] = gv // a secret
		case opaqueKeys[key]:
			if wv == "" || gv == "" {
				c.errorf("%s: %q, README %q: both must be set", path, gv, wv)
			}
		default:
			gv = strings.ReplaceAll(gv, c.w.m.clientURL, "http://127.0.0.1:7070")
			gv = strings.ReplaceAll(gv, c.w.m.peerURL, "http://127.0.0.1:7071")
			if key == "message" {
				wv = c.w.mapNumbers(wv)
			}
			if gv != wv {
				c.errorf("%s: %q, README %q", path, gv, wv)
			}
		}
	case json.Number:
		gv, ok := got.(json.Number)
		if !ok {
			c.errorf("%s: %v, README %v", path, got, wv)
			return
		}
		switch {
		case key == "term" && inStatus:
			if n, err := strconv.ParseUint(string(gv), 10, 64); err != nil || n == 0 {
				c.errorf("%s: %v is not a Raft term", path, gv)
			}
		case indexKeys[key] && !(key == "id" && inStatus) && !strings.Contains(path, "members"):
			c.index(path, key, string(wv), string(gv))
		case counterKeys[key]:
			if _, err := strconv.ParseUint(string(gv), 10, 64); err != nil {
				c.errorf("%s: %v is not a count", path, gv)
			}
		case gv != wv:
			c.errorf("%s: %v, README %v", path, gv, wv)
		}
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) {
			c.errorf("%s: %v, README %v", path, got, want)
		}
	}
}

// index pairs the README's index r with the server's a.
func (c *comparison) index(path, key, r, a string) {
	rn, err1 := strconv.ParseUint(r, 10, 64)
	an, err2 := strconv.ParseUint(a, 10, 64)
	if err1 != nil || err2 != nil {
		c.errorf("%s: %q, README %q: not log indexes", path, a, r)
		return
	}
	c.pairs = append(c.pairs, pair{readme: rn, real: an, key: key, line: c.line})
}

// mapNumbers replaces the README's indexes in a message by the server's.
func (w *walk) mapNumbers(s string) string {
	return regexp.MustCompile(`\d+`).ReplaceAllStringFunc(s, func(d string) string {
		n, _ := strconv.ParseUint(d, 10, 64)
		for _, p := range w.index {
			if p.readme == n {
				return strconv.FormatUint(p.real, 10)
			}
		}
		return d
	})
}

// commit adds the pairs of one answer to the walk's, if they agree with
// them and with each other. The README shows a real session on a fresh
// server, shifted by where the reader's log happens to be: every index of
// the server is the README's plus one offset, the same for the whole
// walk-through. A commit or applied index is never below an index shown
// before it.
func (w *walk) commit(pairs []pair) []string {
	var errs []string
	all := slices.Clone(w.index)
	for _, p := range pairs {
		for _, q := range all {
			if (p.key == "commit" || p.key == "applied") && q.key != "commit" && q.key != "applied" && p.readme < q.readme {
				errs = append(errs, fmt.Sprintf("%s %d is below %s %d shown at line %d", p.key, p.readme, q.key, q.readme, q.line))
				break
			}
		}
		if len(all) > 0 {
			if q := all[0]; p.real-p.readme != q.real-q.readme {
				errs = append(errs, fmt.Sprintf("%s %d is %d in the server's log, but %s %d of line %d is %d: the README's indexes are not those of one session",
					p.key, p.readme, p.real, q.key, q.readme, q.line, q.real))
			}
		}
		all = append(all, p)
	}
	if len(errs) == 0 {
		w.index = all
	}
	return errs
}
