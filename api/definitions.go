package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/registry"
)

// createTestRequest is the body of POST /tests. Pointers tell an omitted
// optional field from a zero.
type createTestRequest struct {
	TestName string `json:"test_name"`
	// Key is an optional unique name for OpenFeature clients.
	Key              string               `json:"key"`
	TestType         experiment.Type      `json:"test_type"`
	Description      string               `json:"description"`
	Variants         []experiment.Variant `json:"variants"`
	ControlVariantID string               `json:"control_variant_id"`
	PrimaryMetric    string               `json:"primary_metric"`
	MinSampleSize    *int64               `json:"min_sample_size"`
	ConfidenceLevel  *float64             `json:"confidence_level"`

	// Metrics declares how metrics are analysed; MultipleComparison is holm
	// (default) or benjamini_hochberg.
	Metrics            []experiment.Metric `json:"metrics"`
	MultipleComparison string              `json:"multiple_comparison"`

	// Analysis options (experiment/options.go).
	AnalysisMethod    string               `json:"analysis_method"`
	SequentialTuningN *int64               `json:"sequential_tuning_n"`
	Bayesian          *experiment.Bayesian `json:"bayesian"`
	CUPED             *experiment.CUPED    `json:"cuped"`
	Segments          []string             `json:"segments"`
}

func (s *Server) createTest(c echo.Context) error {
	var req createTestRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	now := s.now().UTC()
	t := &experiment.Test{
		ID:               uuid.NewString(),
		Name:             strings.TrimSpace(req.TestName),
		Key:              req.Key,
		Type:             req.TestType,
		Description:      req.Description,
		Variants:         req.Variants,
		ControlVariantID: req.ControlVariantID,
		PrimaryMetric:    req.PrimaryMetric,
		Status:           experiment.StatusDraft,
		CreatedAt:        now,
		UpdatedAt:        now,
	}
	t.Metrics, t.MultipleComparison = req.Metrics, req.MultipleComparison
	t.AnalysisMethod, t.Bayesian, t.CUPED, t.Segments = req.AnalysisMethod, req.Bayesian, req.CUPED, req.Segments
	if req.SequentialTuningN != nil {
		if *req.SequentialTuningN < experiment.MinSequentialTuningN || *req.SequentialTuningN > experiment.MaxSequentialTuningN {
			return experiment.Invalid("sequential_tuning_n", "must be in [%d, %d] (total users at which the confidence sequence is tightest)",
				experiment.MinSequentialTuningN, experiment.MaxSequentialTuningN)
		}
		t.SequentialTuningN = *req.SequentialTuningN
	}
	if req.MinSampleSize != nil {
		if *req.MinSampleSize < 2 {
			return experiment.Invalid("min_sample_size", "must be at least 2")
		}
		t.MinSampleSize = *req.MinSampleSize
	}
	if req.ConfidenceLevel != nil {
		if !(*req.ConfidenceLevel >= 0.5 && *req.ConfidenceLevel < 1) {
			return experiment.Invalid("confidence_level", "must be in [0.5, 1)")
		}
		t.ConfidenceLevel = *req.ConfidenceLevel
	}
	if len(req.Description) > 4096 {
		return experiment.Invalid("description", "is longer than 4096 bytes")
	}
	t.SetDefaults()
	if err := t.Validate(); err != nil {
		return err
	}
	if err := s.reg.Create(c.Request().Context(), t); err != nil {
		var taken *registry.KeyTakenError
		if errors.As(err, &taken) {
			e := newError(http.StatusConflict, "key: %s is taken by test %s", taken.Key, taken.Holder)
			e.body.Field = "key"
			e.body.Detail = map[string]any{"test_id": taken.Holder}
			return e
		}
		return unavailable("storing the test failed", err)
	}
	s.log.Info("test created", "experiment_id", t.ID, "test_type", t.Type, "variants", len(t.Variants))
	return c.JSON(http.StatusCreated, t)
}

type listResponse struct {
	Tests []*experiment.Test `json:"tests"`
	Total int                `json:"total"`
}

func (s *Server) startTest(c echo.Context) error {
	return s.transition(c, "started", (*experiment.Test).Start)
}

func (s *Server) stopTest(c echo.Context) error {
	return s.transition(c, "stopped", (*experiment.Test).Stop)
}

func (s *Server) transition(c echo.Context, verb string, step func(*experiment.Test, time.Time) error) error {
	id := c.Param("test_id")
	var from experiment.Status
	t, err := s.reg.Update(c.Request().Context(), id, func(t *experiment.Test) error {
		from = t.Status
		return step(t, s.now().UTC())
	})
	if err != nil {
		if errors.Is(err, experiment.ErrConflict) {
			e := newError(http.StatusConflict, "test %s is %s: it cannot be %s", id, from, verb)
			e.body.Detail = map[string]any{"status": from}
			e.cause = err
			return e
		}
		if errors.Is(err, experiment.ErrNotFound) {
			return err
		}
		return unavailable("updating the test failed", err)
	}
	s.log.Info("test "+verb, "experiment_id", id)
	return c.JSON(http.StatusOK, t)
}

// lookup returns a test; a registry failure (NATS unreachable for an id not
// in memory) is a 503, an unknown id a 404.
func (s *Server) lookup(ctx context.Context, id string) (*experiment.Test, error) {
	t, err := s.reg.Get(ctx, id)
	if err != nil && !errors.Is(err, experiment.ErrNotFound) {
		return nil, unavailable("reading the test failed; retry later", err)
	}
	return t, err
}
