package api

import (
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// The events of Abacus are built here, one builder per kind: assign and
// record (one event a request) and POST /events (many) call the same
// builder, so that an event is checked, named and dated the same way
// whichever endpoint received it. A builder returns a
// *experiment.ValidationError (400, naming the field) for invalid input and
// a 409 *httpError when the test's status takes no events; classify turns
// either into the API's error body.

// eventInput is what a client sends for one event, from any endpoint.
// Fields an endpoint does not take stay zero.
type eventInput struct {
	UserID string
	// VariantID is optional: Abacus computes the variant, and one sent
	// along must agree with it.
	VariantID string
	// EventID is optional: a builder generates one when it is empty.
	EventID string
	// Timestamp is optional (batch events only): the server's clock when nil.
	Timestamp  *time.Time
	Attributes map[string]string   // assignments only
	Metrics    map[string]*float64 // results only
	Covariates map[string]*float64 // results only
}

// assignmentNamespace makes assignment event ids: UUIDv5 of (test, user), so
// that repeated assignments of one user within the stream's duplicate window
// are stored once.
var assignmentNamespace = uuid.MustParse("6f1c2b0e-4b8e-4d0a-9c59-1d0b7f3a6a10")

// clock skew accepted for client timestamps.
const (
	maxFutureSkew = 5 * time.Minute
	maxEventAge   = 30 * 24 * time.Hour
)

// newAssignment builds the assignment (exposure) event of in.UserID in t,
// with the variant experiment.Decide gives the user.
func newAssignment(t *experiment.Test, in *eventInput, now time.Time) (eventv1.Assignment, experiment.Variant, error) {
	if err := experiment.ValidateUserID("user_id", in.UserID); err != nil {
		return eventv1.Assignment{}, experiment.Variant{}, err
	}
	if in.Metrics != nil {
		return eventv1.Assignment{}, experiment.Variant{}, experiment.Invalid("metrics", "an assignment event carries no metrics")
	}
	if in.Covariates != nil {
		return eventv1.Assignment{}, experiment.Variant{}, experiment.Invalid("covariates", "an assignment event carries no covariates")
	}
	if err := experiment.ValidateAttributes("attributes", in.Attributes); err != nil {
		return eventv1.Assignment{}, experiment.Variant{}, err
	}
	ts, err := eventTime(in, now)
	if err != nil {
		return eventv1.Assignment{}, experiment.Variant{}, err
	}
	d := experiment.Decide(t, experiment.EvalContext{UserID: in.UserID, Attributes: in.Attributes})
	if !d.In {
		return eventv1.Assignment{}, experiment.Variant{}, statusConflict(t, "users can be assigned only while it is running")
	}
	if in.VariantID != "" && in.VariantID != d.Variant.ID {
		return eventv1.Assignment{}, experiment.Variant{}, experiment.Invalid("variant_id", "user %s is assigned to variant %s, not %s", truncateID(in.UserID), d.Variant.ID, truncateID(in.VariantID))
	}
	id := in.EventID
	if id == "" {
		id = uuid.NewSHA1(assignmentNamespace, []byte(t.ID+"\x00"+in.UserID)).String()
	}
	return eventv1.Assignment{EventID: id, TestID: t.ID, UserID: in.UserID, VariantID: d.Variant.ID, Timestamp: ts, Attributes: in.Attributes}, d.Variant, nil
}

// newResult builds the result event of in.UserID in t. A result counts
// toward the variant the user is assigned to: one naming another variant is
// rejected, so that a user never counts in two arms, and an omitted
// variant_id is filled in.
func newResult(t *experiment.Test, in *eventInput, now time.Time) (eventv1.Result, error) {
	if err := experiment.ValidateUserID("user_id", in.UserID); err != nil {
		return eventv1.Result{}, err
	}
	metrics, err := checkMetrics(in.Metrics)
	if err != nil {
		return eventv1.Result{}, err
	}
	if in.Attributes != nil {
		return eventv1.Result{}, experiment.Invalid("attributes", "attributes belong to assignment events")
	}
	covariates, err := checkCovariates(in.Covariates, metrics)
	if err != nil {
		return eventv1.Result{}, err
	}
	ts, err := eventTime(in, now)
	if err != nil {
		return eventv1.Result{}, err
	}
	d := experiment.Decide(t, experiment.EvalContext{UserID: in.UserID})
	if !d.In {
		return eventv1.Result{}, statusConflict(t, "results can be recorded only while it is running")
	}
	if in.VariantID != "" && in.VariantID != d.Variant.ID {
		if _, ok := t.Variant(in.VariantID); !ok {
			return eventv1.Result{}, experiment.Invalid("variant_id", "%s is not a variant of test %s", truncateID(in.VariantID), t.ID)
		}
		return eventv1.Result{}, experiment.Invalid("variant_id", "user %s is assigned to variant %s, not %s", truncateID(in.UserID), d.Variant.ID, truncateID(in.VariantID))
	}
	id := in.EventID
	if id == "" {
		id = uuid.Must(uuid.NewV7()).String()
	}
	return eventv1.Result{EventID: id, TestID: t.ID, UserID: in.UserID, VariantID: d.Variant.ID, Metrics: metrics, Timestamp: ts, Covariates: covariates}, nil
}

// eventIDPattern is what a client-supplied event id may look like.
var eventIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)

