package statstest

import (
	"math"
	"testing"
)

func TestMoments(t *testing.T) {
	type moments struct {
		n              int64
		mean, variance float64
	}
	tests := []struct {
		name string
		xs   []float64
		want moments
	}{
		{name: "empty", xs: nil, want: moments{}},
		{name: "one value", xs: []float64{4.5}, want: moments{n: 1, mean: 4.5}},
		{name: "two values", xs: []float64{1, 3}, want: moments{n: 2, mean: 2, variance: 2}},
		{name: "binary", xs: []float64{0, 1, 0, 0, 1}, want: moments{n: 5, mean: 0.4, variance: 0.3}},
		{name: "constant", xs: []float64{0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1}, want: moments{n: 7, mean: 0.1}},
		// A one-pass sum of squares returns garbage here: the squares are
		// near 1e18, so their 1e2-sized spread is lost to rounding.
		{name: "large offset", xs: []float64{1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16}, want: moments{n: 4, mean: 1e9 + 10, variance: 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, mean, variance := Moments(tt.xs)
			if n != tt.want.n || !Close(mean, tt.want.mean) || !Close(variance, tt.want.variance) {
				t.Errorf("Moments(%v) = %d, %v, %v, want %+v", tt.xs, n, mean, variance, tt.want)
			}
			if variance < 0 {
				t.Errorf("Moments(%v) variance = %v, want >= 0", tt.xs, variance)
			}
		})
	}
}

func TestClose(t *testing.T) {
	tests := []struct {
		got, want float64
		close     bool
	}{
		{1, 1, true},
		{1 + 0.9e-9, 1, true},
		{1 + 1.1e-9, 1, false},
		// Relative below 1 too: an absolute 1e-9 would accept these.
		{1e-6 + 1e-12, 1e-6, false},
		{1e-299 * (1 + 1e-13), 1e-299, true},
		{1e-13, 0, false},
		{0, 0, true},
		{math.NaN(), math.NaN(), false},
	}
	for _, tt := range tests {
		if got := Close(tt.got, tt.want); got != tt.close {
			t.Errorf("Close(%v, %v) = %v, want %v", tt.got, tt.want, got, tt.close)
		}
	}
	if ClosePtr(nil, 0) {
		t.Errorf("ClosePtr(nil, 0) = true, want false")
	}
}
