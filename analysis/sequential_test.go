package analysis

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
)

// TestAAPeekingThroughReports runs A/A tests looked at after every batch of
// users (20 looks) through BuildReport, and counts the tests whose verdict
// ever names a winner: at a fixed horizon peeking inflates that rate far
// above alpha, with analysis_method sequential it stays at or below alpha.
// The decision wiring (always-valid p-values, their adjustment, the verdict)
// is what is under test; analysis/stats proves the sequence itself.
func TestAAPeekingThroughReports(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	const sims, looks, batch, alpha = 1000, 20, 100, 0.05
	rng := rand.New(rand.NewPCG(7, 8))
	fixed := twoArmDef()
	fixed.MinSampleSize = 2
	seq := twoArmDef()
	seq.MinSampleSize = 2
	seq.AnalysisMethod = experiment.MethodSequential
	seq.SetDefaults()
	var fixedHits, seqHits int
	for range sims {
		var a, b stats.Sample
		var fixedWon, seqWon bool
		for look := range looks {
			a = stats.Combine(a, normalArm(rng, batch, 10, 3))
			b = stats.Combine(b, normalArm(rng, batch, 10, 3))
			n := int64((look + 1) * batch)
			d := Data{Assignments: map[string]int64{"control": n, "b": n}, Metrics: map[string]map[string]stats.Sample{"m": {"control": a, "b": b}}}
			if !fixedWon && BuildReport(fixed, d, time.Time{}).Verdict.WinnerVariantID != nil {
				fixedWon = true
			}
			if !seqWon && BuildReport(seq, d, time.Time{}).Verdict.WinnerVariantID != nil {
				seqWon = true
			}
		}
		if fixedWon {
			fixedHits++
		}
		if seqWon {
			seqHits++
		}
	}
	tol := 4 * math.Sqrt(alpha*(1-alpha)/sims)
	fr, sr := float64(fixedHits)/sims, float64(seqHits)/sims
	t.Logf("A/A with %d looks: a winner is ever declared in %.3f of tests at a fixed horizon, %.3f with the sequential test (alpha %.2f)", looks, fr, sr, alpha)
	if sr > alpha+tol {
		t.Errorf("sequential: winner ever declared in %.3f of A/A tests, want at most %.2f (+%.3f)", sr, alpha, tol)
	}
	if fr <= alpha+tol {
		t.Errorf("fixed horizon: winner ever declared in %.3f of A/A tests; peeking should inflate it well above %.2f", fr, alpha)
	}
}
