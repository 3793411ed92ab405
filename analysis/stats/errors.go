package stats

import "errors"

var (
	// ErrInsufficientData reports an arm with fewer than two users, for which
	// the sample variance is undefined.
	ErrInsufficientData = errors.New("insufficient data: fewer than 2 users")

	// ErrZeroVariance reports that the standard error of a difference is
	// zero, because every user in both arms has the same value. The t
	// statistic is then undefined.
	ErrZeroVariance = errors.New("zero variance: standard error of the difference is 0")
)
