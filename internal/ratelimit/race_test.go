//go:build race

package ratelimit

// raceEnabled shrinks the largest tests under the race detector, which
// slows them tenfold without making them check anything more.
const raceEnabled = true
