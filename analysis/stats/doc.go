// Package stats holds the pure statistics behind Abacus experiment reports.
//
// It computes, from per-arm sufficient statistics (a [Sample]: number of
// users, mean and unbiased sample variance):
//
//   - [MeanInterval], the Student-t confidence interval of one arm's mean;
//   - [WelchTTest], Welch's unequal-variance t-test of treatment minus control,
//     with Welch–Satterthwaite degrees of freedom, a two-sided p-value and a
//     confidence interval for the absolute difference;
//   - [TwoProportionZTest], the two-proportion z-test of a binary metric from
//     counts ([Proportion]), with the unpooled (Wald) variance for the
//     statistic and the interval, and the pooled statistic alongside;
//   - [Fieller], the confidence interval of a relative lift that agrees with
//     the absolute test;
//   - [AdjustPValues], Holm-Bonferroni and Benjamini-Hochberg adjusted
//     p-values;
//   - [ChiSquareGOF], the chi-square goodness-of-fit test behind the sample
//     ratio mismatch check;
//   - [PowerSpec] and [CurrentMDE], sample sizes, power and minimum
//     detectable effects of the two-sided z-test, and [Plan], the answer to
//     POST /api/ab-testing/power (the API imports this package for it: it
//     does no I/O).
//
// Conventions:
//
//   - The unit of analysis is the user. A Sample's Variance is the unbiased
//     (n-1) sample variance of per-user values. Binary metrics declared as
//     such go through TwoProportionZTest (variance p(1-p)); an undeclared 0/1
//     metric is continuous and goes through WelchTTest.
//   - Differences are treatment minus control. Confidence levels are in (0, 1),
//     for example 0.95, and intervals are two-sided and equal-tailed.
//   - Invalid input (a level outside (0, 1), a negative user count, a negative
//     or non-finite variance) is an error, never a panic. An arm with fewer
//     than two users yields [ErrInsufficientData]; a difference with zero
//     standard error yields [ErrZeroVariance].
//
// Accuracy: the proportion test, Fieller intervals, adjusted p-values, the
// chi-square test and the power functions agree with statsmodels and SciPy
// to about 1e-13 relative or better (testdata/gen_reference_tests.py). The
// t-test results agree with SciPy to about 1e-13 relative, p-values
// included, down to p ≈ 1e-300 and up to 10^8 users per arm. gonum's
// [gonum.org/v1/gonum/stat/distuv.StudentsT] is used where it is that
// accurate. Where it is not, the package evaluates the regularized incomplete
// beta function itself (see studentt.go): gonum works with x = ν/(ν+t²), so
// its relative error grows roughly in proportion to ν (2e-7 at ν = 2·10^8)
// and reaches 1e-8 for |t| near 1e-8. Reference values live in testdata/ and are regenerated
// by testdata/gen_reference.py.
//
// Beyond the fixed-horizon tests of the anchor platforms, from the same kind
// of per-arm sufficient statistics:
//
//   - [SequentialMeans] and [SequentialProportions], always-valid p-values
//     and confidence sequences for the difference, safe to look at after
//     every batch of users: by default the asymptotic confidence sequence of
//     Waudby-Smith et al. with GrowthBook's tuning N* = 5000
//     ([SequentialConfig]), which is the normal-mixture mSPRT (Johari et al.)
//     with τ² = ρ²·N·SE²; a fixed τ² can be set instead. [SequentialSRMTest]
//     is the sequential sample ratio mismatch test of Lindon and Malek
//     (Dirichlet-multinomial Bayes factor, Optimizely's check);
//   - [CUPEDTest], CUPED variance reduction with a pre-experiment covariate
//     ([CovariateSample]) and Welch's test on the adjusted means;
//   - [BayesMeans] and [BayesProportions], the Gaussian posterior of the
//     absolute or relative (gbstats delta-method) effect under a flat or
//     normal prior, with chance to win, risk of either decision and a
//     risk-threshold decision rule ([BayesConfig]);
//   - [CompareRatios], ratio metrics (e.g. revenue per session) with
//     delta-method variances that include the numerator-denominator
//     covariance, and a Fieller interval of the lift;
//   - [NonInferiorityMeans] and [NonInferiorityProportions], one-sided tests
//     that treatment is not worse than control by more than a margin, in the
//     metric's [Direction];
//   - [ScanSegments], a scan for segments whose effect differs from the rest
//     (Cochran's Q and leave-one-out z-tests with Holm or BH correction).
//
// They are checked against testdata/gen_reference_options.py (SciPy,
// statsmodels and mpmath; options.json) to about 1e-12 relative or better,
// and by seeded simulations of type-I error, power, variance reduction and
// coverage in the tests.
//
// The package does no I/O, keeps no state, and is safe for concurrent use. It
// must import only the standard library and gonum: no other Abacus package,
// no database, network or logging code.
package stats
