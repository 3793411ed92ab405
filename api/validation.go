package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacus-ab/abacus/internal/validate"
)

// inputValidator checks request input (met by *validate.Validator).
type inputValidator interface {
	Sanitize(body []byte) ([]byte, error)
	Query(q url.Values) error
	Params(names, values []string) error
	Plain(s string) bool
	Config() validate.Config
}

// newInputRejections counts requests rejected by input validation.
func newInputRejections(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "abacus_input_rejected_total",
		Help: "Requests rejected by input validation, by rule (sql_injection, xss, command_injection, max_length, max_depth, max_elements, invalid_utf8, control_character, null_byte, invalid_json, body_too_large).",
	}, []string{"rule"})
	reg.MustRegister(c)
	return c
}

// validateInput runs first (after CORS), before rate limiting and
// authentication. It refuses a body larger than Config.MaxBodyBytes with 413
// before reading it (by Content-Length; validateBody bounds a body of
// unknown length while reading it), and checks every path and query
// parameter (see internal/validate): a violation answers 400 with the
// field and the rule, and never the value.
func (s *Server) validateInput(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > s.cfg.MaxBodyBytes {
			s.inputRejections.WithLabelValues("body_too_large").Inc()
			return newError(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", s.cfg.MaxBodyBytes)
		}
		if s.validator == nil {
			return next(c)
		}
		if err := s.validator.Params(c.ParamNames(), c.ParamValues()); err != nil {
			return s.rejectInput(err)
		}
		if r.URL.RawQuery != "" {
			q := r.URL.Query()
			if err := s.validator.Query(q); err != nil {
				return s.rejectInput(err)
			}
			r.URL.RawQuery = q.Encode()
		}
		return next(c)
	}
}

// validateBody runs after authentication, so that the server reads and
// scans bodies of authenticated clients only (the seed's order puts all
// validation first; a body of 10 MB from anyone would then cost a read and
// a scan before the key is even looked at). It checks every string and
// object key of a JSON body, with its JSON path, and removes null bytes
// from free-text fields: the handler reads the cleaned body.
func (s *Server) validateBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if s.validator == nil || r.Body == nil || r.Body == http.NoBody {
			return next(c)
		}
		mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
		if !isJSON(mt) || c.Path() == batchPath {
			// Other types: every handler but the batch one answers 415 (it
			// takes NDJSON too). A batch's events are checked one by one by
			// its handler, so that one bad event is rejected alone.
			return next(c)
		}
		body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, s.cfg.MaxBodyBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				s.inputRejections.WithLabelValues("body_too_large").Inc()
				return err
			}
			// The client stopped sending (a cut connection, a timeout).
			return newError(http.StatusBadRequest, "request body is truncated: %v", err)
		}
		if len(bytes.TrimSpace(body)) > 0 {
			if body, err = s.validator.Sanitize(body); err != nil {
				return s.rejectInput(err)
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		return next(c)
	}
}

// rejectInput answers 400 for a violation, naming field and rule.
func (s *Server) rejectInput(err error) error {
	return s.inputError(err, "")
}

// inputError is the 400 of a violation, its field prefixed with prefix
// (a batch element's "[i]").
func (s *Server) inputError(err error, prefix string) *httpError {
	var v *validate.Violation
	if !errors.As(err, &v) {
		return newError(http.StatusBadRequest, "invalid input")
	}
	s.inputRejections.WithLabelValues(v.Rule).Inc()
	field := v.Field
	if prefix != "" {
		field = prefix + dotted(field)
	}
	msg := v.Message
	if field != "" {
		msg = fmt.Sprintf("%s: %s", field, v.Message)
	}
	e := newError(http.StatusBadRequest, "%s", msg)
	e.body.Field = field
	e.body.Rule = v.Rule
	return e
}

// isJSON reports a media type that decodeJSON accepts.
func isJSON(mt string) bool {
	return mt == echo.MIMEApplicationJSON || strings.HasSuffix(mt, "+json")
}

// dotted prefixes a field path with a dot unless it is empty or an index.
func dotted(f string) string {
	if f == "" || f[0] == '[' {
		return f
	}
	return "." + f
}
