package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/abacus-ab/abacus/api"
	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/auth"
)

// jsProject is the npm project of the JavaScript OpenFeature test: its
// package-lock.json pins @openfeature/server-sdk, @openfeature/ofrep-provider
// and @openfeature/ofrep-core.
const jsProject = "testdata/openfeature-js"

// jsUsers is how many users the script evaluates; every jsAssignEvery-th
// of them is also assigned through /assign.
const (
	jsUsers       = 10_000
	jsAssignEvery = 20
)

// TestOpenFeatureJS evaluates tests through the OpenFeature JavaScript
// server SDK with its OFREP provider, run by the machine's Node against a
// real abacus serve in production mode (API keys checked): for 10,000
// users, a boolean flag (by key) and a string flag (by test id) give the
// variant and value of experiment.Decide on the server's definitions, and
// of /assign for a sample; draft, stopped and unknown flags give the
// caller's default; track() sends nothing. It needs node and npm: npm ci
// installs the locked packages (from the npm cache in the project when it
// has them), and a failure to install fails the test.
func TestOpenFeatureJS(t *testing.T) {
	if testing.Short() {
		t.Skip("OpenFeature JavaScript test skipped in -short mode")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("the OpenFeature JavaScript test needs Node.js 20 or later with npm (make test installs them, see node-toolchain)")
	}
	project, err := filepath.Abs(jsProject)
	if err != nil {
		t.Fatal(err)
	}
	// npm ci runs while the server starts.
	installed := make(chan error, 1)
	installLog := &syncBuffer{}
	go func() { installed <- jsInstall(t.Context(), project, installLog) }()

	admin, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	// Only the api role: the evaluations' exposure events wait in the
	// stream, and no ingest spends the machine's CPU on them.
	srv := startDev(t, "ENVIRONMENT=production", "API_KEY="+admin, "API_KEY_PEPPER=openfeature-js-pepper-0123", "ABACUS_TARGET=api")
	c := &jsAPI{t: t, base: srv.client.base, key: admin}

	boolTest := c.createTest(map[string]any{
		"test_name": "New checkout", "key": "new-checkout", "test_type": "workflow",
		"variants": []map[string]any{
			{"variant_id": "off", "value": false, "traffic_percentage": 50},
			{"variant_id": "on", "value": true, "configuration": map[string]any{"steps": 1}, "traffic_percentage": 50},
		},
		"control_variant_id": "off", "primary_metric": "conversion",
	})
	stringTest := c.createTest(map[string]any{
		"test_name": "Button colour", "test_type": "workflow",
		"variants": []map[string]any{
			{"variant_id": "grey", "value": "grey", "traffic_percentage": 34},
			{"variant_id": "green", "value": "green", "traffic_percentage": 33},
			{"variant_id": "blue", "value": "blue", "traffic_percentage": 33},
		},
		"control_variant_id": "grey", "primary_metric": "clicks",
	})
	c.createTest(map[string]any{
		"test_name": "Not started", "key": "not-started", "test_type": "routing",
		"variants": []map[string]any{
			{"variant_id": "a", "value": false, "traffic_percentage": 50},
			{"variant_id": "b", "value": true, "traffic_percentage": 50},
		},
		"control_variant_id": "a", "primary_metric": "m",
	})
	stoppedTest := c.createTest(map[string]any{
		"test_name": "Finished", "key": "finished", "test_type": "prompt",
		"variants": []map[string]any{
			{"variant_id": "a", "value": "short", "traffic_percentage": 50},
			{"variant_id": "b", "value": "long", "traffic_percentage": 50},
		},
		"control_variant_id": "a", "primary_metric": "m",
	})
	for _, id := range []string{boolTest, stringTest, stoppedTest} {
		c.mustPost("/api/ab-testing/tests/"+id+"/start", nil, http.StatusOK)
	}
	c.mustPost("/api/ab-testing/tests/"+stoppedTest+"/stop", nil, http.StatusOK)

	// The provider's key may only evaluate.
	var created struct {
		Key string `json:"key"`
	}
	c.post("/api/admin/keys", map[string]any{"user_id": "openfeature-js", "permissions": []string{"ab_testing.assign"}}, http.StatusCreated, &created)

	select {
	case err := <-installed:
		if err != nil {
			t.Fatalf("%v\n%s", err, installLog.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("npm ci did not finish within 3 minutes:\n%s", installLog.String())
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(project, "evaluate.mjs"))
	cmd.Dir = project
	cmd.Env = append(os.Environ(),
		"ABACUS_URL="+srv.client.base,
		"ABACUS_API_KEY="+created.Key,
		"ABACUS_USERS="+strconv.Itoa(jsUsers),
		"ABACUS_BOOL_FLAG=new-checkout",
		"ABACUS_STRING_FLAG="+stringTest,
		"ABACUS_DRAFT_FLAG=not-started",
		"ABACUS_STOPPED_FLAG=finished",
		"ABACUS_UNKNOWN_FLAG=no-such-flag",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("node evaluate.mjs: %v\n%s", err, stderr.String())
	}
	var out jsOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("decoding the script's output: %v\n%.2000s\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("node: %d users x 2 flags through the OFREP provider in %d ms (%v with start-up), %d requests",
		jsUsers, out.EvaluateMs, time.Since(start).Round(time.Millisecond), out.Requests)
	if len(out.Evaluations) != jsUsers {
		t.Fatalf("the script evaluated %d users, want %d", len(out.Evaluations), jsUsers)
	}

	t.Run("every user matches the server", func(t *testing.T) {
		// Every user against experiment.Decide on the server's own
		// definitions, and a sample of users against /assign.
		var defs struct {
			Tests []*experiment.Test `json:"tests"`
		}
		c.getKey(created.Key, "/api/ab-testing/flags", &defs)
		byID := map[string]*experiment.Test{}
		for _, d := range defs.Tests {
			byID[d.ID] = d
		}
		flagTests := []string{boolTest, stringTest}
		sample := c.assignSample(flagTests, jsUsers, jsAssignEvery)
		counts := map[string]int{}
		for i, ev := range out.Evaluations {
			user := "user-" + strconv.Itoa(i)
			for _, c := range []struct {
				testID string
				got    jsDetails
			}{{boolTest, ev.Bool}, {stringTest, ev.String}} {
				def := byID[c.testID]
				if def == nil {
					t.Fatalf("GET /api/ab-testing/flags has no test %s", c.testID)
				}
				d := experiment.Decide(def, experiment.EvalContext{UserID: user, Attributes: map[string]string{"plan": "pro"}})
				want := jsDetails{Value: d.Variant.FlagValue(), Reason: "SPLIT", Variant: d.Variant.ID}
				got := c.got
				got.FlagMetadata = nil
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("%s on test %s: the OpenFeature evaluation differs from experiment.Decide (-want +got):\n%s", user, c.testID, diff)
				}
				if v, ok := sample[c.testID][i]; ok && v != d.Variant.ID {
					t.Fatalf("%s on test %s: /assign = %s, the OpenFeature evaluation and experiment.Decide %s", user, c.testID, v, d.Variant.ID)
				}
				counts[c.testID+"/"+d.Variant.ID]++
			}
		}
		for _, id := range flagTests {
			if n := len(sample[id]); n != jsUsers/jsAssignEvery {
				t.Errorf("compared %d users of test %s with /assign, want %d", n, id, jsUsers/jsAssignEvery)
			}
		}
		// Each variant of the boolean flag gets about half (5 standard
		// deviations: 250 users).
		for _, v := range []string{"off", "on"} {
			if n := counts[boolTest+"/"+v]; n < 4750 || n > 5250 {
				t.Errorf("variant %s of the boolean flag got %d of %d users, want about half", v, n, jsUsers)
			}
		}
		t.Logf("users per variant: %v", counts)
	})

	t.Run("metadata", func(t *testing.T) {
		md := out.Evaluations[0].Bool.FlagMetadata
		want := map[string]any{"test_id": boolTest, "test_key": "new-checkout", "test_type": "workflow", "status": "running"}
		for k, v := range want {
			if md[k] != v {
				t.Errorf("flagMetadata[%q] = %v, want %v (all: %v)", k, md[k], v, md)
			}
		}
	})

	t.Run("defaults", func(t *testing.T) {
		// The server answers a draft or stopped flag 200 with reason
		// DISABLED and no value, which OFREP means as "use the
		// default" (checked on the wire below). @openfeature/ofrep-provider
		// 0.1.3 accepts a 200 only when it has a value, so the SDK gives
		// the default with reason ERROR and errorCode GENERAL instead of
		// DISABLED: the caller still gets its default.
		providerDisabled := "The OFREP response does not match the expected format"
		tests := []struct {
			name string
			got  jsDetails
			want jsDetails
		}{
			{"draft", out.Edge.Draft, jsDetails{Value: true, Reason: "ERROR", ErrorCode: "GENERAL", ErrorMessage: providerDisabled}},
			{"stopped", out.Edge.Stopped, jsDetails{Value: "fallback", Reason: "ERROR", ErrorCode: "GENERAL", ErrorMessage: providerDisabled}},
			{"unknown", out.Edge.Unknown, jsDetails{Value: "fallback", Reason: "ERROR", ErrorCode: "FLAG_NOT_FOUND"}},
			{"type mismatch", out.Edge.TypeMismatch, jsDetails{Value: "fallback", Reason: "ERROR", ErrorCode: "TYPE_MISMATCH"}},
			{"no targeting key", out.Edge.NoTargetingKey, jsDetails{Value: false, Reason: "ERROR", ErrorCode: "TARGETING_KEY_MISSING"}},
			// 401: the provider raises a plain error, which the SDK
			// reports as GENERAL.
			{"no API key", out.Edge.NoKey, jsDetails{Value: false, Reason: "ERROR", ErrorCode: "GENERAL"}},
		}
		for _, tt := range tests {
			got := tt.got
			if tt.want.ErrorMessage == "" {
				got.ErrorMessage = ""
			}
			got.FlagMetadata = nil
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s: (-want +got):\n%s", tt.name, diff)
			}
		}
		for _, flag := range []string{"not-started", "finished"} {
			var wire map[string]any
			c.postKey(created.Key, "/ofrep/v1/evaluate/flags/"+flag, map[string]any{"context": map[string]any{"targetingKey": "user-0"}}, http.StatusOK, &wire)
			if _, has := wire["value"]; has || wire["reason"] != "DISABLED" {
				t.Errorf("POST /ofrep/v1/evaluate/flags/%s = %v, want reason DISABLED and no value", flag, wire)
			}
		}
	})

	t.Run("track", func(t *testing.T) {
		// OFREP has no tracking endpoint, and the provider does not
		// implement track(): the SDK's track() is a no-op that sends
		// nothing. When a provider version implements it, this fails and
		// the server needs an endpoint for it.
		want := jsTrack{ProviderImplementsTrack: false, Requests: 0}
		if diff := cmp.Diff(want, out.Track); diff != "" {
			t.Errorf("track (-want +got):\n%s", diff)
		}
	})
}

