package httpapi

// The web console (GET /ui/): plain HTML, CSS and JavaScript embedded in
// the binary, so that every node serves the same console with nothing
// fetched from anywhere else. The files are public (auth.go isUIPath): the
// console asks for a bearer token and sends it with each API request it
// makes, so what it shows is what that principal may read.
//
// Every file is served with a strict Content-Security-Policy (uiCSP): the
// console's own scripts, styles and images only, no inline script or style,
// connections to this origin only, never framed. The console reads the
// streams with fetch (an EventSource cannot send Authorization) and parses
// the Server-Sent Events itself: see ui/console.js.

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
)

//go:embed ui
var uiEmbedded embed.FS

// uiCSP is the Content-Security-Policy of the console's files.
const uiCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'none'; frame-ancestors 'none'"

// uiTypes are the content types of the console's files, by extension. A
// file of another extension is not served (uiFiles fails), so that nothing
// goes out with a type a browser would have to guess.
var uiTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// uiFile is one file of the console, ready to serve.
type uiFile struct {
	body  []byte
	ctype string
	etag  string // a strong validator: the first 16 bytes of its SHA-256, in hex
}

// uiFiles reads the embedded files once: name ("index.html",
// "console.js") → file. It fails on a file of an unknown type (a build
// mistake that httpapi's tests catch).
var uiFiles = sync.OnceValues(func() (map[string]uiFile, error) {
	out := map[string]uiFile{}
	err := fs.WalkDir(uiEmbedded, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := uiTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("console file %s: no content type for its extension", p)
		}
		body, err := uiEmbedded.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read console file %s: %w", p, err)
		}
		sum := sha256.Sum256(body)
		out[strings.TrimPrefix(p, "ui/")] = uiFile{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	return out, err
})

// ui: GET /ui → 301 to /ui/; GET /ui/ → the console (index.html); GET
// /ui/{file} → one of its files, with its content type, uiCSP, nosniff and
// an ETag (revalidated on each load: Cache-Control no-cache, so that a
// node upgraded to another build serves its own console at once). Anything
// else under /ui/ is 404 not_found (a JSON error, as for every path).
func (s *Server) ui(c echo.Context) error {
	r := c.Request()
	if r.URL.Path == "/ui" {
		return c.Redirect(http.StatusMovedPermanently, "/ui/")
	}
	files, err := uiFiles()
	if err != nil {
		return fmt.Errorf("%w: %v", api.ErrInternal, err)
	}
	name := strings.TrimPrefix(r.URL.Path, "/ui/")
	if name == "" {
		name = "index.html"
	}
	f, ok := files[name]
	if !ok {
		return api.Errorf(api.CodeNotFound, "the console has no file %q: open /ui/", clipValue(name))
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, f.ctype)
	h.Set(echo.HeaderContentSecurityPolicy, uiCSP)
	h.Set(echo.HeaderXContentTypeOptions, "nosniff")
	h.Set(echo.HeaderXFrameOptions, "DENY")
	h.Set(echo.HeaderReferrerPolicy, "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set(echo.HeaderCacheControl, "no-cache")
	h.Set("ETag", f.etag)
	http.ServeContent(c.Response(), r, name, time.Time{}, bytes.NewReader(f.body))
	return nil
}
