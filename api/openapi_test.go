package api

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"gopkg.in/yaml.v3"

	"github.com/abacus-ab/abacus/internal/auth"
	"github.com/abacus-ab/abacus/schemas"
)

// specMethods are the keys of an OpenAPI path item that name operations.
var specMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// specPathParam matches an OpenAPI path template parameter such as {test_id}.
var specPathParam = regexp.MustCompile(`\{([^{}/]+)\}`)

// specOp is one operation of the OpenAPI document.
type specOp struct {
	method   string         // upper case, as Echo spells it
	path     string         // OpenAPI template, e.g. /tests/{test_id}
	pathItem map[string]any // the path item, which may declare parameters
	op       map[string]any
}

// echoPath converts an OpenAPI path template to Echo's syntax.
func echoPath(p string) string { return specPathParam.ReplaceAllString(p, ":$1") }

// loadSpec decodes the embedded OpenAPI document.
func loadSpec(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(schemas.OpenAPI, &doc); err != nil {
		t.Fatalf("schemas/openapi.yaml is not valid YAML: %v", err)
	}
	if doc == nil {
		t.Fatal("schemas/openapi.yaml is empty")
	}
	return doc
}

// specOps lists every operation of the document, in a stable order.
func specOps(t *testing.T, doc map[string]any) []specOp {
	t.Helper()
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatalf("schemas/openapi.yaml: paths is %T, want a mapping", doc["paths"])
	}
	var ops []specOp
	for path, v := range paths {
		item, ok := v.(map[string]any)
		if !ok {
			t.Errorf("schemas/openapi.yaml: path %s is %T, want a mapping", path, v)
			continue
		}
		for _, m := range specMethods {
			if o, ok := item[m]; ok {
				op, ok := o.(map[string]any)
				if !ok {
					t.Errorf("schemas/openapi.yaml: %s %s is %T, want a mapping", strings.ToUpper(m), path, o)
					continue
				}
				ops = append(ops, specOp{method: strings.ToUpper(m), path: path, pathItem: item, op: op})
			}
		}
	}
	slices.SortFunc(ops, func(a, b specOp) int {
		if c := strings.Compare(a.path, b.path); c != 0 {
			return c
		}
		return strings.Compare(a.method, b.method)
	})
	return ops
}

func newSpecServer(t *testing.T) *Server {
	t.Helper()
	// No request reaches the registry, the event bus or the analyzer here.
	srv, err := New(Config{AuthDisabled: true}, Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestOpenAPIMatchesRoutes checks that schemas/openapi.yaml documents every
// route of the server, and nothing else.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	srv := newSpecServer(t)

	routes := map[string]bool{}
	for _, r := range srv.Routes() {
		// Echo's own catch-all routes (groups with middleware add them).
		if r.Method == echo.RouteNotFound || strings.HasSuffix(r.Path, "/*") {
			continue
		}
		routes[r.Method+" "+r.Path] = true
	}
	documented := map[string]bool{}
	for _, op := range specOps(t, loadSpec(t)) {
		documented[op.method+" "+echoPath(op.path)] = true
	}
	if len(routes) == 0 || len(documented) == 0 {
		t.Fatalf("found %d routes and %d documented operations, want both non-empty", len(routes), len(documented))
	}

	tests := []struct {
		name       string
		have, want map[string]bool
		format     string
	}{
		{"routes are documented", routes, documented, "route %s %s is missing from schemas/openapi.yaml"},
		{"operations are routed", documented, routes, "schemas/openapi.yaml documents %s %s, but the server has no such route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, key := range slices.Sorted(maps.Keys(tt.have)) {
				if !tt.want[key] {
					method, path, _ := strings.Cut(key, " ")
					t.Errorf(tt.format, method, path)
				}
			}
		})
	}
}

