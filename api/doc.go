// Package api holds the wire types of raftlock's REST API v1: the JSON
// requests and responses of every endpoint, the error format and its stable
// codes, and sentinel errors that both the server (httpapi) and the Go SDK
// (client) use, so that errors.Is(err, api.ErrNotHolder) works on either side.
//
// It imports only the standard library: an SDK user does not download the
// server's dependencies.
//
// # Encoding rules
//
//   - Session IDs are decimal strings ("42"): they are 64-bit and would lose
//     precision as JSON numbers in JavaScript. See SessionID.
//   - Fencing tokens are JSON numbers. They are raft log indexes and stay far
//     below 2^53 in practice.
//   - Durations are Go duration strings ("10s", "1m30s"). See Duration.
//   - Times are RFC 3339 strings in UTC with up to nanosecond precision
//     ("2026-11-26T19:21:02.123456789Z").
//   - Every error answer is {"error": {"code": "...", "message": "..."}} with a
//     stable code (see the Code* constants) and a fitting HTTP status.
//   - Every answer carries the header Raftlock-Leader (HeaderLeader) with the
//     client URL of the current leader when the node knows it.
//
// # Lock names in URLs
//
// A lock name is 1 to 256 bytes of ASCII letters, digits and the characters
// '.', '_', '-', ':' and '/' (see ValidateLockName). Lock endpoints take the
// name as the rest of the path after /v1/locks/, so a name with '/' may be
// written as is or percent-encoded:
//
//	POST /v1/locks/jobs/nightly/acquire      acquires "jobs/nightly"
//	POST /v1/locks/jobs%2Fnightly/acquire    acquires "jobs/nightly"
//	GET  /v1/locks/jobs/nightly              reads "jobs/nightly"
//
// For POST the last path segment is the action (acquire or release) and
// everything before it is the name; for GET the whole rest of the path is the
// name. A name whose last segment is itself "acquire" or "release" (such as
// "x/release") must be percent-encoded in a POST (/v1/locks/x%2Frelease/acquire).
// LockPath encodes a name safely for every case and is what the SDK uses.
package api
