package analysis

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
)

// Segments: the primary metric by each declared attribute of the users'
// assignments. ClickHouse returns the statistics per value and variant
// (counting each event_id once: assignment_attributes may hold an event
// twice, see migration 0004); the report compares the variants in each
// segment, corrects the p-values over segments and scans for heterogeneity.

const (
	// Segment names for users without the attribute and for the values
	// beyond the MaxSegmentValues largest.
	SegmentNone  = "(none)"
	SegmentOther = "(other)"
	// MaxSegmentValues is how many values of an attribute are analysed one
	// by one; the others are pooled into SegmentOther.
	MaxSegmentValues = 20
	// MaxSegmentComparisons bounds the segment comparisons of a report
	// (see segmentValueLimit).
	MaxSegmentComparisons = 400
)

// SegmentData is the primary metric by the values of one attribute: per
// value and variant, continuous or binary statistics.
type SegmentData struct {
	Continuous map[string]map[string]stats.Sample
	Binary     map[string]map[string]stats.Proportion
}

// segmentOfUser is each assigned user's value of one attribute, from their
// latest assignment with attributes (” when it lacks the key; parameters:
// attribute key, test id).
const segmentOfUser = `
        SELECT user_id, argMax(attribute_values[indexOf(attribute_keys, ?)], event_time) AS seg
        FROM assignment_attributes
        WHERE test_id = ?
        GROUP BY user_id`

// segmentContinuousQuery is resultsQuery's continuous rule by segment
// (parameters: test id, metric, attribute key, test id).
const segmentContinuousQuery = `
SELECT seg, variant_id, count() AS users, avg(user_value) AS mean, varSampStable(user_value) AS variance
FROM (` + perUserMetric + `)
ANY LEFT JOIN (` + segmentOfUser + `) USING user_id
GROUP BY seg, variant_id`

// segmentBinaryQuery is binaryQuery by segment (parameters: test id, test
// id, metric, attribute key, test id).
const segmentBinaryQuery = `
SELECT seg, variant_id, count() AS users, sum(converted) AS conversions
FROM (
    SELECT variant_id, user_id, max(converted) AS converted
    FROM (
        SELECT variant_id, user_id, toUInt8(0) AS converted FROM assignments WHERE test_id = ?
        UNION ALL
        SELECT variant_id, user_id, toUInt8(value != 0) AS converted FROM results WHERE test_id = ? AND metric = ?
    )
    GROUP BY variant_id, user_id
)
ANY LEFT JOIN (` + segmentOfUser + `) USING user_id
GROUP BY seg, variant_id`