// jsInstall runs npm ci in the project, with the npm cache in the project
// (.npm-cache, ignored by git) so that later runs need no network.
func jsInstall(ctx context.Context, project string, log io.Writer) error {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("finding npm, which the OpenFeature JavaScript test needs: %w", err)
	}
	cmd := exec.CommandContext(ctx, npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts",
		"--cache", filepath.Join(project, ".npm-cache"))
	cmd.Dir = project
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running npm ci in %s: %w", jsProject, err)
	}
	return nil
}

type jsOutput struct {
	EvaluateMs  int64 `json:"evaluateMs"`
	Requests    int   `json:"requests"`
	Evaluations []struct {
		Bool   jsDetails `json:"bool"`
		String jsDetails `json:"string"`
	} `json:"evaluations"`
	Edge struct {
		Draft          jsDetails `json:"draft"`
		Stopped        jsDetails `json:"stopped"`
		Unknown        jsDetails `json:"unknown"`
		TypeMismatch   jsDetails `json:"typeMismatch"`
		NoTargetingKey jsDetails `json:"noTargetingKey"`
		NoKey          jsDetails `json:"noKey"`
	} `json:"edge"`
	Track jsTrack `json:"track"`
}

// jsDetails is the part of an OpenFeature EvaluationDetails that the
// script prints.
type jsDetails struct {
	Value        any            `json:"value"`
	Reason       string         `json:"reason"`
	Variant      string         `json:"variant,omitempty"`
	ErrorCode    string         `json:"errorCode,omitempty"`
	ErrorMessage string         `json:"errorMessage,omitempty"`
	FlagMetadata map[string]any `json:"flagMetadata,omitempty"`
}

