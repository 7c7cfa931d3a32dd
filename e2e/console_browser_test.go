package e2e

// A headless Chromium, driven with chromedp, for the web console's tests
// (console_test.go): every action is bounded in time, every console
// message, uncaught exception and browser log entry of the page is
// recorded, and an error among them fails the test unless the test said it
// expects it (a node it killed cannot be reached).

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/raftlock/raftlock/internal/await"
)

var consoleShots = flag.String("console.screenshots", "", "directory for the console tests' screenshots (default $RAFTLOCK_CONSOLE_SCREENSHOTS, else a temporary directory)")

// chromiumPath is the browser of the console tests: Debian's chromium, which
// .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// actionTimeout bounds each browser action (a navigation, an evaluation, a
// screenshot).
const actionTimeout = 10 * time.Second

// browser is one tab of a headless Chromium of its own.
type browser struct {
	t     *testing.T
	ctx   context.Context // the tab's
	shots string          // where screenshots go

	mu      sync.Mutex
	msgs    []chromedp.ConsoleMessage
	allowed func(m chromedp.ConsoleMessage) bool // errors expected now; nil: none
	bad     []string                             // errors not expected
	done    chan struct{}                        // the console reader ended
	syncs   int                                  // markers logged (sync)
}

// newBrowser starts Chromium headless (no sandbox: the tests run as root),
// with a user data directory of the test's, and opens a tab. Without
// Chromium it skips the test, except in CI (CI set), where it fails.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromiumPath
	if _, err := os.Stat(exe); err != nil {
		p, lerr := exec.LookPath("chromium")
		if lerr != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not found: .ci/run installs it (apt-get install chromium)", chromiumPath)
			}
			t.Skipf("skipped: the console's browser tests need Chromium (%s, Debian package chromium: apt-get install chromium); in CI they run", chromiumPath)
		}
		exe = p
	}
	b := &browser{t: t, shots: screenshotDir(t), done: make(chan struct{})}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1360, 900),
		chromedp.Flag("lang", "en-US"),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b.ctx = ctx
	reading := false // the console reader runs (and closes done)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if reading {
			<-b.done
		}
		// A test that ends early has not checked: say what the page logged.
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.bad) > 0 {
			t.Errorf("the console logged errors:\n  %s", strings.Join(b.bad, "\n  "))
		}
	})
	// The first action starts the browser and binds it to ctx, which must
	// not have a deadline: bound it from outside.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start %s: %v", exe, err)
		}
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("start %s: not within 30s", exe)
	}
	msgs := chromedp.Console(ctx)
	reading = true
	go func() {
		defer close(b.done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.note(m)
		}
	}()
	return b
}

// screenshotDir is -console.screenshots, else $RAFTLOCK_CONSOLE_SCREENSHOTS,
// else a temporary directory of the test.
func screenshotDir(t *testing.T) string {
	dir := *consoleShots
	if dir == "" {
		dir = os.Getenv("RAFTLOCK_CONSOLE_SCREENSHOTS")
	}
	if dir == "" {
		return t.TempDir()
	}
	if !filepath.IsAbs(dir) {
		// go test runs in the package's directory: a relative path (docs)
		// means the repository's.
		dir = filepath.Join(repoRoot(t), dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (b *browser) note(m chromedp.ConsoleMessage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = append(b.msgs, m)
	if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException && m.Type != "assert" {
		return
	}
	if b.allowed != nil && b.allowed(m) {
		return
	}
	where := m.URL
	if m.Line > 0 {
		where = fmt.Sprintf("%s:%d", m.URL, m.Line+1)
	}
	if m.Source != "" {
		where += ", from " + m.Source
	}
	b.bad = append(b.bad, fmt.Sprintf("%s (%s)", m, where))
}

// allow makes the errors that ok accepts expected until the returned func
// is called; that func first waits for every message the page logged
// before it (they arrive on another goroutine).
func (b *browser) allow(ok func(m chromedp.ConsoleMessage) bool) (stop func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.allowed = ok
	return func() {
		b.t.Helper()
		b.sync()
		b.mu.Lock()
		defer b.mu.Unlock()
		b.allowed = nil
	}
}

// sync returns once the messages the page logged so far are recorded: it
// logs a marker (console.debug) and waits for it, the messages coming in
// order.
func (b *browser) sync() {
	b.t.Helper()
	b.syncs++
	marker := fmt.Sprintf("e2e sync %d", b.syncs)
	b.do("log a marker", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`console.debug(%s)`, jsString(marker))))
	if _, ok := await.Within(actionTimeout, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return slices.ContainsFunc(b.msgs, func(m chromedp.ConsoleMessage) bool { return m.Text == marker })
	}); !ok {
		b.t.Fatalf("browser: the console marker %q did not come back within %v", marker, actionTimeout)
	}
}

