// Command fenced-store is a small file store that refuses the writes of a
// paused lock holder: every write must carry the lock's name and the
// holder's fencing token (headers Raftlock-Lock and Raftlock-Fencing-Token),
// and a token lower than one the store already accepted is answered 409
// stale_token. It shows package client/fence at work; see
// examples/README.md for a session with a real raftlockd.
//
//	go run ./examples/fenced-store [-listen 127.0.0.1:8080] [-dir ./fenced-store-data] [-lock fenced-store]
//
//	PUT    /files/{name}   write the body (at most 1 MiB) to the file name
//	DELETE /files/{name}   delete it
//	GET    /files/{name}   read it (no token needed)
//
// One lock (-lock) protects the whole store: a write that names another
// lock is refused with 403. The highest token accepted is kept in the file
// .fence of the store's directory, written before the data, so that a
// restarted store still refuses tokens lower than the last one that wrote.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/raftlock/raftlock/client/fence"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	dir := flag.String("dir", "fenced-store-data", "directory of the files (created if missing)")
	lock := flag.String("lock", "fenced-store", "name of the raftlock lock that protects the store")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*listen, *dir, *lock, log); err != nil {
		log.Error("fenced-store stopped", "err", err)
		os.Exit(1)
	}
}

// run serves the store until SIGINT or SIGTERM.
func run(listen, dir, lock string, log *slog.Logger) error {
	s, err := openStore(dir, lock)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Addr:    listen,
		Handler: s.handler(),
		// A request that never ends would keep the next holder waiting
		// (fence.Guard.Enter): bound every request.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errC := make(chan error, 1)
	go func() { errC <- srv.ListenAndServe() }()
	log.Info("serving", "addr", listen, "dir", dir, "lock", lock, "fence", s.guard.Highest(lock))
	select {
	case err := <-errC:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// store is the file store. Its methods are safe for concurrent use.
type store struct {
	dir   string
	lock  string // the lock that protects every file
	guard fence.Guard
}

// fenceFile is the name, in the store's directory, of the file that keeps
// the highest token accepted. File names may not start with '.', so no
// request can reach it.
const fenceFile = ".fence"

// openStore opens the store in dir, creating dir if needed, and seeds the
// guard with the fence stored there.
func openStore(dir, lock string) (*store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &store{dir: dir, lock: lock}
	b, err := os.ReadFile(filepath.Join(dir, fenceFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("open store: %w", err)
	}
	token, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("open store: %s: %w", fenceFile, err)
	}
	if err := s.guard.Check(lock, token); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}

// handler returns the store's HTTP handler: writes go through the guard's
// middleware, which refuses stale tokens before they reach put or remove.
func (s *store) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /files/{name}", s.get)
	mux.Handle("PUT /files/{name}", s.guard.Middleware(http.HandlerFunc(s.put)))
	mux.Handle("DELETE /files/{name}", s.guard.Middleware(http.HandlerFunc(s.remove)))
	return mux
}

func (s *store) get(w http.ResponseWriter, r *http.Request) {
	path, ok := s.path(w, r)
	if !ok {
		return
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		http.Error(w, "no such file", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	io.Copy(w, f)
}

func (s *store) put(w http.ResponseWriter, r *http.Request) {
	path, ok := s.fenced(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if !s.commit(w, r) {
		return
	}
	if err := writeFile(path, body); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *store) remove(w http.ResponseWriter, r *http.Request) {
	path, ok := s.fenced(w, r)
	if !ok || !s.commit(w, r) {
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fenced returns the path of a write's file, after checking that the
// request names the store's lock (the middleware checked the token, but
// only the store knows which lock protects it).
func (s *store) fenced(w http.ResponseWriter, r *http.Request) (string, bool) {
	if got := r.Header.Get(fence.HeaderLock); got != s.lock {
		http.Error(w, fmt.Sprintf("lock %q does not protect this store: take the lock %q", got, s.lock), http.StatusForbidden)
		return "", false
	}
	return s.path(w, r)
}

// commit is the last step before a write changes a file: it gives up if a
// later holder has come meanwhile (the request's context is cancelled with
// a stale cause), and stores the token in the fence file, so that a
// restarted store still knows it. The guard runs the writes of a higher
// token only after this request has returned.
func (s *store) commit(w http.ResponseWriter, r *http.Request) bool {
	if err := context.Cause(r.Context()); err != nil {
		fence.WriteError(w, err)
		return false
	}
	token := strconv.FormatUint(s.guard.Highest(s.lock), 10)
	if err := writeFile(filepath.Join(s.dir, fenceFile), []byte(token+"\n")); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return false
	}
	return true
}

// path returns the path of the request's file name: 1 to 128 bytes of
// ASCII letters, digits, '.', '_' and '-', not starting with '.'.
func (s *store) path(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("name")
	ok := name != "" && len(name) <= 128 && name[0] != '.'
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
	}
	if !ok {
		http.Error(w, "file names are 1 to 128 bytes of ASCII letters, digits, . _ -, not starting with .", http.StatusBadRequest)
		return "", false
	}
	return filepath.Join(s.dir, name), true
}

// writeFile replaces the file at path with data: a reader sees the old
// content or the new, never a part.
func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}
