package provider

import (
	"context"
	"fmt"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/abacus-ab/abacus/experiment"
)

// benchProvider is a provider with definitions and senders, whose event
// endpoint answers 202, and with user-1's exposures already sent.
func benchProvider(b *testing.B) (*Provider, openfeature.FlattenedContext) {
	b.Helper()
	obj := map[string]any{"model": "large", "temperature": 0.2}
	_, srv := newFake(b,
		abTest("t-bool", "bool-flag", experiment.StatusRunning, true, false),
		abTest("t-str", "str-flag", experiment.StatusRunning, "red", "blue", "green"),
		abTest("t-obj", "obj-flag", experiment.StatusRunning, obj, obj),
	)
	p, err := New(Config{BaseURL: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.InitWithContext(b.Context(), openfeature.EvaluationContext{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Shutdown)
	u := openfeature.FlattenedContext{openfeature.TargetingKey: "user-1", "country": "fr"}
	for _, k := range []string{"t-bool", "t-str", "t-obj"} {
		p.exposed.add(pair{k, "user-1"})
	}
	return p, u
}

func BenchmarkBooleanEvaluation(b *testing.B) {
	p, u := benchProvider(b)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if d := p.BooleanEvaluation(ctx, "bool-flag", false, u); d.Reason != openfeature.SplitReason {
			b.Fatal(d)
		}
	}
}

func BenchmarkStringEvaluation(b *testing.B) {
	p, u := benchProvider(b)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		p.StringEvaluation(ctx, "str-flag", "", u)
	}
}

func BenchmarkObjectEvaluation(b *testing.B) {
	p, u := benchProvider(b)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		p.ObjectEvaluation(ctx, "obj-flag", nil, u)
	}
}

// BenchmarkBooleanEvaluationParallel evaluates from every CPU at once.
func BenchmarkBooleanEvaluationParallel(b *testing.B) {
	p, u := benchProvider(b)
	ctx := b.Context()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.BooleanEvaluation(ctx, "bool-flag", false, u)
		}
	})
}

// BenchmarkBooleanEvaluationNewUser evaluates a user not seen before each
// time: the exposure is remembered and queued (or counted as dropped when
// the queue is full; the senders post to a local fake).
func BenchmarkBooleanEvaluationNewUser(b *testing.B) {
	p, _ := benchProvider(b)
	ctx := b.Context()
	users := make([]openfeature.FlattenedContext, 1<<16)
	for i := range users {
		users[i] = openfeature.FlattenedContext{openfeature.TargetingKey: fmt.Sprintf("new-%d", i)}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p.BooleanEvaluation(ctx, "bool-flag", false, users[i%len(users)])
		i++
	}
}

// BenchmarkClientBooleanValue is the whole OpenFeature path an application
// takes, client.BooleanValue, with the go-sdk's own work (evaluation
// context merging, hooks) on top of the provider's.
func BenchmarkClientBooleanValue(b *testing.B) {
	p, _ := benchProvider(b)
	api := isolated.NewAPI()
	// Shutdown stops the SDK's event goroutines (goleak checks them).
	b.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	if err := api.SetProviderAndWait(b.Context(), p); err != nil {
		b.Fatal(err)
	}
	c := api.NewClient()
	ec := openfeature.NewEvaluationContext("user-1", map[string]any{"country": "fr"})
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if v, err := c.BooleanValue(ctx, "bool-flag", false, ec); err != nil {
			b.Fatal(v, err)
		}
	}
}
