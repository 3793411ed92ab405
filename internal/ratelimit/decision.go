package ratelimit

import "time"

// Decision is the outcome of one Allow call.
type Decision struct {
	// Allowed reports whether the request was admitted. When it was not,
	// no window consumed anything.
	Allowed bool
	// RetryAfter is, for a denied request, how long until every window
	// that denied it would admit one request; 0 when Allowed.
	RetryAfter time.Duration
	// Local reports a distributed Limiter's decision made from this
	// replica's state alone because the shared state was unreachable.
	Local bool

	n       int
	windows [MaxWindows]WindowState
}

// WindowState is one window's state after a decision, for response headers
// and 429 bodies.
type WindowState struct {
	// Policy and Window name the window ("global", "minute").
	Policy string
	Window string
	// Limit is the client's limit: the window's limit times its
	// multiplier, rounded down, at least 1.
	Limit  int
	Period time.Duration
	// Remaining is how many more requests the window would admit now.
	Remaining int
	// Reset is when the window is fully refilled (Remaining == Limit if the
	// client sends nothing until then); at or before now when it is full.
	Reset time.Time
	// ResetAfter is Reset minus the decision's time on the limiter's clock
	// (0 when the window is full).
	ResetAfter time.Duration
	// RetryAfter is how long until this window admits one request: 0 if it
	// admits one now.
	RetryAfter time.Duration
}

// Windows returns the state of each window of the plan, in plan order. The
// slice refers to d.
func (d *Decision) Windows() []WindowState {
	return d.windows[:d.n]
}

// setWindow records plan slot i's state given its TAT tat at now; extra is
// added to Remaining (leased tokens not yet counted by tat).
func (d *Decision) setWindow(i int, s *planSlot, g gcra, tat, now, extra int64) {
	w := &d.windows[i]
	w.Policy, w.Window = s.policy, s.window
	w.Limit = int(g.limit)
	w.Period = time.Duration(s.period)
	w.Remaining = int(min(g.avail(tat, now)+extra, g.limit))
	w.Reset = time.Unix(0, max(tat, now))
	w.ResetAfter = time.Duration(max(tat-now, 0))
	w.RetryAfter = 0
	if w.Remaining == 0 {
		w.RetryAfter = time.Duration(g.admitAt(tat) - now)
	}
}
