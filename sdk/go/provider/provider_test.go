package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"go.uber.org/goleak"

	"github.com/abacus-ab/abacus/experiment"
)

// TestMain checks that Shutdown leaves no goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeAbacus serves /api/ab-testing/flags (with ETag and 304) and
// /api/ab-testing/events (recording each request body).
type fakeAbacus struct {
	mu         sync.Mutex
	tests      []*experiment.Test
	gen        int
	flagsCode  int // answers /flags with this status when non-zero
	flagsGets  int
	notMod     int
	ifNoneSeen []string
	eventCodes []int // the status of each /events request in turn, then 202
	bodies     [][]byte
	events     []wireEvent
	posted     chan struct{} // gets a value after each /events request
	block      chan struct{} // when set, /events waits for it to close
	keys       []string      // X-API-Key of each request
}

func newFake(t testing.TB, tests ...*experiment.Test) (*fakeAbacus, *httptest.Server) {
	t.Helper()
	f := &fakeAbacus{tests: tests, posted: make(chan struct{}, 1000)}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeAbacus) setTests(tests ...*experiment.Test) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tests = tests
	f.gen++
}

func (f *fakeAbacus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.keys = append(f.keys, r.Header.Get("X-API-Key"))
	f.mu.Unlock()
	switch r.URL.Path {
	case flagsPath:
		f.mu.Lock()
		defer f.mu.Unlock()
		f.flagsGets++
		if f.flagsCode != 0 {
			w.WriteHeader(f.flagsCode)
			return
		}
		etag := fmt.Sprintf(`"g%d"`, f.gen)
		w.Header().Set("ETag", etag)
		f.ifNoneSeen = append(f.ifNoneSeen, r.Header.Get("If-None-Match"))
		if r.Header.Get("If-None-Match") == etag {
			f.notMod++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if err := json.NewEncoder(w).Encode(map[string]any{"tests": f.tests}); err != nil {
			panic(err)
		}
	case eventsPath:
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		block := f.block
		f.mu.Unlock()
		if block != nil {
			<-block
		}
		f.mu.Lock()
		f.bodies = append(f.bodies, body)
		code := http.StatusAccepted
		if len(f.eventCodes) > 0 {
			code, f.eventCodes = f.eventCodes[0], f.eventCodes[1:]
		}
		var evs []wireEvent
		if err := json.Unmarshal(body, &evs); err != nil {
			panic(err)
		}
		if code == http.StatusAccepted {
			f.events = append(f.events, evs...)
		}
		f.mu.Unlock()
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
		}
		w.WriteHeader(code)
		if code == http.StatusMultiStatus {
			// The first event rejected, the others accepted.
			answer := map[string]any{
				"accepted": len(evs) - 1, "rejected": 1,
				"results": []map[string]any{{"index": 0, "status": "rejected", "error": "bad"}},
			}
			if err := json.NewEncoder(w).Encode(answer); err != nil {
				panic(err)
			}
			f.mu.Lock()
			f.events = append(f.events, evs[1:]...)
			f.mu.Unlock()
		}
		f.posted <- struct{}{}
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeAbacus) received() []wireEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]wireEvent(nil), f.events...)
}

func abTest(id, key string, status experiment.Status, values ...any) *experiment.Test {
	t := &experiment.Test{ID: id, Key: key, Name: id, Type: experiment.TypeRouting, Status: status, PrimaryMetric: "conversion", ControlVariantID: "v0"}
	for i, v := range values {
		t.Variants = append(t.Variants, experiment.Variant{
			ID: fmt.Sprintf("v%d", i), Name: fmt.Sprintf("Variant %d", i), TrafficPercentage: 100 / float64(len(values)), Value: v,
		})
	}
	return t
}

