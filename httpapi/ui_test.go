package httpapi

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"
	"testing"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func uiGet(t *testing.T, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

// embeddedUI returns the console's files as embedded: name → content.
func embeddedUI(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := fs.WalkDir(uiEmbedded, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := uiEmbedded.ReadFile(p)
		out[strings.TrimPrefix(p, "ui/")] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"index.html", "console.js", "console.css", "favicon.svg"} {
		if out[want] == nil {
			t.Fatalf("the console has no %s (embedded: %d files)", want, len(out))
		}
	}
	return out
}

// TestUIServesEmbeddedFiles: every file of the console is served at
// /ui/{name} as embedded, with its content type, the strict CSP and
// nosniff; /ui/ is index.html; /ui redirects to /ui/; an ETag revalidates.
func TestUIServesEmbeddedFiles(t *testing.T) {
	_, ts := newTestServer(t, nil)

	res, _ := uiGet(t, ts.URL+"/ui", nil)
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET /ui: %d Location %q, want 301 to /ui/", res.StatusCode, res.Header.Get("Location"))
	}

	files := embeddedUI(t)
	wantType := map[string]string{
		".html": "text/html; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".css":  "text/css; charset=utf-8",
		".svg":  "image/svg+xml",
	}
	check := func(url string, want []byte, ctype string) {
		t.Helper()
		res, body := uiGet(t, url, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", url, res.StatusCode, body)
		}
		if got := res.Header.Get("Content-Type"); got != ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", url, got, ctype)
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", url, got)
		}
		csp := res.Header.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
			if !strings.Contains(csp, d+";") && !strings.HasSuffix(csp, d) {
				t.Errorf("GET %s: Content-Security-Policy %q lacks %q", url, csp, d)
			}
		}
		if strings.Contains(csp, "unsafe-") || strings.Contains(csp, "*") || strings.Contains(csp, "data:") {
			t.Errorf("GET %s: Content-Security-Policy %q allows more than the console's own files", url, csp)
		}
		if string(body) != string(want) {
			t.Errorf("GET %s: the body is not the embedded file (%d bytes, want %d)", url, len(body), len(want))
		}
		etag := res.Header.Get("ETag")
		if etag == "" {
			t.Fatalf("GET %s: no ETag", url)
		}
		if res, _ := uiGet(t, url, map[string]string{"If-None-Match": etag}); res.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match %s: %d, want 304", url, etag, res.StatusCode)
		}
	}
	for name, b := range files {
		ctype, ok := wantType[path.Ext(name)]
		if !ok {
			t.Errorf("console file %s has an extension the test does not know", name)
			continue
		}
		check(ts.URL+"/ui/"+name, b, ctype)
	}
	check(ts.URL+"/ui/", files["index.html"], wantType[".html"])
}

// TestUIUnknownFileIsJSON404: a path under /ui/ that is no file of the
// console answers the API's 404 not_found JSON error, whatever it looks
// like (no directory listing, no way out of the embedded files).
func TestUIUnknownFileIsJSON404(t *testing.T) {
	_, ts := newTestServer(t, nil)
	for _, p := range []string{"/ui/nope.js", "/ui/ui/index.html", "/ui/index.html/", "/ui/%2e%2e/go.mod", "/ui/..%2fui.go", "/ui/sub/", "/ui/INDEX.HTML"} {
		res, body := uiGet(t, ts.URL+p, nil)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, res.StatusCode)
			continue
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("GET %s: Content-Type %q, want JSON", p, ct)
		}
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != "not_found" || e.Error.Message == "" {
			t.Errorf("GET %s: body %s, want a not_found error (%v)", p, body, err)
		}
	}
}

// TestUIReferencesNothingExternal: no embedded file names another origin
// (the console works without the internet and the CSP would refuse it
// anyway), and nothing depends on what the CSP forbids: inline scripts,
// style attributes, event-handler attributes, eval.
func TestUIReferencesNothingExternal(t *testing.T) {
	files := embeddedUI(t)
	// The SVG namespace is a name, never fetched.
	const svgNS = `xmlns="http://www.w3.org/2000/svg"`
	external := regexp.MustCompile(`(?i)(https?:|wss?:|ftp:)//|(src|href|action)\s*=\s*["']?//|url\(\s*["']?(https?:)?//|@import`)
	for name, b := range files {
		text := string(b)
		if path.Ext(name) == ".svg" {
			text = strings.ReplaceAll(text, svgNS, "")
		}
		for _, loc := range external.FindAllStringIndex(text, -1) {
			line := 1 + strings.Count(text[:loc[0]], "\n")
			t.Errorf("%s:%d references another origin: %q", name, line, text[loc[0]:min(len(text), loc[1]+30)])
		}
	}
	inline := []struct {
		files string
		re    *regexp.Regexp
		what  string
	}{
		{".html", regexp.MustCompile(`(?i)<script(\s[^>]*)?>\s*[^<\s]`), "an inline script"},
		{".html", regexp.MustCompile(`(?i)<style\b`), "an inline style sheet"},
		{".html", regexp.MustCompile(`(?i)\sstyle\s*=`), "a style attribute"},
		{".html", regexp.MustCompile(`(?i)\son[a-z]+\s*=`), "an event-handler attribute"},
		{".html", regexp.MustCompile(`(?i)javascript:`), "a javascript: URL"},
		{".js", regexp.MustCompile(`\beval\s*\(|new\s+Function\s*\(|innerHTML|outerHTML|insertAdjacentHTML|document\.write`), "eval or HTML from strings"},
		{".js", regexp.MustCompile(`\.style\b|setAttribute\(\s*['"]style|cssText`), "inline styles"},
		{".js", regexp.MustCompile(`setTimeout\(\s*['"]|setInterval\(\s*['"]`), "a timer with code in a string"},
	}
	scriptTag := regexp.MustCompile(`(?i)<script\b[^>]*>`)
	for name, b := range files {
		for _, tag := range scriptTag.FindAll(b, -1) {
			if !regexp.MustCompile(`(?i)\ssrc\s*=`).Match(tag) {
				t.Errorf("%s has a script without src, which the console's CSP forbids: %s", name, tag)
			}
		}
		for _, c := range inline {
			if path.Ext(name) != c.files {
				continue
			}
			if loc := c.re.FindIndex(b); loc != nil {
				line := 1 + strings.Count(string(b[:loc[0]]), "\n")
				t.Errorf("%s:%d has %s, which the console's CSP forbids: %q", name, line, c.what, b[loc[0]:min(len(b), loc[1]+20)])
			}
		}
	}
}
