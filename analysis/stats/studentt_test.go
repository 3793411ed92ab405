package stats

import (
	"fmt"
	"testing"
)

// TestStudentTReference checks the distribution functions behind the tests
// on a grid of degrees of freedom around and far beyond largeDoF, with tails
// from 1 down to underflow.
func TestStudentTReference(t *testing.T) {
	var ref struct {
		TwoTail []struct {
			DoF     float64 `json:"dof"`
			T       float64 `json:"t"`
			TwoTail float64 `json:"two_tail"`
		} `json:"two_tail"`
		Critical []struct {
			DoF      float64 `json:"dof"`
			Alpha    float64 `json:"alpha"`
			Critical float64 `json:"critical"`
		} `json:"critical"`
	}
	readJSON(t, "student_t.json", &ref)
	if len(ref.TwoTail) == 0 || len(ref.Critical) == 0 {
		t.Fatal("student_t.json has no cases")
	}

	t.Run("twoTail", func(t *testing.T) {
		var worst worstError
		for _, tc := range ref.TwoTail {
			t.Run(fmt.Sprintf("dof=%g/t=%g", tc.DoF, tc.T), func(t *testing.T) {
				d := studentT{nu: tc.DoF}
				for _, x := range []float64{tc.T, -tc.T} {
					got := d.twoTail(x)
					worst.observe(t.Name(), got, tc.TwoTail)
					if !matches(got, tc.TwoTail) {
						t.Errorf("studentT{%v}.twoTail(%v) = %v, want %v", tc.DoF, x, got, tc.TwoTail)
					}
				}
			})
		}
		worst.log(t)
	})

	t.Run("critical", func(t *testing.T) {
		var worst worstError
		for _, tc := range ref.Critical {
			t.Run(fmt.Sprintf("dof=%g/alpha=%g", tc.DoF, tc.Alpha), func(t *testing.T) {
				got := studentT{nu: tc.DoF}.critical(tc.Alpha)
				worst.observe(t.Name(), got, tc.Critical)
				if !matches(got, tc.Critical) {
					t.Errorf("studentT{%v}.critical(%v) = %v, want %v", tc.DoF, tc.Alpha, got, tc.Critical)
				}
			})
		}
		worst.log(t)
	})
}

// TestStudentTTailContinuity checks that the tail has no visible step where
// the evaluation switches method: at largeDoF, and at t² = ν and |t| = 1.
func TestStudentTTailContinuity(t *testing.T) {
	const nu = largeDoF
	for _, tc := range []struct {
		name       string
		a, b       studentT
		ta, tb     float64
		maxRelDiff float64
	}{
		{"dof across largeDoF", studentT{nu}, studentT{nu * (1 + 1e-15)}, 2.5, 2.5, 1e-13},
		{"t across 1", studentT{10}, studentT{10}, 1 - 1e-15, 1, 1e-13},
		{"t² across ν", studentT{400}, studentT{400}, 20 * (1 - 1e-16), 20, 1e-13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ga, gb := tc.a.twoTail(tc.ta), tc.b.twoTail(tc.tb)
			if rel := (ga - gb) / gb; rel > tc.maxRelDiff || rel < -tc.maxRelDiff {
				t.Errorf("twoTail = %v on one side and %v on the other (relative step %.2g), want a step below %g", ga, gb, rel, tc.maxRelDiff)
			}
		})
	}
}
