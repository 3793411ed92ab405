package experiment

import "hash/fnv"

// Buckets is the resolution of assignment: a user hashes to one of Buckets
// points, and a variant with traffic percentage p owns p*Buckets/100 of them.
// One million buckets resolve percentages to 0.0001 points.
const Buckets = 1_000_000

// Bucket returns the user's point in [0, Buckets) for the test. It is a pure
// function of (testID, userID): the same on every replica, in every release
// and after every restart. Changing it would move users between variants of
// running tests, so it is part of Abacus's stored contract.
//
// The hash is 64-bit FNV-1a over testID, a NUL separator and userID,
// finished with the MurmurHash3 fmix64 avalanche so that similar user ids
// ("user-1", "user-2") spread evenly over the buckets.
func Bucket(testID, userID string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(testID))
	h.Write([]byte{0})
	h.Write([]byte(userID))
	return fmix64(h.Sum64()) % Buckets
}

func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

// EvalContext is what an evaluation knows of the subject it places: the user
// and the attributes that describe them (the exposure records them; targeting
// will read them).
type EvalContext struct {
	UserID     string
	Attributes map[string]string
}

// Reason says why a Decision puts a user in a test or leaves them out.
type Reason string

// The reasons of a Decision.
const (
	// ReasonSplit: the user is in the test, in the variant whose traffic
	// range holds their bucket.
	ReasonSplit Reason = "split"
	// ReasonNotRunning: the test is a draft or stopped, so nobody is in it.
	ReasonNotRunning Reason = "not_running"
)

// Decision is the outcome of Decide: the variant a user sees, or that the
// user is not in the test, and why.
type Decision struct {
	// Variant is the user's variant when In; the zero Variant otherwise.
	Variant Variant
	In      bool
	Reason  Reason
}

// Decide places the subject of ec in test t. It is the one assignment
// decision of Abacus: the assign endpoint, batch assignment and result
// events, and every other evaluation path call it, so that they agree for
// every user. Only a running test has users in it; the variant is Assign's
// split, a pure function of the test id and the user id.
func Decide(t *Test, ec EvalContext) Decision {
	if t.Status != StatusRunning {
		return Decision{Reason: ReasonNotRunning}
	}
	return Decision{Variant: Assign(t, ec.UserID), In: true, Reason: ReasonSplit}
}

// Assign is the traffic split that Decide applies: the variant whose
// cumulative traffic range, in the order the variants were defined, holds the
// user's bucket. Percentages that sum to 100 within rounding give the last
// variant any remainder. It looks at nothing but the variants and the
// bucket: serving paths call Decide, which also applies the test's status.
func Assign(t *Test, userID string) Variant {
	point := float64(Bucket(t.ID, userID)) / (Buckets / 100) // in [0, 100)
	var cum float64
	for _, v := range t.Variants {
		cum += v.TrafficPercentage
		if point < cum {
			return v
		}
	}
	return t.Variants[len(t.Variants)-1]
}
