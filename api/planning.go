package api

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/abacus-ab/abacus/experiment"
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
	reply, err := s.askAnalyzer(c.Request().Context(), eventv1.SubjectPower, body)
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
	reply, err := s.askAnalyzer(ctx, eventv1.SubjectHistory, body)
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, reply)
}
