package api

import (
	"bytes"
	_ "embed"
)

// OpenAPIPath is the path of GET /v1/openapi.json, which answers the
// OpenAPI document of the API (OpenAPI). It needs no principal.
const OpenAPIPath = "/v1/openapi.json"

// openAPI is openapi.json, the OpenAPI 3.0.3 document of the REST API v1:
// every endpoint the server registers, its request and answer bodies
// (the types of this package), its error codes and statuses, the
// Raftlock-Leader header, bearer auth and the two Server-Sent Events
// streams. httpapi's tests validate every request and answer of their
// test server against it, so it cannot drift from the server.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.0.3 document of the REST API v1 as JSON, as
// GET /v1/openapi.json serves it. Each call returns a fresh copy, which
// the caller may keep or change. It is safe for concurrent use.
func OpenAPI() []byte { return bytes.Clone(openAPI) }
