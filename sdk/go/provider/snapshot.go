package provider

import (
	"math"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/abacus-ab/abacus/experiment"
)

// snapshot is one set of definitions as fetched, with everything an
// evaluation needs computed in advance. It is never modified once built:
// the poller replaces it as a whole.
type snapshot struct {
	etag  string
	flags map[string]*flag // by key and by test id
	// byMetric lists, per metric name, the running tests whose primary or
	// declared metrics name it: where Track sends a result.
	byMetric map[string][]*flag
}

// flag is one test as an OpenFeature flag.
type flag struct {
	test     *experiment.Test
	variants map[string]*variant // by variant id
	// disabled is the metadata of a draft or stopped test.
	disabled openfeature.FlagMetadata
}

// variant is a variant's value as each evaluation type reads it (an
// object evaluation takes any value, as OFREP providers do).
type variant struct {
	id    string
	value any
	meta  openfeature.FlagMetadata
	b     bool
	bOK   bool
	s     string
	sOK   bool
	f     float64
	fOK   bool
	i     int64
	iOK   bool
}

func newSnapshot(tests []*experiment.Test, etag string) *snapshot {
	s := &snapshot{etag: etag, flags: make(map[string]*flag, 2*len(tests)), byMetric: map[string][]*flag{}}
	var keyed []*flag
	for _, t := range tests {
		if t == nil || t.ID == "" || len(t.Variants) == 0 {
			continue
		}
		f := &flag{test: t, variants: make(map[string]*variant, len(t.Variants)), disabled: metadata(t, nil)}
		for i := range t.Variants {
			v := &t.Variants[i]
			f.variants[v.ID] = newVariant(t, v)
		}
		s.flags[t.ID] = f
		if t.Key != "" {
			keyed = append(keyed, f)
		}
		if t.Status == experiment.StatusRunning {
			seen := map[string]bool{}
			add := func(m string) {
				if m != "" && !seen[m] {
					seen[m] = true
					s.byMetric[m] = append(s.byMetric[m], f)
				}
			}
			add(t.PrimaryMetric)
			for _, m := range t.Metrics {
				add(m.Name)
				add(m.Numerator)
				add(m.Denominator)
			}
		}
	}
	// Keys after ids: a key that is another test's id names the keyed
	// test, as on the server, which looks a flag up by key first.
	for _, f := range keyed {
		s.flags[f.test.Key] = f
	}
	return s
}

func newVariant(t *experiment.Test, v *experiment.Variant) *variant {
	out := &variant{id: v.ID, value: v.FlagValue(), meta: metadata(t, v)}
	switch x := out.value.(type) {
	case bool:
		out.b, out.bOK = x, true
	case string:
		out.s, out.sOK = x, true
	case float64:
		out.f, out.fOK = x, true
		if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
			out.i, out.iOK = int64(x), true
		}
	}
	return out
}

// metadata is an evaluation's flag metadata, as the server's OFREP
// answers give it.
func metadata(t *experiment.Test, v *experiment.Variant) openfeature.FlagMetadata {
	m := openfeature.FlagMetadata{"test_id": t.ID, "test_type": string(t.Type), "status": string(t.Status)}
	if t.Key != "" {
		m["test_key"] = t.Key
	}
	if v != nil && v.Name != "" {
		m["variant_name"] = v.Name
	}
	return m
}