// loadSegment reads the primary metric by the values of one attribute.
func loadSegment(ctx context.Context, conn driver.Conn, testID string, spec experiment.Metric, attr string, limit int, d *Data) error {
	binary := spec.Type == experiment.MetricBinary
	var (
		rows driver.Rows
		err  error
	)
	if binary {
		rows, err = conn.Query(ctx, segmentBinaryQuery, testID, testID, spec.Name, attr, testID)
	} else {
		rows, err = conn.Query(ctx, segmentContinuousQuery, testID, spec.Name, attr, testID)
	}
	if err != nil {
		return fmt.Errorf("querying segments by %s: %w", attr, err)
	}
	defer rows.Close()
	sd := SegmentData{Continuous: map[string]map[string]stats.Sample{}, Binary: map[string]map[string]stats.Proportion{}}
	for rows.Next() {
		var seg, variant string
		var n uint64
		if binary {
			var conv uint64
			if err := rows.Scan(&seg, &variant, &n, &conv); err != nil {
				return fmt.Errorf("scanning segments by %s: %w", attr, err)
			}
			if seg == "" {
				seg = SegmentNone
			}
			if sd.Binary[seg] == nil {
				sd.Binary[seg] = map[string]stats.Proportion{}
			}
			sd.Binary[seg][variant] = stats.Proportion{N: int64(n), Successes: int64(conv)}
		} else {
			var mean, variance float64
			if err := rows.Scan(&seg, &variant, &n, &mean, &variance); err != nil {
				return fmt.Errorf("scanning segments by %s: %w", attr, err)
			}
			if seg == "" {
				seg = SegmentNone
			}
			if sd.Continuous[seg] == nil {
				sd.Continuous[seg] = map[string]stats.Sample{}
			}
			sd.Continuous[seg][variant] = sample(n, mean, variance)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading segments by %s: %w", attr, err)
	}
	poolSmallSegments(&sd, limit)
	if d.Segments == nil {
		d.Segments = map[string]SegmentData{}
	}
	d.Segments[attr] = sd
	return nil
}

// segmentValueLimit is how many values of each attribute are analysed one by
// one: MaxSegmentValues, fewer when the test has many segment attributes and
// treatments, so that the report (which travels as one NATS message) holds
// at most MaxSegmentComparisons segment comparisons.
func segmentValueLimit(t *experiment.Test) int {
	per := len(t.Segments) * max(1, len(t.Variants)-1)
	return min(MaxSegmentValues, max(2, MaxSegmentComparisons/max(1, per)))
}

// poolSmallSegments merges the values beyond the limit largest (SegmentNone
// always stays apart) into SegmentOther.
func poolSmallSegments(sd *SegmentData, limit int) {
	values := segmentValues(*sd, len(sd.Binary) > 0)
	kept := 0
	for _, v := range values {
		if v == SegmentNone {
			continue
		}
		if kept < limit {
			kept++
			continue
		}
		for variant, p := range sd.Binary[v] {
			if sd.Binary[SegmentOther] == nil {
				sd.Binary[SegmentOther] = map[string]stats.Proportion{}
			}
			o := sd.Binary[SegmentOther][variant]
			sd.Binary[SegmentOther][variant] = stats.Proportion{N: o.N + p.N, Successes: o.Successes + p.Successes}
		}
		for variant, s := range sd.Continuous[v] {
			if sd.Continuous[SegmentOther] == nil {
				sd.Continuous[SegmentOther] = map[string]stats.Sample{}
			}
			sd.Continuous[SegmentOther][variant] = stats.Combine(sd.Continuous[SegmentOther][variant], s)
		}
		delete(sd.Binary, v)
		delete(sd.Continuous, v)
	}
}

// segmentReports analyses the primary metric by each declared attribute.
// Each segment's comparisons are those of the whole test; their p-values
// are adjusted over every segment and treatment of the attribute, and a
// heterogeneity scan per treatment flags segments whose effect differs
// from the rest's.
func segmentReports(t *experiment.Test, spec experiment.Metric, data Data) []experiment.SegmentReport {
	if len(t.Segments) == 0 {
		return nil
	}
	out := make([]experiment.SegmentReport, 0, len(t.Segments))
	binary := spec.Type == experiment.MetricBinary
	for _, attr := range t.Segments {
		sr := experiment.SegmentReport{Attribute: attr, Metric: spec.Name, Segments: []experiment.SegmentResult{}, Heterogeneity: []experiment.HeterogeneityScan{}}
		if spec.Type == experiment.MetricRatio {
			sr.Note = "segments are analysed for continuous and binary primary metrics, not ratio metrics"
			out = append(out, sr)
			continue
		}
		sd := data.Segments[attr]
		values := segmentValues(sd, binary)
		// Effects per treatment for the scan.
		effects := map[string][]stats.SegmentEffect{}
		for _, value := range values {
			arms := make(map[string]arm, len(t.Variants))
			res := experiment.SegmentResult{Value: value}
			for _, v := range t.Variants {
				var a arm
				if binary {
					a.prop = sd.Binary[value][v.ID]
					a.sample = stats.Sample{N: a.prop.N, Mean: a.prop.Rate()}
					if a.prop.N > 1 {
						p := a.sample.Mean
						a.sample.Variance = p * (1 - p) * float64(a.prop.N) / float64(a.prop.N-1)
					}
				} else {
					a.sample = sd.Continuous[value][v.ID]
				}
				arms[v.ID] = a
				res.Variants = append(res.Variants, variantStats(t, v, a, binary))
			}
			control := arms[t.ControlVariantID]
			for _, v := range t.Variants {
				if v.ID == t.ControlVariantID {
					continue
				}
				c := compare(t, spec, control, arms[v.ID], v.ID)
				c.Sequential = sequentialResult(t, spec, control, arms[v.ID])
				res.Comparisons = append(res.Comparisons, c)
				if se := effectStdErr(control, arms[v.ID], binary); c.AbsoluteDifference != nil && se > 0 && c.PValue != nil {
					effects[v.ID] = append(effects[v.ID], stats.SegmentEffect{Name: value, Effect: *c.AbsoluteDifference, StdErr: se})
				}
			}
			sr.Segments = append(sr.Segments, res)
		}
		adjustSegments(t, sr.Segments)
		for _, v := range t.Variants {
			if v.ID != t.ControlVariantID {
				sr.Heterogeneity = append(sr.Heterogeneity, heterogeneity(t, v.ID, effects[v.ID]))
			}
		}
		out = append(out, sr)
	}
	return out
}

// segmentValues orders an attribute's values by users, largest first.
func segmentValues(sd SegmentData, binary bool) []string {
	users := map[string]int64{}
	if binary {
		for value, arms := range sd.Binary {
			for _, p := range arms {
				users[value] += p.N
			}
		}
	} else {
		for value, arms := range sd.Continuous {
			for _, s := range arms {
				users[value] += s.N
			}
		}
	}
	values := make([]string, 0, len(users))
	for v := range users {
		values = append(values, v)
	}
	sort.Slice(values, func(i, j int) bool {
		if users[values[i]] != users[values[j]] {
			return users[values[i]] > users[values[j]]
		}
		return values[i] < values[j]
	})
	return values
}

// effectStdErr is the standard error of the difference of two arms, as
// the fixed-horizon tests compute it.
func effectStdErr(control, treatment arm, binary bool) float64 {
	if binary {
		if control.prop.N == 0 || treatment.prop.N == 0 {
			return 0
		}
		pc, pt := control.prop.Rate(), treatment.prop.Rate()
		return math.Sqrt(pc*(1-pc)/float64(control.prop.N) + pt*(1-pt)/float64(treatment.prop.N))
	}
	if control.sample.N < 2 || treatment.sample.N < 2 {
		return 0
	}
	return math.Sqrt(control.sample.Variance/float64(control.sample.N) + treatment.sample.Variance/float64(treatment.sample.N))
}

// adjustSegments corrects the p-values of every segment's comparisons as
// one family (segments x treatments), fixed-horizon and sequential alike.
func adjustSegments(t *experiment.Test, segs []experiment.SegmentResult) {
	var cs []*experiment.Comparison
	for i := range segs {
		for j := range segs[i].Comparisons {
			cs = append(cs, &segs[i].Comparisons[j])
		}
	}
	flat := make([]experiment.Comparison, len(cs))
	for i, c := range cs {
		flat[i] = *c
	}
	adjust(t, flat)
	adjustSequential(t, flat)
	for i, c := range cs {
		*c = flat[i]
	}
}

// heterogeneity runs the scan of one treatment over the segments with a
// test.
func heterogeneity(t *experiment.Test, variantID string, effects []stats.SegmentEffect) experiment.HeterogeneityScan {
	h := experiment.HeterogeneityScan{VariantID: variantID, Flagged: []string{}, Segments: []experiment.SegmentHeterogeneity{}}
	s, err := stats.ScanSegments(effects, 1-t.ConfidenceLevel, t.Correction())
	if err != nil {
		h.Note = "the scan needs at least 2 segments with a test: " + noTestNote(err)
		return h
	}
	h.Pooled, h.Q, h.DoF, h.QPValue, h.I2 = ptr(s.Pooled), ptr(s.Q), ptr(s.DoF), ptr(s.QPValue), ptr(s.I2)
	for _, d := range s.Segments {
		h.Segments = append(h.Segments, experiment.SegmentHeterogeneity{
			Value: d.Name, Effect: d.Effect, StdErr: d.StdErr, Rest: d.Rest, Difference: d.Diff, Z: d.Z,
			PValue: d.PValue, PValueAdjusted: d.AdjustedPValue, Flagged: d.Flagged,
		})
		if d.Flagged {
			h.Flagged = append(h.Flagged, d.Name)
		}
	}
	return h
}