// start returns an initialised provider on srv, shut down at cleanup.
func start(t *testing.T, srv *httptest.Server, cfg Config) *Provider {
	t.Helper()
	cfg.BaseURL = srv.URL
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 5 * time.Millisecond
	}
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = time.Millisecond
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.InitWithContext(t.Context(), openfeature.EvaluationContext{}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() { shutdown(t, p) })
	return p
}

// shutdown shuts p down, failing t when that errs.
func shutdown(t *testing.T, p *Provider) {
	t.Helper()
	if err := p.ShutdownWithContext(context.Background()); err != nil {
		t.Error(err)
	}
}

func user(id string) openfeature.FlattenedContext {
	return openfeature.FlattenedContext{openfeature.TargetingKey: id}
}

func TestEvaluationTypes(t *testing.T) {
	_, srv := newFake(t,
		abTest("t-bool", "bool-flag", experiment.StatusRunning, true, false),
		abTest("t-str", "str-flag", experiment.StatusRunning, "red", "blue"),
		abTest("t-float", "", experiment.StatusRunning, 0.5, 1.5),
		abTest("t-int", "int-flag", experiment.StatusRunning, 3.0, 4.0),
		abTest("t-obj", "obj-flag", experiment.StatusRunning, map[string]any{"steps": 3.0}, map[string]any{"steps": 2.0}),
		abTest("t-draft", "draft-flag", experiment.StatusDraft, true, false),
		abTest("t-stopped", "stopped-flag", experiment.StatusStopped, true, false),
	)
	p := start(t, srv, Config{DisableEvents: true})
	ctx := t.Context()
	u := user("user-1")

	type result struct {
		Value   any
		Reason  openfeature.Reason
		Variant string
		Code    openfeature.ErrorCode
	}
	res := func(v any, d openfeature.ProviderResolutionDetail) result {
		return result{v, d.Reason, d.Variant, d.ResolutionDetail().ErrorCode}
	}
	// want computes what Decide gives user-1 in test id.
	want := func(id string, values ...any) result {
		tt := abTest(id, "", experiment.StatusRunning, values...)
		v := experiment.Decide(tt, experiment.EvalContext{UserID: "user-1"}).Variant
		return result{v.Value, openfeature.SplitReason, v.ID, ""}
	}
	errRes := func(def any, code openfeature.ErrorCode) result {
		return result{def, openfeature.ErrorReason, "", code}
	}
	tests := []struct {
		name string
		got  result
		want result
	}{
		{"bool by key", res(unpack(p.BooleanEvaluation(ctx, "bool-flag", false, u))), want("t-bool", true, false)},
		{"bool by id", res(unpack(p.BooleanEvaluation(ctx, "t-bool", false, u))), want("t-bool", true, false)},
		{"string", res(unpack(p.StringEvaluation(ctx, "str-flag", "none", u))), want("t-str", "red", "blue")},
		{"float by id", res(unpack(p.FloatEvaluation(ctx, "t-float", -1, u))), want("t-float", 0.5, 1.5)},
		{"int", res(unpackInt(p.IntEvaluation(ctx, "int-flag", -1, u))), want("t-int", 3.0, 4.0)},
		{"int of a float", res(unpackInt(p.IntEvaluation(ctx, "t-float", -1, u))), errRes(-1.0, openfeature.TypeMismatchCode)},
		{"float of an int", res(unpack(p.FloatEvaluation(ctx, "int-flag", -1, u))), want("t-int", 3.0, 4.0)},
		{"object", res(unpack(p.ObjectEvaluation(ctx, "obj-flag", nil, u))), want("t-obj", map[string]any{"steps": 3.0}, map[string]any{"steps": 2.0})},
		{"object of a bool", res(unpack(p.ObjectEvaluation(ctx, "bool-flag", nil, u))), want("t-bool", true, false)},
		{"bool of a string", res(unpack(p.BooleanEvaluation(ctx, "str-flag", false, u))), errRes(false, openfeature.TypeMismatchCode)},
		{"string of an object", res(unpack(p.StringEvaluation(ctx, "obj-flag", "d", u))), errRes("d", openfeature.TypeMismatchCode)},
		{"unknown flag", res(unpack(p.BooleanEvaluation(ctx, "nope", true, u))), errRes(true, openfeature.FlagNotFoundCode)},
		{"no targeting key", res(unpack(p.BooleanEvaluation(ctx, "bool-flag", true, openfeature.FlattenedContext{"country": "fr"}))), errRes(true, openfeature.TargetingKeyMissingCode)},
		{"targeting key not a string", res(unpack(p.BooleanEvaluation(ctx, "bool-flag", true, openfeature.FlattenedContext{openfeature.TargetingKey: 7}))), errRes(true, openfeature.TargetingKeyMissingCode)},
		{"draft", res(unpack(p.BooleanEvaluation(ctx, "draft-flag", true, u))), result{true, openfeature.DisabledReason, "", ""}},
		{"stopped", res(unpack(p.StringEvaluation(ctx, "stopped-flag", "d", u))), result{"d", openfeature.DisabledReason, "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("evaluation (-want +got):\n%s", diff)
			}
		})
	}

	d := p.BooleanEvaluation(ctx, "bool-flag", false, u)
	wantMeta := openfeature.FlagMetadata{"test_id": "t-bool", "test_key": "bool-flag", "test_type": "routing", "status": "running", "variant_name": "Variant " + d.Variant[1:]}
	if diff := cmp.Diff(wantMeta, d.FlagMetadata); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	d = p.BooleanEvaluation(ctx, "stopped-flag", false, u)
	if got := d.FlagMetadata["status"]; got != "stopped" {
		t.Errorf("metadata of a stopped flag: status = %v, want stopped", got)
	}
}

