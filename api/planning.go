package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/cache"
	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// power serves POST /power. The API holds no statistics: it checks that the
// body is a JSON object and forwards it to an analyzer, which validates it
// (400 with the reason) and computes the plan.
func (s *Server) power(c echo.Context) error {
	var body json.RawMessage
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &body); err != nil {
		return err
	}
	if len(body) == 0 || body[0] != '{' {
		return newError(http.StatusBadRequest, "the body must be a JSON object")
	}
	ask := func(ctx context.Context) ([]byte, error) { return s.askAnalyzer(ctx, eventv1.SubjectPower, body) }
	var reply []byte
	var err error
	if s.cache != nil {
		// A pure function of the request: the general layer keeps answers.
		reply, err = cache.CachedCodec(c.Request().Context(), s.cache, cache.LayerGeneral, "power:"+digest(body), cache.Bytes{}, ask)
	} else {
		reply, err = ask(c.Request().Context())
	}
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, reply)
}

// analyzeHistory serves GET .../analyze/history: the analyzer reads the
// snapshots it wrote to ClickHouse (the API has no ClickHouse access).
func (s *Server) analyzeHistory(c echo.Context) error {
	ctx := c.Request().Context()
	t, err := s.lookup(ctx, c.Param("test_id"))
	if err != nil {
		return err
	}
	metric := c.QueryParam("metric")
	if metric != "" && !experiment.ValidID(metric) {
		e := newError(http.StatusBadRequest, "metric is not a valid metric name")
		e.body.Field = "metric"
		return e
	}
	body, err := json.Marshal(eventv1.HistoryRequest{TestID: t.ID, Metric: metric})
	if err != nil {
		return err
	}
	ask := func(ctx context.Context) ([]byte, error) { return s.askAnalyzer(ctx, eventv1.SubjectHistory, body) }
	var reply []byte
	if rev, ok := s.reportRevision(c, t.ID); ok && s.cache != nil {
		// The history changes when the analyzer stores a report: the
		// query layer keeps it per report revision.
		key := cache.Key("history", t.ID, metric, rev)
		reply, err = cache.CachedCodec(ctx, s.cache, cache.LayerQuery, key, cache.Bytes{}, ask)
	} else {
		reply, err = ask(ctx)
	}
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, reply)
}