// eventTime checks the event id a client sent, if any, and returns the
// event's time: the client's timestamp when it is plausible, else now.
func eventTime(in *eventInput, now time.Time) (time.Time, error) {
	if in.EventID != "" && !eventIDPattern.MatchString(in.EventID) {
		return time.Time{}, experiment.Invalid("event_id", "must be 1-64 characters of letters, digits and _ . : -")
	}
	if in.Timestamp == nil {
		return now, nil
	}
	ts := in.Timestamp.UTC()
	if ts.After(now.Add(maxFutureSkew)) || ts.Before(now.Add(-maxEventAge)) {
		return time.Time{}, experiment.Invalid("timestamp", "must be within the last 30 days and at most 5 minutes ahead of the server clock")
	}
	return ts, nil
}

// checkMetrics validates a metrics object: 1 to MaxMetrics well-formed
// names with non-null values.
func checkMetrics(in map[string]*float64) (map[string]float64, error) {
	if len(in) == 0 {
		return nil, experiment.Invalid("metrics", "needs at least one metric value")
	}
	if len(in) > eventv1.MaxMetrics {
		return nil, experiment.Invalid("metrics", "has more than %d metrics", eventv1.MaxMetrics)
	}
	out := make(map[string]float64, len(in))
	for name, v := range in {
		if !experiment.ValidID(name) {
			return nil, experiment.Invalid("metrics", "metric name %.40q must be 1-%d characters of letters, digits and _ . : @ = + -", name, experiment.MaxIDLength)
		}
		if v == nil {
			return nil, experiment.Invalid("metrics."+name, "must be a number, not null")
		}
		out[name] = *v
	}
	return out, nil
}

// checkCovariates validates a result's covariates: each names one of the
// event's metrics and is a number (not null).
func checkCovariates(in map[string]*float64, metrics map[string]float64) (map[string]float64, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]float64, len(in))
	for name, v := range in {
		if _, ok := metrics[name]; !ok {
			return nil, experiment.Invalid("covariates", "%.40q is not one of the event's metrics (a covariate is the pre-experiment value of a metric recorded with it)", name)
		}
		if v == nil {
			return nil, experiment.Invalid("covariates."+name, "must be a number, not null")
		}
		out[name] = *v
	}
	return out, nil
}

// statusConflict is the 409 of an event for a test that takes none now.
func statusConflict(t *experiment.Test, why string) error {
	e := newError(http.StatusConflict, "test %s is %s: %s", t.ID, t.Status, why)
	e.body.Detail = map[string]any{"status": t.Status}
	return e
}

// truncateID shortens a client's value for an error message.
func truncateID(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
