package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Default limits of the global policy, per client before its multiplier.
const (
	DefaultPerMinute = 60
	DefaultPerHour   = 1000
	DefaultPerDay    = 10000
)

// MaxWindows is the most windows one Plan may check at once.
const MaxWindows = 8

// maxLimit bounds a window's limit so that limit × multiplier × period stays
// far from int64 overflow.
const maxLimit = 1_000_000_000

// Window is one limit: Limit requests per Period.
type Window struct {
	// Name identifies the window within its policy: "minute", "hour", "day".
	Name   string
	Limit  int
	Period time.Duration
}

// Policy is a named group of windows. Each client has its own state per
// policy window, shared by every Plan that includes the policy: the global
// policy's "minute" window counts requests to all endpoints.
type Policy struct {
	// Name identifies the policy: "global", an endpoint such as "POST /x",
	// "auth_failure".
	Name    string
	Windows []Window
}

// Standard returns a policy with a "minute", "hour" and "day" window. A
// limit of 0 leaves that window out.
func Standard(name string, perMinute, perHour, perDay int) Policy {
	p := Policy{Name: name}
	for _, w := range []Window{
		{Name: "minute", Limit: perMinute, Period: time.Minute},
		{Name: "hour", Limit: perHour, Period: time.Hour},
		{Name: "day", Limit: perDay, Period: 24 * time.Hour},
	} {
		if w.Limit != 0 {
			p.Windows = append(p.Windows, w)
		}
	}
	return p
}

// Global is the default global policy: Standard("global", 60, 1000, 10000).
func Global() Policy {
	return Standard("global", DefaultPerMinute, DefaultPerHour, DefaultPerDay)
}

// The default limits of the data plane, per API key: what one server-side
// key that assigns and records for all of an application's users may send.
// A minute of 120,000 is 2,000 requests a second, about what one Abacus
// replica on two cores answers, so one key can keep a replica busy but a
// runaway client is stopped within a minute; the hour (6,000,000, half the
// minute's rate) and the day (100,000,000, about 1,160 a second) bound what
// a key sends in sustained load. rate_limit_multiplier scales them per key.
const (
	DefaultDataPlanePerMinute = 120_000
	DefaultDataPlanePerHour   = 6_000_000
	DefaultDataPlanePerDay    = 100_000_000
)

// DataPlane returns the default data-plane policy, "data_plane".
func DataPlane() Policy {
	return Standard("data_plane", DefaultDataPlanePerMinute, DefaultDataPlanePerHour, DefaultDataPlanePerDay)
}

// Plan is a set of policies checked together: a request is admitted only if
// every window of every policy admits it, and a denied request consumes
// nothing. Build plans once (per route, say) with Limiter.Plan and reuse
// them with that Limiter only; a Plan is immutable and safe for concurrent
// use.
type Plan struct {
	slots []planSlot
}

type planSlot struct {
	id     uint32
	policy string
	window string
	// name is policy NUL window, the slot's name in the shared state.
	name   string
	limit  int64
	period int64 // ns
}

// Plan validates policies and returns them as a Plan of this Limiter. The
// same policy and window names always refer to the same per-client state,
// so a window must keep its period across plans.
func (l *Limiter) Plan(policies ...Policy) (*Plan, error) {
	p := &Plan{}
	seen := map[string]bool{}
	for _, pol := range policies {
		if pol.Name == "" {
			return nil, errors.New("policy without a name")
		}
		if len(pol.Windows) == 0 {
			return nil, fmt.Errorf("policy %q has no windows", pol.Name)
		}
		for _, w := range pol.Windows {
			switch {
			case w.Name == "":
				return nil, fmt.Errorf("policy %q: window without a name", pol.Name)
			case strings.Contains(pol.Name, "\x00") || strings.Contains(w.Name, "\x00"):
				return nil, fmt.Errorf("policy %q: names must not contain NUL", pol.Name)
			case w.Limit < 1 || w.Limit > maxLimit:
				return nil, fmt.Errorf("policy %q window %q: limit %d is not in [1, %d]", pol.Name, w.Name, w.Limit, maxLimit)
			case w.Period <= 0:
				return nil, fmt.Errorf("policy %q window %q: period must be positive", pol.Name, w.Name)
			case l.remote != nil && w.Period > l.cfg.BucketTTL:
				return nil, fmt.Errorf("policy %q window %q: period %v exceeds the shared bucket's TTL %v", pol.Name, w.Name, w.Period, l.cfg.BucketTTL)
			}
			name := pol.Name + "\x00" + w.Name
			if seen[name] {
				return nil, fmt.Errorf("policy %q window %q appears twice in the plan", pol.Name, w.Name)
			}
			seen[name] = true
			id, err := l.slotID(pol.Name, w)
			if err != nil {
				return nil, err
			}
			p.slots = append(p.slots, planSlot{
				id: id, policy: pol.Name, window: w.Name, name: name,
				limit: int64(w.Limit), period: int64(w.Period),
			})
		}
	}
	if len(p.slots) == 0 {
		return nil, errors.New("plan without policies")
	}
	if len(p.slots) > MaxWindows {
		return nil, fmt.Errorf("plan has %d windows, at most %d are allowed", len(p.slots), MaxWindows)
	}
	return p, nil
}

// slotID returns the limiter-wide id of a policy window. The ids index
// client state in memory; the shared state uses names, which mean the same
// on every replica.
func (l *Limiter) slotID(policy string, w Window) (uint32, error) {
	l.regMu.Lock()
	defer l.regMu.Unlock()
	k := policy + "\x00" + w.Name
	if id, ok := l.slotIDs[k]; ok {
		if l.slotPeriods[id] != w.Period {
			return 0, fmt.Errorf("policy %q window %q: period %v, but another plan uses %v", policy, w.Name, w.Period, l.slotPeriods[id])
		}
		return id, nil
	}
	id := uint32(len(l.slotPeriods))
	l.slotIDs[k] = id
	l.slotPeriods = append(l.slotPeriods, w.Period)
	return id, nil
}

// gcra is one window's parameters for one client: emission interval t and
// burst span = limit × t (about the period), both in ns.
type gcra struct {
	limit int64
	t     int64
	span  int64
}

// effectiveLimit is floor(limit × multiplier), at least 1.
func effectiveLimit(limit int64, mult float64) int64 {
	if mult == 1 {
		return limit
	}
	n := int64(math.Floor(float64(limit)*mult + 1e-9))
	return max(n, 1)
}

func newGCRA(limit, period int64) gcra {
	t := max(period/limit, 1)
	return gcra{limit: limit, t: t, span: t * limit}
}

// normMultiplier maps the API key's multiplier into (0, 1000]: 0 and
// invalid values mean 1, larger values are capped.
func normMultiplier(m float64) float64 {
	switch {
	case !(m > 0): // 0, negative, NaN
		return 1
	case m > 1000:
		return 1000
	}
	return m
}

// avail is how many requests the window admits at now when its state is tat.
func (g gcra) avail(tat, now int64) int64 {
	n := (now + g.span - max(tat, now)) / g.t
	return min(max(n, 0), g.limit)
}

// admitAt is the earliest time at which the window admits one request.
func (g gcra) admitAt(tat int64) int64 {
	return tat + g.t - g.span
}