// TestOpenAPIDocumentIsValid checks the document's structure, and that the
// server serves it as embedded.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := loadSpec(t)
	ops := specOps(t, doc)

	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"openapi version", func(t *testing.T) {
			v, _ := doc["openapi"].(string)
			if !strings.HasPrefix(v, "3.") {
				t.Errorf("openapi = %q, want a 3.x version", v)
			}
		}},
		{"info", func(t *testing.T) {
			info, _ := doc["info"].(map[string]any)
			for _, k := range []string{"title", "version"} {
				if s, _ := info[k].(string); s == "" {
					t.Errorf("info.%s is missing or not a string", k)
				}
			}
		}},
		{"operations have responses", func(t *testing.T) {
			for _, op := range ops {
				resp, ok := op.op["responses"].(map[string]any)
				if !ok && op.op["responses"] != nil {
					t.Errorf("%s %s: responses is %T, want a mapping with quoted status codes", op.method, op.path, op.op["responses"])
					continue
				}
				if len(resp) == 0 {
					t.Errorf("%s %s has no responses", op.method, op.path)
				}
				for code := range resp {
					if n, err := strconv.Atoi(code); code != "default" && (err != nil || n < 100 || n > 599) {
						t.Errorf("%s %s: response key %q is not a status code", op.method, op.path, code)
					}
				}
			}
		}},
		{"operation ids are unique", func(t *testing.T) {
			seen := map[string]string{}
			for _, op := range ops {
				id, _ := op.op["operationId"].(string)
				where := op.method + " " + op.path
				if id == "" {
					t.Errorf("%s has no operationId", where)
					continue
				}
				if prev, dup := seen[id]; dup {
					t.Errorf("operationId %q is used by %s and %s", id, prev, where)
				}
				seen[id] = where
			}
		}},
		{"path parameters are declared", func(t *testing.T) {
			for _, op := range ops {
				declared := map[string]bool{}
				for _, list := range []any{op.pathItem["parameters"], op.op["parameters"]} {
					ps, _ := list.([]any)
					for _, p := range ps {
						pm, _ := specResolve(doc, p).(map[string]any)
						if pm["in"] == "path" {
							name, _ := pm["name"].(string)
							if pm["required"] != true {
								t.Errorf("%s %s: path parameter %s is not required: true", op.method, op.path, name)
							}
							declared[name] = true
						}
					}
				}
				for _, m := range specPathParam.FindAllStringSubmatch(op.path, -1) {
					if !declared[m[1]] {
						t.Errorf("%s %s: path parameter %s is not declared", op.method, op.path, m[1])
					}
					delete(declared, m[1])
				}
				for name := range declared {
					t.Errorf("%s %s: path parameter %s is not in the path", op.method, op.path, name)
				}
			}
		}},
		{"refs resolve", func(t *testing.T) {
			n := 0
			specRefs(doc, "", func(loc string, ref string) {
				n++
				if !strings.HasPrefix(ref, "#/components/") {
					t.Errorf("%s: $ref %q does not point into #/components/", loc, ref)
					return
				}
				if specResolve(doc, map[string]any{"$ref": ref}) == nil {
					t.Errorf("%s: $ref %q does not resolve", loc, ref)
				}
			})
			if n == 0 {
				t.Error("found no $ref at all; is the walk broken?")
			}
		}},
		{"served at /openapi.yaml", func(t *testing.T) {
			srv := newSpecServer(t)
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.yaml", nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("GET /openapi.yaml = %d, want 200", rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/yaml") {
				t.Errorf("GET /openapi.yaml Content-Type = %q, want application/yaml", ct)
			}
			if !bytes.Equal(rec.Body.Bytes(), schemas.OpenAPI) {
				t.Errorf("GET /openapi.yaml served %d bytes that differ from the %d embedded bytes", rec.Body.Len(), len(schemas.OpenAPI))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
}

// specRefs calls fn with the location (a JSON pointer) and value of every
// $ref in the tree.
func specRefs(node any, loc string, fn func(loc, ref string)) {
	switch n := node.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(n)) {
			if k == "$ref" {
				ref, _ := n[k].(string)
				fn(loc, ref)
				continue
			}
			specRefs(n[k], loc+"/"+strings.NewReplacer("~", "~0", "/", "~1").Replace(k), fn)
		}
	case []any:
		for i, v := range n {
			specRefs(v, fmt.Sprintf("%s/%d", loc, i), fn)
		}
	}
}

// specResolve follows a local $ref (a JSON pointer into doc), returning nil when
// it points nowhere. A node without $ref is returned as it is.
func specResolve(doc map[string]any, node any) any {
	m, ok := node.(map[string]any)
	if !ok {
		return node
	}
	ref, ok := m["$ref"].(string)
	if !ok {
		return node
	}
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var cur any = doc
	for _, tok := range strings.Split(ptr, "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		cm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = cm[tok]; !ok {
			return nil
		}
	}
	return cur
}

// TestOpenAPISecurityMatchesRoutes checks that each operation documents the
// permission the route table enforces: x-permission and a key requirement
// for protected routes, an empty security list for public ones.
func TestOpenAPISecurityMatchesRoutes(t *testing.T) {
	srv := newSpecServer(t)
	doc := loadSpec(t)
	schemes, _ := specResolve(doc, map[string]any{"$ref": "#/components/securitySchemes"}).(map[string]any)
	if schemes["ApiKeyHeader"] == nil || schemes["BearerAuth"] == nil {
		t.Fatalf("components.securitySchemes = %v, want ApiKeyHeader and BearerAuth", schemes)
	}
	for _, op := range specOps(t, doc) {
		perm, ok := srv.Permission(op.method, echoPath(op.path))
		if !ok {
			continue // TestOpenAPIMatchesRoutes reports it
		}
		where := op.method + " " + op.path
		sec, hasSec := op.op["security"].([]any)
		xp, _ := op.op["x-permission"].(string)
		if perm == auth.Public {
			if !hasSec || len(sec) != 0 || xp != "" {
				t.Errorf("%s is public: want security: [] and no x-permission, got %v and %q", where, op.op["security"], xp)
			}
			continue
		}
		if xp != string(perm) {
			t.Errorf("%s: x-permission = %q, want %q", where, xp, perm)
		}
		if len(sec) != 2 {
			t.Errorf("%s: security = %v, want ApiKeyHeader or BearerAuth", where, op.op["security"])
		}
		resp, _ := op.op["responses"].(map[string]any)
		for _, code := range []string{"401", "403"} {
			if resp[code] == nil {
				t.Errorf("%s does not document %s", where, code)
			}
		}
	}
}
