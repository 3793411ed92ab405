// Package schemas holds Abacus's published contracts: the OpenAPI 3
// description of the HTTP API (openapi.yaml, served at /openapi.yaml) and the
// JSON Schemas of the NATS events (*.schema.json; Go types in eventv1).
package schemas

import _ "embed"

// OpenAPI is the OpenAPI 3 document of the HTTP API.
//
//go:embed openapi.yaml
var OpenAPI []byte