type jsTrack struct {
	ProviderImplementsTrack bool `json:"providerImplementsTrack"`
	Requests                int  `json:"requests"`
}

// jsAPI calls the API with a key.
type jsAPI struct {
	t    *testing.T
	base string
	key  string
}

func (a *jsAPI) createTest(body map[string]any) string {
	a.t.Helper()
	var created struct {
		TestID string `json:"test_id"`
	}
	a.post("/api/ab-testing/tests", body, http.StatusCreated, &created)
	return created.TestID
}

func (a *jsAPI) mustPost(path string, body any, want int) {
	a.t.Helper()
	a.post(path, body, want, nil)
}

func (a *jsAPI) post(path string, body any, want int, out any) {
	a.t.Helper()
	a.postKey(a.key, path, body, want, out)
}

func (a *jsAPI) postKey(key, path string, body any, want int, out any) {
	a.t.Helper()
	code, raw, err := a.do(http.MethodPost, key, path, body, out)
	if err != nil {
		a.t.Fatal(err)
	}
	if code != want {
		a.t.Fatalf("POST %s = %d %s, want %d", path, code, raw, want)
	}
}

func (a *jsAPI) getKey(key, path string, out any) {
	a.t.Helper()
	code, raw, err := a.do(http.MethodGet, key, path, nil, out)
	if err != nil {
		a.t.Fatal(err)
	}
	if code != http.StatusOK {
		a.t.Fatalf("GET %s = %d %s, want 200", path, code, raw)
	}
}

