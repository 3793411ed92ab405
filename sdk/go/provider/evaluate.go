package provider

import (
	"context"
	"strconv"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/abacus-ab/abacus/experiment"
)

// Error messages of evaluations: constants, so that an error costs no
// allocation either.
const (
	msgNotReady     = "no flag definitions fetched from Abacus yet"
	msgNotFound     = "no Abacus test has this key or id"
	msgTargetingKey = "the targeting key (the user id) is missing or not a string"
	msgType         = "the flag's value is of another type"
)

// BooleanEvaluation evaluates a flag whose values are booleans.
func (p *Provider) BooleanEvaluation(_ context.Context, flag string, def bool, flatCtx openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	f, v, d := p.resolve(flag, flatCtx)
	if v == nil {
		return openfeature.BoolResolutionDetail{Value: def, ProviderResolutionDetail: d}
	}
	if !v.bOK {
		return openfeature.BoolResolutionDetail{Value: def, ProviderResolutionDetail: typeMismatch(d)}
	}
	p.expose(f, v, flatCtx)
	return openfeature.BoolResolutionDetail{Value: v.b, ProviderResolutionDetail: d}
}

// StringEvaluation evaluates a flag whose values are strings.
func (p *Provider) StringEvaluation(_ context.Context, flag string, def string, flatCtx openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	f, v, d := p.resolve(flag, flatCtx)
	if v == nil {
		return openfeature.StringResolutionDetail{Value: def, ProviderResolutionDetail: d}
	}
	if !v.sOK {
		return openfeature.StringResolutionDetail{Value: def, ProviderResolutionDetail: typeMismatch(d)}
	}
	p.expose(f, v, flatCtx)
	return openfeature.StringResolutionDetail{Value: v.s, ProviderResolutionDetail: d}
}

// FloatEvaluation evaluates a flag whose values are numbers.
func (p *Provider) FloatEvaluation(_ context.Context, flag string, def float64, flatCtx openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	f, v, d := p.resolve(flag, flatCtx)
	if v == nil {
		return openfeature.FloatResolutionDetail{Value: def, ProviderResolutionDetail: d}
	}
	if !v.fOK {
		return openfeature.FloatResolutionDetail{Value: def, ProviderResolutionDetail: typeMismatch(d)}
	}
	p.expose(f, v, flatCtx)
	return openfeature.FloatResolutionDetail{Value: v.f, ProviderResolutionDetail: d}
}

// IntEvaluation evaluates a flag whose values are integral numbers (a
// fractional value is a TYPE_MISMATCH).
func (p *Provider) IntEvaluation(_ context.Context, flag string, def int64, flatCtx openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	f, v, d := p.resolve(flag, flatCtx)
	if v == nil {
		return openfeature.IntResolutionDetail{Value: def, ProviderResolutionDetail: d}
	}
	if !v.iOK {
		return openfeature.IntResolutionDetail{Value: def, ProviderResolutionDetail: typeMismatch(d)}
	}
	p.expose(f, v, flatCtx)
	return openfeature.IntResolutionDetail{Value: v.i, ProviderResolutionDetail: d}
}

// ObjectEvaluation evaluates a flag of any value type: an object (a
// variant's configuration, or its value), a boolean, a string or a number,
// as decoded from JSON. The value is shared by every evaluation: do not
// modify it.
func (p *Provider) ObjectEvaluation(_ context.Context, flag string, def any, flatCtx openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	f, v, d := p.resolve(flag, flatCtx)
	if v == nil {
		return openfeature.InterfaceResolutionDetail{Value: def, ProviderResolutionDetail: d}
	}
	p.expose(f, v, flatCtx)
	return openfeature.InterfaceResolutionDetail{Value: v.value, ProviderResolutionDetail: d}
}

// resolve finds a flag and decides the user's variant. It returns the
// variant with a SPLIT detail, or a nil variant with the detail of the
// default value (DISABLED, or an error).
func (p *Provider) resolve(key string, flatCtx openfeature.FlattenedContext) (*flag, *variant, openfeature.ProviderResolutionDetail) {
	s := p.snap.Load()
	if s == nil {
		return nil, nil, errorDetail(openfeature.NewProviderNotReadyResolutionError(msgNotReady))
	}
	f := s.flags[key]
	if f == nil {
		return nil, nil, errorDetail(openfeature.NewFlagNotFoundResolutionError(msgNotFound))
	}
	user, _ := flatCtx[openfeature.TargetingKey].(string)
	if user == "" {
		return nil, nil, errorDetail(openfeature.NewTargetingKeyMissingResolutionError(msgTargetingKey))
	}
	d := experiment.Decide(f.test, experiment.EvalContext{UserID: user})
	if !d.In {
		return nil, nil, openfeature.ProviderResolutionDetail{Reason: openfeature.DisabledReason, FlagMetadata: f.disabled}
	}
	v := f.variants[d.Variant.ID]
	return f, v, openfeature.ProviderResolutionDetail{Reason: openfeature.SplitReason, Variant: d.Variant.ID, FlagMetadata: v.meta}
}

func errorDetail(e openfeature.ResolutionError) openfeature.ProviderResolutionDetail {
	return openfeature.ProviderResolutionDetail{ResolutionError: e, Reason: openfeature.ErrorReason}
}

func typeMismatch(d openfeature.ProviderResolutionDetail) openfeature.ProviderResolutionDetail {
	return openfeature.ProviderResolutionDetail{
		ResolutionError: openfeature.NewTypeMismatchResolutionError(msgType),
		Reason:          openfeature.ErrorReason,
		FlagMetadata:    d.FlagMetadata,
	}
}

// expose queues the user's exposure in the flag's test unless it was sent
// recently. Once it was, this costs a lookup and allocates nothing.
func (p *Provider) expose(f *flag, v *variant, flatCtx openfeature.FlattenedContext) {
	if p.cfg.DisableEvents {
		return
	}
	user := flatCtx[openfeature.TargetingKey].(string) // resolve checked it
	k := pair{f.test.ID, user}
	if !p.exposed.add(k) {
		return
	}
	ev := event{kind: kindAssignment, test: f.test.ID, user: user, variant: v.id, attrs: attributes(flatCtx)}
	if !p.enqueue(ev) {
		p.exposed.forget(k)
	}
}

// attributes are the scalar fields of an evaluation context other than
// the targeting key, as an exposure records them (none when they would
// not pass the server's checks, which would reject the exposure).
func attributes(flatCtx openfeature.FlattenedContext) map[string]string {
	var out map[string]string
	for k, val := range flatCtx {
		if k == openfeature.TargetingKey {
			continue
		}
		var s string
		switch x := val.(type) {
		case string:
			s = x
		case bool:
			s = strconv.FormatBool(x)
		case int:
			s = strconv.Itoa(x)
		case int64:
			s = strconv.FormatInt(x, 10)
		case float64:
			s = strconv.FormatFloat(x, 'g', -1, 64)
		default:
			continue
		}
		if out == nil {
			out = make(map[string]string, len(flatCtx))
		}
		out[k] = s
	}
	if experiment.ValidateAttributes("attributes", out) != nil {
		return nil
	}
	return out
}
