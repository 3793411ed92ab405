package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/cache"
	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// power serves POST /api/ab-testing/power. The plan is a pure function of
// the request (analysis/stats.Plan, no I/O), so the API computes it itself
// and keeps the answers in the general layer, keyed by a digest of the
// decoded request.
func (s *Server) power(c echo.Context) error {
	var req stats.PowerRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	canonical, err := json.Marshal(req)
	if err != nil {
		return err
	}
	plan := func(context.Context) ([]byte, error) {
		resp, err := stats.Plan(req, experiment.MaxVariants)
		if err != nil {
			return nil, err
		}
		return json.Marshal(resp)
	}
	var reply []byte
	if s.cache != nil {
		reply, err = cache.CachedCodec(c.Request().Context(), s.cache, cache.LayerGeneral, "power:"+digest(canonical), cache.Bytes{}, plan)
	} else {
		reply, err = plan(c.Request().Context())
	}
	if pe := (*stats.PlanError)(nil); errors.As(err, &pe) {
		return newError(http.StatusBadRequest, "%s", pe.Error())
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
