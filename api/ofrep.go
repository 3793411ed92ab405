package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/validate"
	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// OpenFeature Remote Evaluation Protocol (OFREP, v0.3.0): the standard
// remote evaluation API of OpenFeature, so that any OpenFeature SDK with an
// OFREP provider evaluates Abacus tests. A flag is a test, named by its key
// or its id; its variants are the flag's variants, and their values are the
// variants' values (their configurations when none is set). An evaluation
// is an assignment: it calls the same builder as assign (newAssignment,
// hence experiment.Decide) and publishes the same exposure event.

// ofrepPrefix starts every OFREP route; errorHandler answers errors on them
// in OFREP's shapes.
const ofrepPrefix = "/ofrep/"

// OFREP reasons and error codes.
const (
	ofrepSplit    = "SPLIT"
	ofrepDisabled = "DISABLED"

	ofrepParseError      = "PARSE_ERROR"
	ofrepTargetingKey    = "TARGETING_KEY_MISSING"
	ofrepInvalidContext  = "INVALID_CONTEXT"
	ofrepFlagNotFound    = "FLAG_NOT_FOUND"
	ofrepGeneral         = "GENERAL"
	ofrepMaxContextBytes = 64 << 10
)

type ofrepEvaluation struct {
	Key      string         `json:"key"`
	Value    any            `json:"value,omitempty"`
	Reason   string         `json:"reason"`
	Variant  string         `json:"variant,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

type ofrepBulk struct {
	Flags []ofrepEvaluation `json:"flags"`
}

// ofrepError is an OFREP error answer: 400 and 404 with key, errorCode and
// errorDetails, 5xx with errorDetails alone.
type ofrepError struct {
	status int
	Key    string `json:"key,omitempty"`
	Code   string `json:"errorCode,omitempty"`
	Detail string `json:"errorDetails,omitempty"`
}

func (e *ofrepError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, e.Code, e.Detail)
}

// ofrepErrorFor renders any error of an OFREP route: its own errors as they
// are; 401, 403 and 429 without a body (Retry-After and WWW-Authenticate
// are set already); other client errors as PARSE_ERROR, or INVALID_CONTEXT
// when input validation rejected a value of the context; server errors as
// errorDetails.
func ofrepErrorFor(err error, key string) (int, *ofrepError) {
	var oe *ofrepError
	if errors.As(err, &oe) {
		return oe.status, oe
	}
	status, body := classify(err)
	switch {
	case status == http.StatusUnauthorized, status == http.StatusForbidden, status == http.StatusTooManyRequests:
		return status, nil
	case status == http.StatusNotFound && key != "":
		return status, &ofrepError{Key: key, Code: ofrepFlagNotFound, Detail: body.Error}
	case status >= 500:
		return status, &ofrepError{Detail: body.Error}
	case body.Rule != "" && body.Rule != validate.RuleInvalidJSON && body.Rule != validate.RuleInvalidUTF8:
		return status, &ofrepError{Key: key, Code: ofrepInvalidContext, Detail: body.Error}
	}
	return status, &ofrepError{Key: key, Code: ofrepParseError, Detail: body.Error}
}

// ofrepEvaluate is POST /ofrep/v1/evaluate/flags/{key}.
func (s *Server) ofrepEvaluate(c echo.Context) error {
	ctx := c.Request().Context()
	key := c.Param("key")
	t, err := s.flag(c, key)
	if err != nil {
		return err
	}
	if t.Status != experiment.StatusRunning {
		return writeJSON(c, http.StatusOK, &ofrepEvaluation{Key: key, Reason: ofrepDisabled, Metadata: flagMetadata(t, nil)})
	}
	in, err := readOFREPContext(c, key)
	if err != nil {
		return err
	}
	ev, v, err := newAssignment(t, in, s.now().UTC())
	var he *httpError
	if errors.As(err, &he) && he.status == http.StatusConflict {
		// Stopped since it was read.
		return writeJSON(c, http.StatusOK, &ofrepEvaluation{Key: key, Reason: ofrepDisabled, Metadata: flagMetadata(t, nil)})
	}
	if err != nil {
		return contextError(err, key)
	}
	if _, err := s.publish(ctx, eventv1.SubjectAssignment, t.ID, ev.EventID, &ev); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, &ofrepEvaluation{Key: key, Value: v.FlagValue(), Reason: ofrepSplit, Variant: v.ID, Metadata: flagMetadata(t, &v)})
}

// ofrepBulkEvaluate is POST /ofrep/v1/evaluate/flags: every running test
// for the context, with an ETag of the answer; If-None-Match with it
// answers 304. The exposures of the evaluated tests are published as one
// batch (an exposure's id is the same for a user and test every time, so a
// client polling the bulk endpoint records each exposure once).
func (s *Server) ofrepBulkEvaluate(c echo.Context) error {
	in, err := readOFREPContext(c, "")
	if err != nil {
		return err
	}
	now := s.now().UTC()
	tests := s.reg.List()
	slices.SortFunc(tests, func(a, b *experiment.Test) int { return strings.Compare(flagKey(a), flagKey(b)) })
	resp := ofrepBulk{Flags: []ofrepEvaluation{}}
	var exposures []element
	for _, t := range tests {
		if t.Status != experiment.StatusRunning {
			continue
		}
		ev, v, err := newAssignment(t, in, now)
		if err != nil {
			return contextError(err, "")
		}
		data, err := encodeEvent(&ev)
		if err != nil {
			return fmt.Errorf("encoding an assignment event: %w", err)
		}
		exposures = append(exposures, element{index: len(exposures), subject: eventv1.SubjectAssignment, testID: t.ID, eventID: ev.EventID, variantID: v.ID, data: data})
		resp.Flags = append(resp.Flags, ofrepEvaluation{Key: flagKey(t), Value: v.FlagValue(), Reason: ofrepSplit, Variant: v.ID, Metadata: flagMetadata(t, &v)})
	}
	body, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	// The tag covers the user and the attributes too: another context
	// never matches it, even with the same answer, so that its exposures
	// are published (a 304 publishes none).
	hash := sha256.New()
	hash.Write(body)
	hash.Write([]byte{0})
	hash.Write([]byte(in.UserID))
	for _, k := range slices.Sorted(maps.Keys(in.Attributes)) {
		hash.Write([]byte{0})
		hash.Write([]byte(k))
		hash.Write([]byte{0})
		hash.Write([]byte(in.Attributes[k]))
	}
	etag := `"` + hex.EncodeToString(hash.Sum(nil)[:16]) + `"`
	c.Response().Header().Set("ETag", etag)
	if etagMatch(c.Request().Header.Get("If-None-Match"), etag) {
		return c.NoContent(http.StatusNotModified)
	}
	if len(exposures) > 0 && s.async != nil {
		results := make([]batchItem, len(exposures))
		pctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.PublishTimeout)
		defer cancel()
		s.publishBatch(pctx, packBatch(exposures), results)
		for _, r := range results {
			if r.Status != outcomeAccepted {
				return &ofrepError{status: http.StatusServiceUnavailable, Detail: "the event bus did not acknowledge the exposures; retry later"}
			}
		}
	}
	return c.JSONBlob(http.StatusOK, body)
}

// flag returns the test a flag key names: the test with that key, else the
// test with that id.
func (s *Server) flag(c echo.Context, key string) (*experiment.Test, error) {
	ctx := c.Request().Context()
	t, err := s.reg.ByKey(ctx, key)
	if errors.Is(err, experiment.ErrNotFound) {
		t, err = s.lookup(ctx, key)
	}
	if errors.Is(err, experiment.ErrNotFound) {
		return nil, &ofrepError{status: http.StatusNotFound, Key: key, Code: ofrepFlagNotFound, Detail: fmt.Sprintf("no test has the key or id %s", truncateID(key))}
	}
	return t, err
}

// flagKey is the key a test answers to in a bulk evaluation.
func flagKey(t *experiment.Test) string {
	if t.Key != "" {
		return t.Key
	}
	return t.ID
}

// flagMetadata is an evaluation's metadata: flat scalars that name the test
// and the variant.
func flagMetadata(t *experiment.Test, v *experiment.Variant) map[string]any {
	m := map[string]any{"test_id": t.ID, "test_type": string(t.Type), "status": string(t.Status)}
	if t.Key != "" {
		m["test_key"] = t.Key
	}
	if v != nil && v.Name != "" {
		m["variant_name"] = v.Name
	}
	return m
}

// readOFREPContext reads an evaluation request, {"context": {...}}: its
// targetingKey is the user id and its other fields, strings, numbers or
// booleans, are the assignment's attributes.
func readOFREPContext(c echo.Context, key string) (*eventInput, error) {
	parseErr := func(format string, args ...any) error {
		return &ofrepError{status: http.StatusBadRequest, Key: key, Code: ofrepParseError, Detail: fmt.Sprintf(format, args...)}
	}
	invalid := func(code, format string, args ...any) error {
		return &ofrepError{status: http.StatusBadRequest, Key: key, Code: code, Detail: fmt.Sprintf(format, args...)}
	}
	data, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, ofrepMaxContextBytes))
	if err != nil {
		return nil, parseErr("reading the request body: %v", err)
	}
	var req struct {
		Context map[string]json.RawMessage `json:"context"`
	}
	if len(bytes.TrimSpace(data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&req); err != nil {
			return nil, parseErr("the body must be a JSON object with a context object: %v", err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, parseErr("the body must hold a single JSON object")
		}
	}
	raw, ok := req.Context["targetingKey"]
	if !ok || string(raw) == "null" {
		return nil, invalid(ofrepTargetingKey, "context.targetingKey is required: it is the user id that the test assigns")
	}
	in := &eventInput{}
	if err := json.Unmarshal(raw, &in.UserID); err != nil {
		return nil, invalid(ofrepInvalidContext, "context.targetingKey must be a string")
	}
	if in.UserID == "" {
		return nil, invalid(ofrepTargetingKey, "context.targetingKey is empty: it is the user id that the test assigns")
	}
	for name, raw := range req.Context {
		if name == "targetingKey" {
			continue
		}
		val, ok := contextScalar(raw)
		if !ok {
			return nil, invalid(ofrepInvalidContext, "context.%s must be a string, number or boolean (it is recorded as an assignment attribute)", truncateID(name))
		}
		if in.Attributes == nil {
			in.Attributes = make(map[string]string, len(req.Context))
		}
		in.Attributes[name] = val
	}
	return in, nil
}

// contextScalar renders a context value as an attribute: a string as it
// is, a number as written, a boolean as true or false. Null, objects and
// arrays are not attributes.
func contextScalar(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
		return s, true
	case 't', 'f':
		b, err := strconv.ParseBool(string(raw))
		return strconv.FormatBool(b), err == nil
	case 'n', '{', '[':
		return "", false
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", false
	}
	return n.String(), true
}

// contextError turns a builder's error for an evaluation into OFREP's: an
// invalid user id or attribute is INVALID_CONTEXT; a test stopped under
// the evaluation is not an error (the caller answers DISABLED next time).
func contextError(err error, key string) error {
	var ve *experiment.ValidationError
	if errors.As(err, &ve) {
		field := strings.Replace(ve.Field, "user_id", "targetingKey", 1)
		field = strings.Replace(field, "attributes", "context", 1)
		return &ofrepError{status: http.StatusBadRequest, Key: key, Code: ofrepInvalidContext, Detail: field + ": " + ve.Message}
	}
	return err
}

// etagMatch reports whether an If-None-Match header names etag (or is *).
func etagMatch(header, etag string) bool {
	for _, v := range strings.Split(header, ",") {
		v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
		if v == etag || v == "*" {
			return true
		}
	}
	return false
}

// flagDefinitions is the body of GET /api/ab-testing/flags.
type flagDefinitions struct {
	// Tests are every test's definition, sorted by id: a local evaluator
	// (the Go SDK's OpenFeature provider) calls experiment.Decide on them,
	// as the server does, and finds a flag by key or id.
	Tests []*experiment.Test `json:"tests"`
}

// listFlags is GET /api/ab-testing/flags: the definitions a local
// evaluator needs, with an ETag; If-None-Match with it answers 304, so
// that clients can poll cheaply. The rendered body is cached per registry
// generation.
func (s *Server) listFlags(c echo.Context) error {
	gen := s.reg.Generation()
	r := s.flagsBody.Load()
	if r == nil || r.gen != gen {
		tests := s.reg.List()
		slices.SortFunc(tests, func(a, b *experiment.Test) int { return strings.Compare(a.ID, b.ID) })
		body, err := json.Marshal(flagDefinitions{Tests: tests})
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		r = &renderedFlags{gen: gen, body: body, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		s.flagsBody.Store(r)
	}
	c.Response().Header().Set("ETag", r.etag)
	if etagMatch(c.Request().Header.Get("If-None-Match"), r.etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.JSONBlob(http.StatusOK, r.body)
}

// renderedFlags is the cached body of listFlags for one registry
// generation.
type renderedFlags struct {
	gen  uint64
	body []byte
	etag string
}