// do is a request that fails with an error, not the test, so that it can
// run in any goroutine.
func (a *jsAPI) do(method, key, path string, body any, out any) (int, []byte, error) {
	var r io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(api.HeaderAPIKey, key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return 0, nil, fmt.Errorf("%s %s: decoding %q: %w", method, path, raw, err)
		}
	}
	return resp.StatusCode, raw, nil
}

// assignSample assigns every step-th user of user-0 to user-(n-1) to each
// test through /assign, and returns each test's variant ids by user index.
func (a *jsAPI) assignSample(testIDs []string, n, step int) map[string]map[int]string {
	a.t.Helper()
	type job struct {
		testID string
		i      int
	}
	type result struct {
		job
		variantID string
		err       error
	}
	jobs := make(chan job)
	results := make(chan result)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for j := range jobs {
				var r struct {
					VariantID string `json:"variant_id"`
				}
				path := "/api/ab-testing/tests/" + j.testID + "/assign"
				code, raw, err := a.do(http.MethodPost, a.key, path, map[string]string{"user_id": "user-" + strconv.Itoa(j.i)}, &r)
				if err == nil && code != http.StatusOK {
					err = fmt.Errorf("POST %s = %d %s", path, code, raw)
				}
				results <- result{j, r.VariantID, err}
			}
		})
	}
	go func() {
		for _, id := range testIDs {
			for i := 0; i < n; i += step {
				jobs <- job{id, i}
			}
		}
		close(jobs)
		wg.Wait()
		close(results)
	}()
	got := map[string]map[int]string{}
	var firstErr error
	for r := range results {
		if r.err != nil {
			if firstErr == nil {
				firstErr = r.err
			}
			continue
		}
		if got[r.testID] == nil {
			got[r.testID] = map[int]string{}
		}
		got[r.testID][r.i] = r.variantID
	}
	if firstErr != nil {
		a.t.Fatal(firstErr)
	}
	return got
}
