package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// decodeJSON reads a JSON request body into v. It requires a JSON content
// type (415), limits the body to maxBytes (413), rejects unknown fields,
// type mismatches, malformed JSON and trailing data (400), naming the field
// or offset at fault.
func decodeJSON(c echo.Context, maxBytes int64, v any) error {
	r := c.Request()
	ct := r.Header.Get(echo.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || !isJSON(mt) {
		return newError(http.StatusUnsupportedMediaType, "Content-Type must be application/json, got %q", ct)
	}
	body := http.MaxBytesReader(c.Response(), r.Body, maxBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return newError(http.StatusBadRequest, "request body must hold a single JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return newError(http.StatusBadRequest, "request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return newError(http.StatusBadRequest, "request body is truncated JSON")
	case errors.As(err, &se):
		return newError(http.StatusBadRequest, "malformed JSON at byte %d: %s", se.Offset, se.Error())
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return newError(http.StatusBadRequest, "request body must be a JSON object, not %s", te.Value)
		}
		e := newError(http.StatusBadRequest, "%s must be %s, not %s", field, jsonKind(te.Type.Kind().String()), te.Value)
		e.body.Field = field
		return e
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		e := newError(http.StatusBadRequest, "unknown field %q", name)
		e.body.Field = name
		return e
	}
	return newError(http.StatusBadRequest, "invalid JSON: %v", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "float64", "float32", "int", "int64", "int32", "uint64":
		return "a number"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	return fmt.Sprintf("a %s", goKind)
}

// decodeEventRequest is decodeJSON for the data plane's single-event
// requests: it reads the body, decodes it with fastDecode, and only when
// that refuses decodes it again with encoding/json, so that every error
// reads as decodeJSON's.
func decodeEventRequest[T assignRequest | recordRequest](c echo.Context, maxBytes int64, v *T) error {
	r := c.Request()
	ct := r.Header.Get(echo.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || !isJSON(mt) {
		return newError(http.StatusUnsupportedMediaType, "Content-Type must be application/json, got %q", ct)
	}
	data, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, maxBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return newError(http.StatusBadRequest, "request body is truncated: %v", err)
	}
	if fastDecode(data, v) {
		return nil
	}
	*v = *new(T)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return newError(http.StatusBadRequest, "request body must hold a single JSON object")
	}
	return nil
}
