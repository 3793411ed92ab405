package api

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/cache"
	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// analyze serves a test's analysis report. The analyzer role stores the
// latest report of each test in the reports bucket; when that report is older
// than max_age seconds (default ReportMaxAge; 0 forces a fresh one), the
// handler asks an analyzer for a fresh report over NATS request-reply. When
// no analyzer answers it falls back to the stored report, marked stale.
// With consistent=true it first waits until ingest has stored every event
// acknowledged before the request (consistent.go), then asks for a fresh
// report.
func (s *Server) analyze(c echo.Context) error {
	ctx := c.Request().Context()
	t, err := s.lookup(ctx, c.Param("test_id"))
	if err != nil {
		return err
	}
	maxAge := s.cfg.ReportMaxAge
	if v := c.QueryParam("max_age"); v != "" {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || !(secs >= 0 && secs <= 1e9) {
			e := newError(http.StatusBadRequest, "max_age must be a number of seconds >= 0")
			e.body.Field = "max_age"
			return e
		}
		maxAge = time.Duration(secs * float64(time.Second))
	}
	if v := c.QueryParam("consistent"); v != "" {
		consistent, err := strconv.ParseBool(v)
		if err != nil {
			e := newError(http.StatusBadRequest, "consistent must be true or false")
			e.body.Field = "consistent"
			return e
		}
		if consistent {
			if err := s.waitIngested(ctx); err != nil {
				return err
			}
			maxAge = 0
		}
	}

	fresh := func(computedAt time.Time) bool {
		return s.now().Sub(computedAt) <= maxAge && !computedAt.Before(t.UpdatedAt)
	}
	// The in-process cache first: a hot report is served without a round
	// trip to NATS.
	if report, computedAt, ok := s.cachedReport(t.ID); ok && fresh(computedAt) {
		return reportResponse(c, report, false)
	}
	stored, computedAt, err := s.storedReport(ctx, t.ID)
	if err != nil {
		s.log.Warn("reading stored report", "experiment_id", t.ID, "err", err)
	}
	if stored != nil && fresh(computedAt) {
		s.cacheReport(t.ID, stored, computedAt)
		return reportResponse(c, stored, false)
	}

	report, err := s.requestAnalysis(ctx, t.ID)
	if err == nil {
		if at, err := experiment.ReportComputedAt(report); err == nil {
			s.cacheReport(t.ID, report, at)
		}
		return reportResponse(c, report, false)
	}
	var he *httpError
	if errors.As(err, &he) && he.status < 500 {
		return err
	}
	if stored != nil {
		s.log.Warn("serving a stale report", "experiment_id", t.ID, "err", err)
		return reportResponse(c, stored, true)
	}
	return err
}

func reportResponse(c echo.Context, report []byte, stale bool) error {
	c.Response().Header().Set("Abacus-Report-Stale", strconv.FormatBool(stale))
	return c.JSONBlob(http.StatusOK, report)
}

// cachedReport returns a report from the analysis layer: 8 bytes of its
// computation time (Unix nanoseconds), then the report's JSON.
func (s *Server) cachedReport(testID string) ([]byte, time.Time, bool) {
	if s.cache == nil {
		return nil, time.Time{}, false
	}
	v, ok := s.cache.Get(cache.LayerAnalysis, "report:"+testID)
	if !ok || len(v) < 8 {
		return nil, time.Time{}, false
	}
	return v[8:], time.Unix(0, int64(binary.BigEndian.Uint64(v))), true
}

func (s *Server) cacheReport(testID string, report []byte, computedAt time.Time) {
	if s.cache == nil {
		return
	}
	v := make([]byte, 8+len(report))
	binary.BigEndian.PutUint64(v, uint64(computedAt.UnixNano()))
	copy(v[8:], report)
	if err := s.cache.Set(cache.LayerAnalysis, "report:"+testID, v); err != nil {
		s.log.Debug("caching report", "experiment_id", testID, "err", err)
	}
}

// storedReport returns the stored report of a test and when it was computed.
func (s *Server) storedReport(ctx context.Context, testID string) ([]byte, time.Time, error) {
	e, err := s.reports.Get(ctx, testID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	at, err := experiment.ReportComputedAt(e.Value())
	if err != nil {
		return nil, time.Time{}, err
	}
	return e.Value(), at, nil
}

// requestAnalysis asks one analyzer (of the queue group) for a fresh report.
func (s *Server) requestAnalysis(ctx context.Context, testID string) ([]byte, error) {
	body, err := json.Marshal(eventv1.AnalyzeRequest{TestID: testID})
	if err != nil {
		return nil, err
	}
	return s.askAnalyzer(ctx, eventv1.SubjectAnalyze, body)
}

// askAnalyzer sends one request to the analyzers' queue group and maps the
// reply's error headers to HTTP errors.
func (s *Server) askAnalyzer(ctx context.Context, subject string, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AnalyzeTimeout)
	defer cancel()
	reply, err := s.req.RequestMsgWithContext(ctx, &nats.Msg{Subject: subject, Data: body})
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, unavailable("no analyzer is running: start abacus serve with the analyzer target", err)
	case errors.Is(err, context.DeadlineExceeded):
		return nil, &httpError{status: http.StatusGatewayTimeout, body: errorBody{Error: "the analyzer did not answer in time"}, cause: err}
	case err != nil:
		return nil, unavailable("the analyzer could not be reached", err)
	}
	if msg := reply.Header.Get(eventv1.HeaderError); msg != "" {
		code, _ := strconv.Atoi(reply.Header.Get(eventv1.HeaderStatus))
		if code < 400 || code > 599 {
			code = http.StatusInternalServerError
		}
		if code >= 500 {
			return nil, &httpError{status: code, body: errorBody{Error: "the analysis failed; see the analyzer's log"}, cause: errors.New(msg)}
		}
		return nil, newError(code, "%s", msg)
	}
	return reply.Data, nil
}