func unpack[T any](d openfeature.GenericResolutionDetail[T]) (any, openfeature.ProviderResolutionDetail) {
	return d.Value, d.ProviderResolutionDetail
}

func unpackInt(d openfeature.IntResolutionDetail) (any, openfeature.ProviderResolutionDetail) {
	return float64(d.Value), d.ProviderResolutionDetail
}

func TestNotReady(t *testing.T) {
	p, err := New(Config{BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	d := p.BooleanEvaluation(t.Context(), "f", true, user("u"))
	if d.Value != true || d.Reason != openfeature.ErrorReason || d.ResolutionDetail().ErrorCode != openfeature.ProviderNotReadyCode {
		t.Errorf("evaluation before Init = %+v, want the default with PROVIDER_NOT_READY", d)
	}
	p.Shutdown()
}

func TestMatchesDecide(t *testing.T) {
	tt := abTest("t-3", "three", experiment.StatusRunning, "a", "b", "c")
	tt.Variants[0].TrafficPercentage, tt.Variants[1].TrafficPercentage, tt.Variants[2].TrafficPercentage = 20, 30, 50
	_, srv := newFake(t, tt)
	p := start(t, srv, Config{DisableEvents: true})
	for i := range 10_000 {
		u := fmt.Sprintf("user-%d", i)
		want := experiment.Decide(tt, experiment.EvalContext{UserID: u}).Variant
		got := p.StringEvaluation(t.Context(), "three", "", user(u))
		if got.Variant != want.ID || got.Value != want.Value {
			t.Fatalf("StringEvaluation(%q) = %s %v, want %s %v", u, got.Variant, got.Value, want.ID, want.Value)
		}
	}
}

func TestKeyBeforeID(t *testing.T) {
	// b's key is a's id: the key wins, as on the server.
	a := abTest("a", "", experiment.StatusRunning, "from-a", "from-a")
	b := abTest("b", "a", experiment.StatusRunning, "from-b", "from-b")
	for _, order := range [][]*experiment.Test{{a, b}, {b, a}} {
		s := newSnapshot(order, "")
		if got := s.flags["a"].test.ID; got != "b" {
			t.Errorf("flag a is test %s, want b (by key)", got)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []Config{{}, {BaseURL: "abacus:8000"}, {BaseURL: "http://a", BatchSize: 20_000}, {BaseURL: "http://a", PollInterval: -1}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error, want one", cfg)
		}
	}
}

// waitEvent waits for an OpenFeature event of type want from p.
func waitEvent(t *testing.T, p *Provider, want openfeature.EventType) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-p.EventChannel():
			if ev.EventType == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %s event within 10s", want)
		}
	}
}

