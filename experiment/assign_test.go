package experiment

import (
	"fmt"
	"testing"
)

// TestDecide checks the one assignment decision: a running test places
// every user in the variant Assign's split gives, and a draft or stopped
// test places nobody, with the reason.
func TestDecide(t *testing.T) {
	x := &Test{ID: "t-decide", Variants: []Variant{
		{ID: "a", TrafficPercentage: 30}, {ID: "b", TrafficPercentage: 70},
	}}
	for _, status := range []Status{StatusDraft, StatusStopped} {
		x.Status = status
		if d := Decide(x, EvalContext{UserID: "u1"}); d.In || d.Reason != ReasonNotRunning || d.Variant.ID != "" {
			t.Errorf("Decide(%s test) = %+v, want not in the test, reason %s", status, d, ReasonNotRunning)
		}
	}
	x.Status = StatusRunning
	for u := range 1000 {
		user := fmt.Sprintf("user-%d", u)
		d := Decide(x, EvalContext{UserID: user, Attributes: map[string]string{"country": "DE"}})
		if want := Assign(x, user).ID; !d.In || d.Reason != ReasonSplit || d.Variant.ID != want {
			t.Fatalf("Decide(%q) = %+v, want variant %s, reason %s", user, d, want, ReasonSplit)
		}
	}
}
