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

// Assign returns the variant that userID sees in test t: the variant whose
// cumulative traffic range, in the order the variants were defined, holds the
// user's bucket. Percentages that sum to 100 within rounding give the last
// variant any remainder.
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
