// Package httpapi serves raftlock's REST API v1 (JSON over HTTP) with echo.
// It depends only on the raftnode.Proposer interface (Propose, Read, Await,
// Subscribe, Watch, Status), never on the concrete node, and on the wire
// types of package api, whose request types validate themselves.
//
// # Endpoints
//
//	POST   /v1/sessions                 {"ttl":"10s","owner":"o","request_id":"r"} → 201 {"id","ttl","owner"}
//	POST   /v1/sessions/{id}/keepalive                             → 200 {"id","ttl"}
//	POST   /v1/sessions/keepalive       {"ids":["12","14"]}        → 200 {"sessions":[{"id","ttl"}],"expired":[...]}
//	DELETE /v1/sessions/{id}                                       → 200 {"id"}
//	GET    /v1/sessions/{id}                                       → 200 {"id","owner","ttl","deadline","locks","waiting","permits","sem_waiting","campaigns"}
//	GET    /v1/sessions?owner=o&limit=n&after=id                   → 200 {"sessions":[...],"next"}
//	POST   /v1/locks/{name}/acquire     {"session":"42","wait":"5s","keep_queued":true,"mode":"shared"} or {"ttl":"30s","owner":"o"}
//	                                                               → 200 {"name","session","token","mode"}
//	POST   /v1/locks/{name}/release     {"session":"42","token":17} → 200 {"name","session","token"}
//	POST   /v1/locks/{name}/cancel      {"session":"42"}           → 200 {"left","grant"}
//	POST   /v1/locks/{name}/check       {"token":17}               → 200 {"name","token","current","holder","holders"}
//	GET    /v1/locks/{name}                                        → 200 {"name","holder","holders","waiters"}
//	GET    /v1/locks?prefix=p&limit=n&after=a                      → 200 {"locks":[...],"next"}
//	POST   /v1/semaphores/{name}/acquire {"session":"42","limit":3,"wait":"5s","keep_queued":true}
//	                                                               → 200 {"name","session","token","limit"}
//	POST   /v1/semaphores/{name}/release {"session":"42","token":17} → 200 {"name","session","token"}
//	POST   /v1/semaphores/{name}/cancel {"session":"42"}           → 200 {"left","permit"}
//	POST   /v1/semaphores/{name}/check  {"token":17}               → 200 {"name","token","current","holders"}
//	GET    /v1/semaphores/{name}                                   → 200 {"name","limit","holders","waiters"}
//	GET    /v1/semaphores?prefix=p&limit=n&after=a                 → 200 {"semaphores":[...],"next"}
//	POST   /v1/batch                    {"ops":[...]}              → 200 {"results":[...]}
//	POST   /v1/elections/{name}/campaign {"session":"42","value":"v","wait":"30s","keep_queued":true}
//	                                                               → 200 {"name","session","value","term"}
//	POST   /v1/elections/{name}/cancel  {"session":"42"}           → 200 {"left","grant"}
//	POST   /v1/elections/{name}/proclaim {"session":"42","term":17,"value":"v2"} → 200
//	POST   /v1/elections/{name}/resign   {"session":"42","term":17} → 200
//	GET    /v1/elections/{name}                                    → 200 {"name","leader","candidates"}
//	GET    /v1/elections?prefix=p&limit=n&after=a                  → 200 {"elections":[...],"next"}
//	GET    /v1/elections/{name}/observe                            → Server-Sent Events of the leader
//	GET    /v1/watch?prefix=p&limit=n                              → Server-Sent Events of lock changes
//	GET    /v1/status                                              → 200 {"id","leader","term","commit","applied","members","alarms",…}
//	GET    /v1/auth/users|roles|tokens, POST …, DELETE …/{name|id}  → the auth administration (auth.go)
//	POST   /v1/auth/enable, GET /v1/auth/whoami                    → {"enabled","principal","roles"}
//	GET    /v1/limits, POST /v1/limits                             → the cluster's quotas
//	POST   /v1/leader/transfer          {"to":2} or {}             → 200 {"leader","term"} once another member leads
//	GET    /metrics                                                → Prometheus text format
//	GET    /v1/openapi.json                                        → 200 the OpenAPI 3.0.3 document (api/openapi.json)
//	GET    /ui/                                                    → the web console's embedded files (ui.go)
//	GET    /healthz                                                → 200 {"status":"ok"}
//	GET    /readyz                                                 → 200 {"status":"ok"} while ready, else 503
//
// Ready means Status().Ready: a leader is known, its client URL is known (so
// that writes can be forwarded) and the known log is applied.
//
// # Lock names with '/'
//
// Lock routes are wildcards: everything after /v1/locks/ is the name, except
// that for POST the last segment is the action. A name may therefore be
// written as is or with each '/' percent-encoded as %2F:
//
//	POST /v1/locks/jobs/nightly/acquire     acquires "jobs/nightly"
//	POST /v1/locks/jobs%2Fnightly/acquire   acquires "jobs/nightly"
//	GET  /v1/locks/jobs/nightly             reads "jobs/nightly"
//
// The split into name and action happens before percent-decoding, so a name
// whose last segment is "acquire" or "release" must be encoded in a POST:
// POST /v1/locks/x%2Frelease/acquire acquires "x/release". Encoding every '/'
// (url.PathEscape, api.LockPath) is always safe; clients and proxies that
// normalise paths may also merge "//", so avoid names with empty segments.
//
// # Waiting
//
// An acquire or a campaign that queues waits on the one wait path of
// wait.go (awaitGrant), which every queue of the state machine shares: it
// waits for its own session's place (raftnode's Await), settles a wait that
// ran out or whose client went away (leave the queue, or keep the place with
// keep_queued), and answers a grant that won the race. cancel leaves a
// queue on request.
//
// # Bodies
//
// Bodies are decoded strictly (github.com/go-json-experiment/json): an
// unknown, repeated or wrongly cased field, a wrong type, invalid UTF-8, a
// number, session ID or duration with a leading zero, or trailing data is
// a 400 whose message names the field by its path in the body
// (ops[2].token) and says what was expected, never a Go type.
//
// # Who may do what
//
// Middleware runs in this order: guard.go refuses cross-site browser
// writes and foreign Host names; auth.go resolves the principal (a
// member's forwarding header, a bearer token, a client certificate) and
// answers 401 without one once auth is on; ratelimit.go limits each
// principal's rate. Writes carry the principal and its token into their
// command, and the state machine decides (403 permission_denied, 429
// quota_exceeded, 507 no_space come from there); reads are checked here,
// and linearizable ones again on the state they read. Streams are capped
// per node and principal and read one shared event log (streams.go).
//
// # Consistency and leaders
//
// Writes are proposed through the log and answer once applied. A follower
// forwards a write to the leader (same method, path, query and body, plus the
// header Raftlock-Forwarded: 1) and relays the answer; a forwarded request
// that reaches a non-leader answers 503 unavailable, so requests never loop.
// GETs are linearizable (a ReadIndex round, 503 without a quorum) unless they
// carry ?consistency=stale. GET /v1/status is always the node's local view.
// Every answer carries Raftlock-Leader with the leader's client URL when
// known.
//
// # Errors
//
// Every error is {"error":{"code":"...","message":"..."}} with, for
// lock_held, the holder. Codes and statuses:
//
//	invalid_argument     400  malformed JSON, unknown or repeated field, bad name, TTL or wait out of bounds, ...
//	session_not_found    404  the session never existed, was closed or expired
//	not_found            404  no such path
//	method_not_allowed   405  the path exists, the method does not
//	lock_held            409  held by another session (no wait, or the wait ran out; "queued": true if the place is kept)
//	not_holder           409  release by a non-holder or with a stale token; nothing changed
//	not_leader           409  proclaim/resign without leading with that term; a campaign that did not get to lead
//	too_large            413  body over 1 MiB
//	unavailable          503  no leader or quorum, node stopping, deadline before proposing; nothing changed
//	timeout              503  proposed but the outcome is unknown; retrying the same request is safe
//	internal             500  a bug
//
// Requests that fail validation propose nothing.
package httpapi
