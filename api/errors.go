package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/abacus-ab/abacus/experiment"
)

// errorBody is the JSON shape of every error the API returns.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	// Rule names the input validation rule that rejected the request
	// (sql_injection, xss, max_length, ...).
	Rule string `json:"rule,omitempty"`
	// Detail carries extra machine-readable context, such as a test's status.
	Detail map[string]any `json:"detail,omitempty"`
}

// httpError is an error with a status code and a message fit for clients.
type httpError struct {
	status int
	body   errorBody
	cause  error
}

func (e *httpError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%d %s: %v", e.status, e.body.Error, e.cause)
	}
	return fmt.Sprintf("%d %s", e.status, e.body.Error)
}

func (e *httpError) Unwrap() error { return e.cause }

func newError(status int, format string, args ...any) *httpError {
	return &httpError{status: status, body: errorBody{Error: fmt.Sprintf(format, args...)}}
}

// unavailable is a 503 for a dependency that is down; cause is logged, not sent.
func unavailable(msg string, cause error) *httpError {
	return &httpError{status: http.StatusServiceUnavailable, body: errorBody{Error: msg}, cause: cause}
}

// errorHandler maps every error a handler returns to one JSON response:
// validation errors 400, experiment.ErrNotFound 404, experiment.ErrConflict
// 409, echo's own errors (404/405 routes, 413 bodies) with their status, and
// anything else 500. Each 5xx is logged once here, never by handlers.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, body := classify(err)
		var out any = body
		if strings.HasPrefix(c.Path(), ofrepPrefix) {
			var oe *ofrepError
			status, oe = ofrepErrorFor(err, c.Param("key"))
			if oe != nil {
				out = oe
			} else {
				out = nil
			}
		}
		if status >= 500 {
			log.Error("request failed", "method", c.Request().Method, "route", c.Path(), "status", status, "err", err)
		}
		var werr error
		if c.Request().Method == http.MethodHead || out == nil {
			werr = c.NoContent(status)
		} else {
			werr = c.JSON(status, out)
		}
		if werr != nil {
			log.Debug("writing error response", "err", werr)
		}
	}
}

func classify(err error) (int, errorBody) {
	var he *httpError
	var ve *experiment.ValidationError
	var ee *echo.HTTPError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he.status, he.body
	case errors.As(err, &ve):
		return http.StatusBadRequest, errorBody{Error: ve.Error(), Field: ve.Field}
	case errors.Is(err, experiment.ErrNotFound):
		return http.StatusNotFound, errorBody{Error: "test not found"}
	case errors.Is(err, experiment.ErrConflict):
		return http.StatusConflict, errorBody{Error: err.Error()}
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
	case errors.As(err, &ee):
		msg := http.StatusText(ee.Code)
		if m, ok := ee.Message.(string); ok && ee.Code < 500 {
			msg = m
		}
		return ee.Code, errorBody{Error: strings.ToLower(msg)}
	}
	return http.StatusInternalServerError, errorBody{Error: "internal server error"}
}