// networkErrors accepts the browser's log entries for requests that failed
// (a node that is down, an answer with an error status), nothing else.
func networkErrors(m chromedp.ConsoleMessage) bool { return m.Source == "network" }

// checkConsole fails the test if the page logged an error that was not
// expected, or threw.
func (b *browser) checkConsole() {
	b.t.Helper()
	b.sync()
	b.mu.Lock()
	defer b.mu.Unlock()
	if bad := b.bad; len(bad) > 0 {
		b.bad = nil // reported once
		b.t.Fatalf("the console logged errors:\n  %s", strings.Join(bad, "\n  "))
	}
}

// logConsole writes every message of the page into the test's log.
func (b *browser) logConsole() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.msgs {
		b.t.Logf("browser console: %s %s", m, m.URL)
	}
}

// do runs actions within actionTimeout.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// click clicks the element that the CSS selector finds, in one step in the
// page: the console re-renders live content (a table's rows and its pager)
// at any moment, and a node that chromedp found may be gone by the time it
// clicks it ("Could not find node with given id"). It waits until an
// enabled element is there and clicks it once.
func (b *browser) click(what, selector string) {
	b.t.Helper()
	b.waitFor(actionTimeout, what, fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e || e.disabled) return false; e.click(); return true })()`, jsString(selector)))
}

// eval evaluates a JavaScript expression in the page within actionTimeout
// and decodes its value into T.
func eval[T any](b *browser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// mustEval is eval that fails the test on an error.
func mustEval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := eval[T](b, expr)
	if err != nil {
		b.t.Fatalf("browser: evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls the page until the JavaScript expression cond is true,
// for at most within, and returns how long that took. On a timeout it
// fails with the page's text.
func (b *browser) waitFor(within time.Duration, what, cond string) time.Duration {
	b.t.Helper()
	d, ok := await.Within(within, func() bool {
		v, err := eval[bool](b, cond)
		return err == nil && v
	})
	if !ok {
		text, _ := eval[string](b, `document.body.innerText`)
		b.t.Fatalf("browser: %s: not within %v; the page shows:\n%s", what, within, text)
	}
	return d
}

// open navigates to url and waits for the console to show its page (or
// its sign-in form).
func (b *browser) open(url string) {
	b.t.Helper()
	b.do("open "+url, chromedp.Navigate(url))
	b.waitFor(actionTimeout, "the console starts", `document.body.dataset.page !== undefined || !document.querySelector('#login').hidden`)
}

// page switches the console to a page ("#/locks") as a click in its menu
// does, and waits until the page is mounted and its first read shown.
func (b *browser) page(hash string) {
	b.t.Helper()
	before := mustEval[string](b, `document.body.dataset.mounts || ''`)
	if mustEval[string](b, `location.hash`) != hash {
		b.do("go to "+hash, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = %s`, jsString(hash))))
		b.waitFor(actionTimeout, "page "+hash+" mounted", fmt.Sprintf(`(document.body.dataset.mounts || '') !== %s`, jsString(before)))
	}
	b.waitFor(actionTimeout, "page "+hash+" shown", `document.querySelector('#main .content[data-loaded], #main .cards, #main [data-forbidden]') !== null`)
}

// screenshot saves the viewport as name (PNG) in the screenshot directory
// and logs its path.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	p := filepath.Join(b.shots, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", p)
}

// jsString returns s as a JavaScript string literal.
func jsString(s string) string { return jsValue(s) }

// jsValue returns v as a JavaScript literal (its JSON).
func jsValue(v any) string {
	j, err := json.Marshal(v)
	if err != nil {
		panic(err) // only the tests' own strings and slices come here
	}
	return string(j)
}
