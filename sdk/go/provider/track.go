package provider

import (
	"context"

	"github.com/google/uuid"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/abacus-ab/abacus/experiment"
)

// FlagAttribute is the TrackingEventDetails attribute that names the flag
// (test key or id) a tracked event belongs to.
const FlagAttribute = "flag"

// Track queues a result event: the metric trackingEventName with the
// details' value, for the user of the evaluation context's targeting key.
// The result goes to the running test that details' FlagAttribute names,
// or, without it, to every running test whose primary or declared metrics
// include trackingEventName. An event without a targeting key or without a
// test is not sent. Track never waits for the network.
func (p *Provider) Track(_ context.Context, trackingEventName string, evalCtx openfeature.EvaluationContext, details openfeature.TrackingEventDetails) {
	if p.cfg.DisableEvents {
		return
	}
	user := evalCtx.TargetingKey()
	s := p.snap.Load()
	if user == "" || s == nil || trackingEventName == "" {
		return
	}
	targets := s.byMetric[trackingEventName]
	if key, ok := details.Attribute(FlagAttribute).(string); ok && key != "" {
		targets = nil
		if f := s.flags[key]; f != nil {
			targets = []*flag{f}
		}
	}
	for _, f := range targets {
		d := experiment.Decide(f.test, experiment.EvalContext{UserID: user})
		if !d.In {
			continue
		}
		id, err := uuid.NewV7()
		if err != nil {
			p.drop(1, err)
			continue
		}
		p.enqueue(event{kind: kindResult, id: id.String(), test: f.test.ID, user: user, variant: d.Variant.ID, metric: trackingEventName, value: details.Value()})
	}
}