func TestPollingWithETag(t *testing.T) {
	f, srv := newFake(t, abTest("t1", "flag", experiment.StatusDraft, true, false))
	p := start(t, srv, Config{PollInterval: 5 * time.Millisecond, DisableEvents: true, APIKey: "k1"})
	if d := p.BooleanEvaluation(t.Context(), "flag", false, user("u")); d.Reason != openfeature.DisabledReason {
		t.Fatalf("draft flag: reason %s, want DISABLED", d.Reason)
	}
	// Unchanged definitions cost 304s, until they change.
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		n := f.notMod
		f.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no 304 answers within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	f.setTests(abTest("t1", "flag", experiment.StatusRunning, true, false))
	waitEvent(t, p, openfeature.ProviderConfigChange)
	if d := p.BooleanEvaluation(t.Context(), "flag", false, user("u")); d.Reason != openfeature.SplitReason {
		t.Errorf("started flag: reason %s, want SPLIT", d.Reason)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ifNoneSeen[0] != "" || f.ifNoneSeen[1] != `"g0"` {
		t.Errorf("If-None-Match of the first requests = %q, want none, then the ETag", f.ifNoneSeen[:2])
	}
	for _, k := range f.keys {
		if k != "k1" {
			t.Fatalf("X-API-Key = %q, want k1", k)
		}
	}
}

func TestInitFailure(t *testing.T) {
	t.Run("server error, then ready", func(t *testing.T) {
		f, srv := newFake(t, abTest("t1", "flag", experiment.StatusRunning, true, false))
		f.flagsCode = http.StatusInternalServerError
		p, _ := New(Config{BaseURL: srv.URL, PollInterval: 5 * time.Millisecond, DisableEvents: true})
		defer p.Shutdown()
		err := p.InitWithContext(t.Context(), openfeature.EvaluationContext{})
		var ie *openfeature.ProviderInitError
		if !errors.As(err, &ie) || ie.ErrorCode != openfeature.ProviderNotReadyCode {
			t.Fatalf("Init = %v, want a PROVIDER_NOT_READY init error", err)
		}
		if d := p.BooleanEvaluation(t.Context(), "flag", false, user("u")); d.ResolutionDetail().ErrorCode != openfeature.ProviderNotReadyCode {
			t.Errorf("evaluation = %+v, want PROVIDER_NOT_READY", d)
		}
		f.mu.Lock()
		f.flagsCode = 0
		f.mu.Unlock()
		waitEvent(t, p, openfeature.ProviderReady)
		if d := p.BooleanEvaluation(t.Context(), "flag", false, user("u")); d.Reason != openfeature.SplitReason {
			t.Errorf("evaluation once ready = %+v, want SPLIT", d)
		}
		// A failed poll makes the provider stale, the next success ready.
		f.mu.Lock()
		f.flagsCode = http.StatusServiceUnavailable
		f.mu.Unlock()
		waitEvent(t, p, openfeature.ProviderStale)
		if d := p.BooleanEvaluation(t.Context(), "flag", false, user("u")); d.Reason != openfeature.SplitReason {
			t.Errorf("evaluation while stale = %+v, want SPLIT on the last definitions", d)
		}
		f.mu.Lock()
		f.flagsCode = 0
		f.mu.Unlock()
		waitEvent(t, p, openfeature.ProviderReady)
	})
	t.Run("rejected key is fatal", func(t *testing.T) {
		f, srv := newFake(t)
		f.flagsCode = http.StatusUnauthorized
		p, _ := New(Config{BaseURL: srv.URL, DisableEvents: true})
		defer p.Shutdown()
		err := p.InitWithContext(t.Context(), openfeature.EvaluationContext{})
		var ie *openfeature.ProviderInitError
		if !errors.As(err, &ie) || ie.ErrorCode != openfeature.ProviderFatalCode {
			t.Fatalf("Init = %v, want a PROVIDER_FATAL init error", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		_, srv := newFake(t)
		srv.Close()
		p, _ := New(Config{BaseURL: srv.URL, DisableEvents: true})
		defer p.Shutdown()
		if err := p.InitWithContext(t.Context(), openfeature.EvaluationContext{}); err == nil {
			t.Fatal("Init = nil, want an error")
		}
	})
}

func TestExposuresOncePerUser(t *testing.T) {
	tt := abTest("t1", "flag", experiment.StatusRunning, true, false)
	f, srv := newFake(t, tt)
	p := start(t, srv, Config{BatchSize: 7})
	for range 50 {
		for u := range 100 {
			p.BooleanEvaluation(t.Context(), "flag", false, openfeature.FlattenedContext{openfeature.TargetingKey: fmt.Sprint("u", u), "country": "fr", "age": 31.0})
		}
	}
	// Neither a disabled flag nor an error exposes anyone.
	p.BooleanEvaluation(t.Context(), "nope", false, user("u1"))
	p.StringEvaluation(t.Context(), "flag", "", user("u1"))
	if err := p.ShutdownWithContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := f.received()
	if len(got) != 100 {
		t.Fatalf("%d exposures sent, want 100 (one per user)", len(got))
	}
	seen := map[string]bool{}
	for _, ev := range got {
		want := experiment.Decide(tt, experiment.EvalContext{UserID: ev.UserID}).Variant.ID
		if ev.Type != "assignment" || ev.TestID != "t1" || ev.VariantID != want || seen[ev.UserID] {
			t.Fatalf("exposure %+v: want one assignment of each user in t1 to %s", ev, want)
		}
		if diff := cmp.Diff(map[string]string{"country": "fr", "age": "31"}, ev.Attributes); diff != "" {
			t.Fatalf("attributes (-want +got):\n%s", diff)
		}
		seen[ev.UserID] = true
	}
	if s := p.Stats(); s.Sent != 100 || s.Dropped != 0 {
		t.Errorf("Stats = %+v, want 100 sent, none dropped", s)
	}
}

func TestRetriesSendTheSameBatch(t *testing.T) {
	tt := abTest("t1", "flag", experiment.StatusRunning, true, false)
	f, srv := newFake(t, tt)
	f.eventCodes = []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway}
	p := start(t, srv, Config{BatchSize: 3, Senders: 1})
	for u := range 3 {
		p.Track(t.Context(), "conversion", openfeature.NewEvaluationContext(fmt.Sprint("u", u), nil), openfeature.NewTrackingEventDetails(1))
	}
	for range 4 {
		<-f.posted
	}
	shutdown(t, p)
	f.mu.Lock()
	bodies := f.bodies
	f.mu.Unlock()
	for i := 1; i < len(bodies); i++ {
		if string(bodies[i]) != string(bodies[0]) {
			t.Fatalf("attempt %d sent %s, want the first attempt's body %s", i, bodies[i], bodies[0])
		}
	}
	if s := p.Stats(); s.Sent != 3 || s.Retries != 3 || s.Dropped != 0 {
		t.Errorf("Stats = %+v, want 3 sent after 3 retries", s)
	}
}

func TestDrops(t *testing.T) {
	t.Run("retries exhausted", func(t *testing.T) {
		f, srv := newFake(t, abTest("t1", "flag", experiment.StatusRunning, true, false))
		f.eventCodes = []int{500, 500, 500}
		var mu sync.Mutex
		var reasons []error
		p := start(t, srv, Config{MaxRetries: 2, OnDrop: func(_ int, err error) {
			mu.Lock()
			defer mu.Unlock()
			reasons = append(reasons, err)
		}})
		p.BooleanEvaluation(t.Context(), "flag", false, user("u1"))
		shutdown(t, p)
		if s := p.Stats(); s.Dropped != 1 || s.Sent != 0 {
			t.Errorf("Stats = %+v, want the exposure dropped", s)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(reasons) != 1 || !errors.Is(reasons[0], ErrGaveUp) {
			t.Errorf("OnDrop reasons = %v, want one ErrGaveUp", reasons)
		}
	})
	t.Run("rejected", func(t *testing.T) {
		f, srv := newFake(t, abTest("t1", "flag", experiment.StatusRunning, true, false))
		f.eventCodes = []int{http.StatusMultiStatus}
		p := start(t, srv, Config{BatchSize: 2, Senders: 1})
		p.BooleanEvaluation(t.Context(), "flag", false, user("u1"))
		p.BooleanEvaluation(t.Context(), "flag", false, user("u2"))
		shutdown(t, p)
		if s := p.Stats(); s.Dropped != 1 || s.Sent != 1 || s.Retries != 0 {
			t.Errorf("Stats = %+v, want one sent, one dropped, no retry", s)
		}
	})
	t.Run("refused", func(t *testing.T) {
		f, srv := newFake(t, abTest("t1", "flag", experiment.StatusRunning, true, false))
		f.eventCodes = []int{http.StatusBadRequest}
		p := start(t, srv, Config{BatchSize: 2, Senders: 1})
		p.BooleanEvaluation(t.Context(), "flag", false, user("u1"))
		p.BooleanEvaluation(t.Context(), "flag", false, user("u2"))
		shutdown(t, p)
		if s := p.Stats(); s.Dropped != 2 || s.Sent != 0 || s.Retries != 0 {
			t.Errorf("Stats = %+v, want both dropped, no retry", s)
		}
	})
	t.Run("queue full", func(t *testing.T) {
		f, srv := newFake(t, abTest("t1", "flag", experiment.StatusRunning, true, false))
		f.block = make(chan struct{})
		p := start(t, srv, Config{BatchSize: 1, Senders: 1, QueueSize: 2})
		p.BooleanEvaluation(t.Context(), "flag", false, user("first"))
		for len(p.queue) > 0 { // the sender took it and waits on the server
			time.Sleep(time.Millisecond)
		}
		for u := range 10 {
			p.BooleanEvaluation(t.Context(), "flag", false, user(fmt.Sprint("u", u)))
		}
		if s := p.Stats(); s.Dropped != 8 || s.Queued != 2 {
			t.Errorf("Stats = %+v, want 8 dropped, 2 queued", s)
		}
		// A dropped exposure is forgotten: the next evaluation queues it.
		f.mu.Lock()
		close(f.block)
		f.block = nil
		f.mu.Unlock()
		shutdown(t, p)
		p2 := start(t, srv, Config{})
		p2.exposed = p.exposed
		p2.BooleanEvaluation(t.Context(), "flag", false, user("u9"))
		shutdown(t, p2)
		if s := p2.Stats(); s.Sent != 1 {
			t.Errorf("re-evaluating a dropped exposure: Stats = %+v, want it sent", s)
		}
	})
	t.Run("shutdown deadline", func(t *testing.T) {
		f, srv := newFake(t, abTest("t1", "flag", experiment.StatusRunning, true, false))
		f.block = make(chan struct{})
		defer close(f.block)
		p := start(t, srv, Config{Senders: 1})
		p.BooleanEvaluation(t.Context(), "flag", false, user("u1"))
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if err := p.ShutdownWithContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want its deadline", err)
		}
		if s := p.Stats(); s.Dropped != 1 {
			t.Errorf("Stats = %+v, want the unsent exposure dropped", s)
		}
		if d := p.BooleanEvaluation(t.Context(), "flag", false, user("u2")); d.Reason != openfeature.SplitReason {
			t.Errorf("evaluation after Shutdown = %+v, want SPLIT", d)
		}
	})
}

func TestTrack(t *testing.T) {
	tt := abTest("t1", "flag", experiment.StatusRunning, true, false)
	other := abTest("t2", "other", experiment.StatusRunning, "x", "y")
	other.PrimaryMetric = "revenue"
	stopped := abTest("t3", "old", experiment.StatusStopped, true, false)
	f, srv := newFake(t, tt, other, stopped)
	p := start(t, srv, Config{Senders: 1}) // one sender keeps the order
	p.exposed.add(pair{"t1", "u1"})        // no exposure events in this test
	ec := openfeature.NewEvaluationContext("u1", nil)
	p.Track(t.Context(), "conversion", ec, openfeature.NewTrackingEventDetails(1))
	p.Track(t.Context(), "revenue", ec, openfeature.NewTrackingEventDetails(42.5))
	p.Track(t.Context(), "clicks", ec, openfeature.NewTrackingEventDetails(3).Add(FlagAttribute, "flag"))
	p.Track(t.Context(), "clicks", ec, openfeature.NewTrackingEventDetails(3).Add(FlagAttribute, "old"))
	p.Track(t.Context(), "unknown", ec, openfeature.NewTrackingEventDetails(1))
	p.Track(t.Context(), "conversion", openfeature.NewTargetlessEvaluationContext(nil), openfeature.NewTrackingEventDetails(1))
	shutdown(t, p)
	got := f.received()
	want := []wireEvent{
		{Type: "result", TestID: "t1", UserID: "u1", Metrics: map[string]float64{"conversion": 1}},
		{Type: "result", TestID: "t2", UserID: "u1", Metrics: map[string]float64{"revenue": 42.5}},
		{Type: "result", TestID: "t1", UserID: "u1", Metrics: map[string]float64{"clicks": 3}},
	}
	ids := map[string]bool{}
	for i := range got {
		if got[i].EventID == "" || ids[got[i].EventID] {
			t.Errorf("event %d has event_id %q, want a fresh one", i, got[i].EventID)
		}
		ids[got[i].EventID] = true
		tests := map[string]*experiment.Test{"t1": tt, "t2": other}
		if v := experiment.Decide(tests[got[i].TestID], experiment.EvalContext{UserID: "u1"}).Variant.ID; got[i].VariantID != v {
			t.Errorf("event %d variant %s, want %s", i, got[i].VariantID, v)
		}
		got[i].EventID, got[i].VariantID = "", ""
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tracked events (-want +got):\n%s", diff)
	}
}

func TestOpenFeatureClient(t *testing.T) {
	_, srv := newFake(t, abTest("t1", "flag", experiment.StatusRunning, "a", "b"))
	p, err := New(Config{BaseURL: srv.URL, DisableEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	api := isolated.NewAPI() // no global state between tests
	defer func() { _ = api.Shutdown(context.Background()) }()
	if err := api.SetProviderAndWait(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	c := api.NewClient()
	d, err := c.StringValueDetails(t.Context(), "flag", "none", openfeature.NewEvaluationContext("u1", nil))
	if err != nil || d.Reason != openfeature.SplitReason || d.Variant == "" || d.FlagMetadata["test_id"] != "t1" {
		t.Errorf("StringValueDetails = %+v, %v; want a SPLIT of t1", d, err)
	}
	if v, err := c.BooleanValue(t.Context(), "missing", true, openfeature.NewEvaluationContext("u1", nil)); v != true || err == nil {
		t.Errorf("BooleanValue(missing) = %v, %v; want the default and an error", v, err)
	}
}
