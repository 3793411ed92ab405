package analysis

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
)

// Method names the test that produced a report's p-values.
const Method = "welch_t_test"

// Data is what the report is computed from: assigned users per variant, and
// for each metric the per-variant statistics over users.
type Data struct {
	Assignments map[string]int64
	Metrics     map[string]map[string]stats.Sample
}

// BuildReport computes the report of t from data. It is a pure function.
func BuildReport(t *experiment.Test, data Data, now time.Time) *experiment.Report {
	r := &experiment.Report{
		TestID:          t.ID,
		TestName:        t.Name,
		Status:          t.Status,
		ConfidenceLevel: t.ConfidenceLevel,
		MinSampleSize:   t.MinSampleSize,
		ControlVariant:  t.ControlVariantID,
		PrimaryMetric:   t.PrimaryMetric,
		Method:          Method,
		ComputedAt:      now.UTC(),
		Assignments:     make(map[string]int64, len(t.Variants)),
	}
	for _, v := range t.Variants {
		r.Assignments[v.ID] = data.Assignments[v.ID]
	}
	names := make([]string, 0, len(data.Metrics))
	for name := range data.Metrics {
		if name != t.PrimaryMetric {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	names = append([]string{t.PrimaryMetric}, names...)
	for _, name := range names {
		m := metricReport(t, name, data.Metrics[name])
		r.Metrics = append(r.Metrics, m)
	}
	p := r.Metrics[0]
	r.WinnerVariantID, r.Decision, r.Reason = p.WinnerVariantID, p.Decision, p.Reason
	return r
}

func metricReport(t *experiment.Test, name string, samples map[string]stats.Sample) experiment.MetricReport {
	m := experiment.MetricReport{Metric: name, Primary: name == t.PrimaryMetric}
	level := t.ConfidenceLevel
	for _, v := range t.Variants {
		s := samples[v.ID]
		vs := experiment.VariantStats{VariantID: v.ID, VariantName: v.Name, SampleSize: s.N}
		if s.N > 0 {
			vs.MeanValue = ptr(s.Mean)
		}
		if s.N > 1 {
			vs.StdDev = ptr(math.Sqrt(s.Variance))
			if lo, hi, err := stats.MeanInterval(s, level); err == nil {
				vs.ConfidenceIntervalLower, vs.ConfidenceIntervalUpper = ptr(lo), ptr(hi)
			}
		}
		m.Variants = append(m.Variants, vs)
	}
	control := samples[t.ControlVariantID]
	for _, v := range t.Variants {
		if v.ID == t.ControlVariantID {
			continue
		}
		m.Comparisons = append(m.Comparisons, compare(t, control, samples[v.ID], v.ID))
	}
	m.WinnerVariantID, m.Decision, m.Reason = decide(t, m)
	return m
}

func compare(t *experiment.Test, control, treatment stats.Sample, variantID string) experiment.Comparison {
	c := experiment.Comparison{VariantID: variantID, ControlVariantID: t.ControlVariantID}
	if control.N > 0 && treatment.N > 0 {
		c.AbsoluteDifference = ptr(treatment.Mean - control.Mean)
		if control.Mean != 0 {
			c.RelativeDifference = ptr((treatment.Mean - control.Mean) / math.Abs(control.Mean))
		}
	}
	w, err := stats.WelchTTest(control, treatment, t.ConfidenceLevel)
	switch {
	case errors.Is(err, stats.ErrInsufficientData):
		c.Note = "each variant needs at least 2 users for a test"
		return c
	case errors.Is(err, stats.ErrZeroVariance):
		c.Note = "both variants have zero variance: no test is possible"
		return c
	case err != nil:
		c.Note = err.Error()
		return c
	}
	c.ConfidenceIntervalLower, c.ConfidenceIntervalUpper = ptr(w.CILower), ptr(w.CIUpper)
	c.TStatistic, c.DegreesOfFreedom, c.PValue = ptr(w.T), ptr(w.DoF), ptr(w.PValue)
	c.Significant = w.PValue < 1-t.ConfidenceLevel
	return c
}

// decide picks the metric's winner. Every variant must have reached the
// minimum sample size. A treatment wins when it is significantly above
// control (the best such treatment by mean); control wins when every
// treatment is significantly below it. Otherwise there is no winner.
func decide(t *experiment.Test, m experiment.MetricReport) (*string, string, string) {
	total := int64(0)
	for _, v := range m.Variants {
		total += v.SampleSize
	}
	if total == 0 {
		return nil, experiment.DecisionNoData, fmt.Sprintf("no results recorded for metric %s yet", m.Metric)
	}
	for _, v := range m.Variants {
		if v.SampleSize < t.MinSampleSize {
			return nil, experiment.DecisionInsufficientSample,
				fmt.Sprintf("variant %s has %d of the %d users needed", v.VariantID, v.SampleSize, t.MinSampleSize)
		}
	}
	var best *experiment.Comparison
	allWorse := len(m.Comparisons) > 0
	for i := range m.Comparisons {
		c := &m.Comparisons[i]
		if !c.Significant || c.AbsoluteDifference == nil {
			allWorse = false
			continue
		}
		if *c.AbsoluteDifference > 0 {
			allWorse = false
			if best == nil || *c.AbsoluteDifference > *best.AbsoluteDifference {
				best = c
			}
		}
	}
	alpha := 1 - t.ConfidenceLevel
	switch {
	case best != nil:
		return ptr(best.VariantID), experiment.DecisionWinner,
			fmt.Sprintf("variant %s beats control %s (p = %.3g < %.3g)", best.VariantID, t.ControlVariantID, *best.PValue, alpha)
	case allWorse:
		return ptr(t.ControlVariantID), experiment.DecisionWinner,
			fmt.Sprintf("control %s beats every other variant at p < %.3g", t.ControlVariantID, alpha)
	}
	return nil, experiment.DecisionNotSignificant,
		fmt.Sprintf("no variant differs from control %s at the %.3g confidence level", t.ControlVariantID, t.ConfidenceLevel)
}

func ptr[T any](v T) *T { return &v }
