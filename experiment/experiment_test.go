package experiment

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func validTest() *Test {
	t := &Test{
		ID:   "t1",
		Name: "checkout flow",
		Type: TypeWorkflow,
		Variants: []Variant{
			{ID: "control", Name: "Control", TrafficPercentage: 50},
			{ID: "treatment", Name: "Treatment", TrafficPercentage: 50},
		},
		ControlVariantID: "control",
		PrimaryMetric:    "conversion",
	}
	t.SetDefaults()
	return t
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(*Test)
		wantField string // "" means valid
	}{
		{name: "valid", mutate: func(*Test) {}},
		{name: "thirds sum within 1e-9", mutate: func(x *Test) {
			x.Variants = []Variant{{ID: "a", TrafficPercentage: 100.0 / 3}, {ID: "b", TrafficPercentage: 100.0 / 3}, {ID: "c", TrafficPercentage: 100.0 / 3}}
			x.ControlVariantID = "a"
		}},
		{name: "empty name", mutate: func(x *Test) { x.Name = "  " }, wantField: "test_name"},
		{name: "unknown type", mutate: func(x *Test) { x.Type = "banner" }, wantField: "test_type"},
		{name: "one variant", mutate: func(x *Test) { x.Variants = x.Variants[:1]; x.Variants[0].TrafficPercentage = 100 }, wantField: "variants"},
		{name: "duplicate ids", mutate: func(x *Test) { x.Variants[1].ID = "control" }, wantField: "variants[1].variant_id"},
		{name: "empty variant id", mutate: func(x *Test) { x.Variants[0].ID = "" }, wantField: "variants[0].variant_id"},
		{name: "variant id with space", mutate: func(x *Test) { x.Variants[0].ID = "a b" }, wantField: "variants[0].variant_id"},
		{name: "zero traffic", mutate: func(x *Test) { x.Variants[0].TrafficPercentage = 0; x.Variants[1].TrafficPercentage = 100 }, wantField: "variants[0].traffic_percentage"},
		{name: "negative traffic", mutate: func(x *Test) { x.Variants[0].TrafficPercentage = -10; x.Variants[1].TrafficPercentage = 110 }, wantField: "variants[0].traffic_percentage"},
		{name: "NaN traffic", mutate: func(x *Test) { x.Variants[0].TrafficPercentage = math.NaN() }, wantField: "variants[0].traffic_percentage"},
		{name: "sum 99", mutate: func(x *Test) { x.Variants[1].TrafficPercentage = 49 }, wantField: "variants"},
		{name: "sum off by 1e-6", mutate: func(x *Test) { x.Variants[1].TrafficPercentage = 50.000001 }, wantField: "variants"},
		{name: "control not a variant", mutate: func(x *Test) { x.ControlVariantID = "other" }, wantField: "control_variant_id"},
		{name: "no primary metric", mutate: func(x *Test) { x.PrimaryMetric = "" }, wantField: "primary_metric"},
		{name: "min sample 1", mutate: func(x *Test) { x.MinSampleSize = 1 }, wantField: "min_sample_size"},
		{name: "confidence 1", mutate: func(x *Test) { x.ConfidenceLevel = 1 }, wantField: "confidence_level"},
		{name: "confidence 0.3", mutate: func(x *Test) { x.ConfidenceLevel = 0.3 }, wantField: "confidence_level"},
		{name: "long name", mutate: func(x *Test) { x.Name = strings.Repeat("x", MaxNameLength+1) }, wantField: "test_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := validTest()
			tt.mutate(x)
			err := x.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want a *ValidationError on %s", err, tt.wantField)
			}
			if ve.Field != tt.wantField {
				t.Errorf("Validate() field = %q (%v), want %q", ve.Field, err, tt.wantField)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	x := validTest()
	if err := x.Stop(now); !errors.Is(err, ErrConflict) {
		t.Errorf("Stop(draft) = %v, want ErrConflict", err)
	}
	if err := x.Start(now); err != nil {
		t.Fatalf("Start(draft) = %v", err)
	}
	if x.Status != StatusRunning || x.StartedAt == nil || !x.StartedAt.Equal(now) {
		t.Errorf("after Start: status %s started %v", x.Status, x.StartedAt)
	}
	if err := x.Start(now); !errors.Is(err, ErrConflict) {
		t.Errorf("Start(running) = %v, want ErrConflict", err)
	}
	if err := x.Stop(now.Add(time.Hour)); err != nil {
		t.Fatalf("Stop(running) = %v", err)
	}
	if x.Status != StatusStopped || x.StoppedAt == nil {
		t.Errorf("after Stop: status %s stopped %v", x.Status, x.StoppedAt)
	}
	if err := x.Start(now); !errors.Is(err, ErrConflict) {
		t.Errorf("Start(stopped) = %v, want ErrConflict", err)
	}
}

func TestAssignSplit(t *testing.T) {
	splits := [][]float64{
		{50, 50},
		{10, 90},
		{100.0 / 3, 100.0 / 3, 100.0 / 3},
		{1, 4, 95},
		{25, 25, 25, 25},
	}
	const users = 100_000
	for _, split := range splits {
		t.Run(fmt.Sprint(split), func(t *testing.T) {
			x := &Test{ID: "split-test"}
			for i, p := range split {
				x.Variants = append(x.Variants, Variant{ID: fmt.Sprintf("v%d", i), TrafficPercentage: p})
			}
			counts := map[string]int{}
			for u := range users {
				counts[Assign(x, fmt.Sprintf("user-%d", u)).ID]++
			}
			for _, v := range x.Variants {
				got := 100 * float64(counts[v.ID]) / users
				if math.Abs(got-v.TrafficPercentage) > 1 {
					t.Errorf("variant %s got %.2f%% of users, want %.2f%% within 1 point", v.ID, got, v.TrafficPercentage)
				}
			}
		})
	}
}

// TestAssignIndependentAcrossTests checks that a user's variant in one test
// says nothing about the variant in another (no carry-over bias).
func TestAssignIndependentAcrossTests(t *testing.T) {
	a := &Test{ID: "test-a", Variants: []Variant{{ID: "x", TrafficPercentage: 50}, {ID: "y", TrafficPercentage: 50}}}
	b := &Test{ID: "test-b", Variants: a.Variants}
	same := 0
	const users = 100_000
	for u := range users {
		id := fmt.Sprintf("u%d", u)
		if Assign(a, id).ID == Assign(b, id).ID {
			same++
		}
	}
	if share := float64(same) / users; math.Abs(share-0.5) > 0.01 {
		t.Errorf("users in the same arm of two tests: %.3f, want 0.5 within 0.01", share)
	}
}

// TestBucketStable pins the hash: changing it would move users of running
// tests to other variants after an upgrade.
func TestBucketStable(t *testing.T) {
	tests := []struct {
		test, user string
	}{
		{"t", "u"}, {"checkout", "user-1"}, {"checkout", "user-2"}, {"", ""},
	}
	first := map[string]uint64{}
	for _, tt := range tests {
		first[tt.test+"|"+tt.user] = Bucket(tt.test, tt.user)
	}
	for range 3 {
		for _, tt := range tests {
			if got := Bucket(tt.test, tt.user); got != first[tt.test+"|"+tt.user] {
				t.Fatalf("Bucket(%q, %q) changed between calls: %d then %d", tt.test, tt.user, first[tt.test+"|"+tt.user], got)
			}
		}
	}
	// The separator keeps ("ab","c") and ("a","bc") apart.
	if Bucket("ab", "c") == Bucket("a", "bc") {
		t.Errorf("Bucket(ab, c) == Bucket(a, bc): the separator is not effective")
	}
	// Reference values of the published algorithm (FNV-1a 64 + fmix64).
	golden := []struct {
		test, user string
		want       uint64
	}{
		{"checkout", "user-1", 791590},
		{"t", "u", 800685},
	}
	for _, g := range golden {
		if got := Bucket(g.test, g.user); got != g.want {
			t.Errorf("Bucket(%q, %q) = %d, want %d", g.test, g.user, got, g.want)
		}
	}
}

// goldenBucket is an independent implementation of the documented algorithm.
func goldenBucket(test, user string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, c := range []byte(test + "\x00" + user) {
		h ^= uint64(c)
		h *= prime
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h % Buckets
}

func FuzzAssign(f *testing.F) {
	f.Add("test", "user", 50.0)
	f.Add("", "", 0.5)
	f.Add("a\x00b", "\xff", 99.9)
	f.Fuzz(func(t *testing.T, testID, userID string, p float64) {
		if math.IsNaN(p) || p <= 0 || p >= 100 {
			return
		}
		x := &Test{ID: testID, Variants: []Variant{{ID: "a", TrafficPercentage: p}, {ID: "b", TrafficPercentage: 100 - p}}}
		b := Bucket(testID, userID)
		if b >= Buckets {
			t.Fatalf("Bucket(%q, %q) = %d, want < %d", testID, userID, b, Buckets)
		}
		if b != goldenBucket(testID, userID) {
			t.Fatalf("Bucket(%q, %q) = %d, want %d", testID, userID, b, goldenBucket(testID, userID))
		}
		v := Assign(x, userID)
		want := "b"
		if float64(b)/(Buckets/100) < p {
			want = "a"
		}
		if v.ID != want {
			t.Fatalf("Assign(%q) = %s, want %s (bucket %d, split %v)", userID, v.ID, want, b, p)
		}
	})
}

func ExampleAssign() {
	t := &Test{
		ID: "checkout-2026",
		Variants: []Variant{
			{ID: "control", TrafficPercentage: 50},
			{ID: "one-page", TrafficPercentage: 50},
		},
	}
	v1 := Assign(t, "user-42")
	v2 := Assign(t, "user-42")
	fmt.Println(v1.ID == v2.ID)
	// Output: true
}

func BenchmarkAssign(b *testing.B) {
	x := validTest()
	x.ID = "5f0c7e1a-2b3d-4c5e-8f90-a1b2c3d4e5f6"
	b.ReportAllocs()
	for b.Loop() {
		Assign(x, "user-1234567890")
	}
}

// TestValidIDMatchesPattern checks ValidID's byte scan against idPattern,
// which error messages quote, on every one- and two-byte string and on
// random longer ones.
func TestValidIDMatchesPattern(t *testing.T) {
	check := func(s string) {
		t.Helper()
		want := len(s) > 0 && len(s) <= MaxIDLength && idPattern.MatchString(s)
		if got := ValidID(s); got != want {
			t.Fatalf("ValidID(%q) = %v, idPattern says %v", s, got, want)
		}
	}
	check("")
	for a := range 256 {
		check(string([]byte{byte(a)}))
		for b := range 256 {
			check(string([]byte{byte(a), byte(b)}))
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	const alphabet = "aZ09_.:@=+- /\\\"'\x00\xff\u00e9"
	for range 100_000 {
		b := make([]byte, 1+rng.IntN(MaxIDLength+3))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		check(string(b))
	}
}
