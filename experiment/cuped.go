package experiment

import (
	"strconv"
	"strings"
	"time"
)

// Default and limit of the CUPED lookback.
const (
	// DefaultCUPEDLookback is the pre-experiment window CUPED reads.
	DefaultCUPEDLookback = "14d"
	MaxCUPEDLookback     = 365 * 24 * time.Hour
)

// CUPED configures the variance reduction of continuous metrics by a
// pre-experiment covariate. A result's covariates (per metric) are used
// whenever they were recorded; with Enabled, a metric without recorded
// covariates uses each user's mean of the same metric in other tests during
// Lookback before the test started.
type CUPED struct {
	Enabled bool `json:"enabled"`
	// Lookback is the pre-experiment window: "14d" (days) or a Go duration
	// such as "336h"; default DefaultCUPEDLookback.
	Lookback string `json:"lookback,omitempty"`
}

// LookbackDuration returns the lookback window (0 when malformed).
func (c *CUPED) LookbackDuration() time.Duration {
	d, _ := parseLookback(c.Lookback)
	return d
}

func parseLookback(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// setDefaults fills the lookback.
func (c *CUPED) setDefaults() {
	if c.Lookback == "" {
		c.Lookback = DefaultCUPEDLookback
	}
}

// validate checks the lookback.
func (c *CUPED) validate() error {
	if c.Lookback == "" {
		return nil
	}
	d, err := parseLookback(c.Lookback)
	if err != nil || d < time.Hour || d > MaxCUPEDLookback {
		return Invalid("cuped.lookback", `must be a duration from 1h to 365d, such as "14d" or "336h"`)
	}
	return nil
}
