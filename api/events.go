package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	gojson "github.com/goccy/go-json"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacus-ab/abacus/schemas/eventv1"
)

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
	if err := decodeEventRequest(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	ev, v, err := newAssignment(t, &eventInput{UserID: req.UserID, Attributes: req.Attributes}, s.now().UTC())
	if err != nil {
		return err
	}
	if _, err := s.publish(ctx, eventv1.SubjectAssignment, t.ID, ev.EventID, &ev); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, &assignResponse{
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

func (s *Server) record(c echo.Context) error {
	ctx := c.Request().Context()
	t, err := s.lookup(ctx, c.Param("test_id"))
	if err != nil {
		return err
	}
	var req recordRequest
	if err := decodeEventRequest(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	ev, err := newResult(t, &eventInput{
		UserID: req.UserID, VariantID: req.VariantID, EventID: req.EventID,
		Metrics: req.Metrics, Covariates: req.Covariates,
	}, s.now().UTC())
	if err != nil {
		return err
	}
	dup, err := s.publish(ctx, eventv1.SubjectResult, t.ID, ev.EventID, &ev)
	if err != nil {
		// The event may still have reached the stream (its ack was lost):
		// name its id so that a retry with it is stored once.
		var he *httpError
		if errors.As(err, &he) {
			he.body.Detail = map[string]any{"event_id": ev.EventID}
		}
		return err
	}
	return writeJSON(c, http.StatusAccepted, &recordResponse{Status: "accepted", EventID: ev.EventID, TestID: t.ID, Duplicate: dup})
}

// publish sends one event and waits, at most PublishTimeout, for JetStream to
// acknowledge it: through the group committer (commit.go) when the
// publisher publishes asynchronously, else alone. The event id is in the
// message id, so JetStream drops a retried duplicate (duplicate). Failure
// is a 503: the caller may retry.
func (s *Server) publish(ctx context.Context, subject, testID, eventID string, v any) (duplicate bool, err error) {
	data, err := encodeEvent(v)
	if err != nil {
		return false, fmt.Errorf("encoding %s event: %w", subject, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	if s.commit != nil {
		dup, err := s.commit.commit(ctx, element{subject: subject, testID: testID, eventID: eventID, data: data})
		if err != nil {
			return false, unavailable("the event bus did not acknowledge the event; retry later", err)
		}
		return dup, nil
	}
	ack, err := s.pub.Publish(ctx, subject, data, jetstream.WithMsgID(msgID(subject, testID, eventID)), jetstream.WithExpectStream(eventv1.Stream))
	if err != nil {
		s.countPublished(subject, "error", 1)
		return false, unavailable("the event bus did not acknowledge the event; retry later", err)
	}
	outcome := "ok"
	if ack.Duplicate {
		outcome = "duplicate"
	}
	s.countPublished(subject, outcome, 1)
	return ack.Duplicate, nil
}

// countPublished counts n published events of a kind by outcome.
func (s *Server) countPublished(subject, outcome string, n int) {
	s.metrics.published.WithLabelValues(subject, outcome).Add(float64(n))
}

// writeJSON answers v as encoding/json through Echo's c.JSON would, byte
// for byte (TestWriteJSONMatchesEncodingJSON), with github.com/goccy/go-json,
// which takes a third of the time: the data plane's answers are encoded on
// every request.
func writeJSON(c echo.Context, code int, v any) error {
	data, err := gojson.Marshal(v)
	if err != nil {
		return c.JSON(code, v)
	}
	return c.JSONBlob(code, append(data, '\n'))
}
