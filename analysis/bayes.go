package analysis

import (
	"fmt"
	"strconv"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
)

// Bayesian results (bayesian.enabled): the posterior of each comparison's
// relative lift, chance to beat control, risks and the risk-threshold
// decision, with a message in plain words.

// bayesianResult is the posterior of a comparison's relative lift (tests
// with bayesian.enabled only).
func bayesianResult(t *experiment.Test, spec experiment.Metric, control, treatment arm) *experiment.BayesianResult {
	b := t.Bayesian
	if b == nil || !b.Enabled {
		return nil
	}
	threshold := b.RiskThreshold
	if threshold == 0 {
		threshold = experiment.DefaultRiskThreshold
	}
	res := &experiment.BayesianResult{Effect: "relative", Prior: b.Prior, RiskThreshold: threshold, Decision: string(stats.DecisionKeepRunning)}
	cfg := stats.BayesConfig{Relative: true, Direction: direction(spec.Direction), Level: t.ConfidenceLevel, RiskThreshold: threshold}
	if b.Prior.Normal {
		cfg.Prior = &stats.NormalPrior{Mean: b.Prior.Mean, Variance: b.Prior.SD * b.Prior.SD}
	}
	var (
		p   stats.Bayes
		err error
	)
	if spec.Type == experiment.MetricBinary {
		p, err = stats.BayesProportions(control.prop, treatment.prop, cfg)
	} else {
		p, err = stats.BayesMeans(control.sample, treatment.sample, cfg)
	}
	if err != nil {
		res.Message = "no posterior yet: " + noTestNote(err)
		return res
	}
	res.PosteriorMean, res.PosteriorStdDev = ptr(p.Mean), ptr(p.StdDev)
	res.CredibleIntervalLower, res.CredibleIntervalUpper = ptr(p.CILower), ptr(p.CIUpper)
	res.ChanceToBeatControl = ptr(p.ChanceToWin)
	res.RiskTreatment, res.RiskControl = ptr(p.RiskTreatment), ptr(p.RiskControl)
	res.Decision = string(p.Decision)
	what := map[stats.Decision]string{
		stats.DecisionShipTreatment: "ship the treatment",
		stats.DecisionKeepControl:   "keep control",
		stats.DecisionKeepRunning:   "keep the test running",
	}[p.Decision]
	res.Message = fmt.Sprintf("%s chance that the treatment is better than control on %s (a probability, not a p-value); "+
		"shipping it risks an expected loss of %s of the control mean, keeping control %s; with a risk threshold of %.3g%%: %s",
		percent(p.ChanceToWin), spec.Name, percent(p.RiskTreatment), percent(p.RiskControl), 100*threshold, what)
	return res
}

// percent formats a probability or a share for a message. A posterior is
// never certain, so values rounding to 0% or 100% are said as bounds.
func percent(p float64) string {
	switch {
	case p < 0.001:
		return "less than 0.1%"
	case p > 0.999:
		return "more than 99.9%"
	}
	return strconv.FormatFloat(100*p, 'f', 1, 64) + "%"
}
