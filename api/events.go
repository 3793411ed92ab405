package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// assignmentNamespace makes assignment event ids: UUIDv5 of (test, user), so
// that repeated assignments of one user within the stream's duplicate window
// are stored once.
var assignmentNamespace = uuid.MustParse("6f1c2b0e-4b8e-4d0a-9c59-1d0b7f3a6a10")

type assignRequest struct {
	UserID string `json:"user_id"`
	// Attributes describe the user for segment analysis (optional).
	Attributes map[string]string `json:"attributes"`
}

type assignResponse struct {
	TestID        string         `json:"test_id"`
	UserID        string         `json:"user_id"`
	VariantID     string         `json:"variant_id"`
	VariantName   string         `json:"variant_name"`
	Configuration map[string]any `json:"configuration"`
}

func (s *Server) assign(c echo.Context) error {
	ctx := c.Request().Context()
	t, err := s.lookup(ctx, c.Param("test_id"))
	if err != nil {
		return err
	}
	var req assignRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := experiment.ValidateUserID("user_id", req.UserID); err != nil {
		return err
	}
	if err := experiment.ValidateAttributes("attributes", req.Attributes); err != nil {
		return err
	}
	if t.Status != experiment.StatusRunning {
		return statusConflict(t, "users can be assigned only while it is running")
	}
	v := experiment.Assign(t, req.UserID)
	ev := eventv1.Assignment{
		EventID:    uuid.NewSHA1(assignmentNamespace, []byte(t.ID+"\x00"+req.UserID)).String(),
		TestID:     t.ID,
		UserID:     req.UserID,
		VariantID:  v.ID,
		Timestamp:  s.now().UTC(),
		Attributes: req.Attributes,
	}
	if _, err := s.publish(ctx, eventv1.SubjectAssignment, t.ID, ev.EventID, &ev); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, assignResponse{
		TestID:        t.ID,
		UserID:        req.UserID,
		VariantID:     v.ID,
		VariantName:   v.Name,
		Configuration: v.Configuration,
	})
}

type recordRequest struct {
	UserID    string              `json:"user_id"`
	VariantID string              `json:"variant_id"`
	Metrics   map[string]*float64 `json:"metrics"`
	EventID   string              `json:"event_id"`
	// Covariates are pre-experiment values of some of Metrics, for CUPED.
	Covariates map[string]*float64 `json:"covariates"`
}

type recordResponse struct {
	Status    string `json:"status"`
	EventID   string `json:"event_id"`
	TestID    string `json:"test_id"`
	Duplicate bool   `json:"duplicate"`
}

// eventIDPattern is what a client-supplied event id may look like.
var eventIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)

func (s *Server) record(c echo.Context) error {
	ctx := c.Request().Context()
	t, err := s.lookup(ctx, c.Param("test_id"))
	if err != nil {
		return err
	}
	var req recordRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := experiment.ValidateUserID("user_id", req.UserID); err != nil {
		return err
	}
	variant, err := resultVariant(t, req.UserID, req.VariantID)
	if err != nil {
		return err
	}
	req.VariantID = variant
	metrics, herr := checkMetrics(req.Metrics)
	if herr != nil {
		return herr
	}
	covariates, herr := checkCovariates(req.Covariates, metrics)
	if herr != nil {
		return herr
	}
	if req.EventID != "" && !eventIDPattern.MatchString(req.EventID) {
		return experiment.Invalid("event_id", "must be 1-64 characters of letters, digits and _ . : -")
	}
	if t.Status != experiment.StatusRunning {
		return statusConflict(t, "results can be recorded only while it is running")
	}
	ev := eventv1.Result{
		EventID:    req.EventID,
		TestID:     t.ID,
		UserID:     req.UserID,
		VariantID:  req.VariantID,
		Metrics:    metrics,
		Timestamp:  s.now().UTC(),
		Covariates: covariates,
	}
	if ev.EventID == "" {
		ev.EventID = uuid.Must(uuid.NewV7()).String()
	}
	ack, err := s.publish(ctx, eventv1.SubjectResult, t.ID, ev.EventID, &ev)
	if err != nil {
		// The event may still have reached the stream (its ack was lost):
		// name its id so that a retry with it is stored once.
		var he *httpError
		if errors.As(err, &he) {
			he.body.Detail = map[string]any{"event_id": ev.EventID}
		}
		return err
	}
	return c.JSON(http.StatusAccepted, recordResponse{Status: "accepted", EventID: ev.EventID, TestID: t.ID, Duplicate: ack.Duplicate})
}

func statusConflict(t *experiment.Test, why string) error {
	e := newError(http.StatusConflict, "test %s is %s: %s", t.ID, t.Status, why)
	e.body.Detail = map[string]any{"status": t.Status}
	return e
}

// publish sends one event and waits, at most PublishTimeout, for JetStream to
// acknowledge it. The event id is the message id, so JetStream drops a
// retried duplicate (ack.Duplicate). Failure is a 503: the caller may retry.
func (s *Server) publish(ctx context.Context, subject, testID, eventID string, v any) (*jetstream.PubAck, error) {
	data, err := encodeEvent(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %s event: %w", subject, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	ack, err := s.pub.Publish(ctx, subject, data, jetstream.WithMsgID(msgID(subject, testID, eventID)), jetstream.WithExpectStream(eventv1.Stream))
	if err != nil {
		s.metrics.published.WithLabelValues(subject, "error").Inc()
		return nil, unavailable("the event bus did not acknowledge the event; retry later", err)
	}
	outcome := "ok"
	if ack.Duplicate {
		outcome = "duplicate"
	}
	s.metrics.published.WithLabelValues(subject, outcome).Inc()
	return ack, nil
}

// checkCovariates validates a result's covariates: each names one of the
// event's metrics and is a number (not null).
func checkCovariates(in map[string]*float64, metrics map[string]float64) (map[string]float64, *httpError) {
	if len(in) == 0 {
		return nil, nil
	}
	invalid := func(field, format string, args ...any) *httpError {
		e := newError(http.StatusBadRequest, format, args...)
		e.body.Field = field
		return e
	}
	out := make(map[string]float64, len(in))
	for name, v := range in {
		if _, ok := metrics[name]; !ok {
			return nil, invalid("covariates", "covariates: %.40q is not one of the event's metrics (a covariate is the pre-experiment value of a metric recorded with it)", name)
		}
		if v == nil {
			return nil, invalid("covariates."+name, "covariates.%s: must be a number, not null", name)
		}
		out[name] = *v
	}
	return out, nil
}
