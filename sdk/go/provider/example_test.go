package provider_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/abacus-ab/abacus/sdk/go/provider"
)

// An application sets the provider once and evaluates flags with the
// OpenFeature client; here a stand-in for the Abacus server serves one
// running test.
func ExampleNew() {
	abacus := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("ETag", `"1"`)
		_, _ = fmt.Fprint(w, `{"tests": [{"test_id": "5f0c7e1a-2b3d-4c5e-8f90-a1b2c3d4e5f6", "key": "checkout-flow",
			"test_type": "workflow", "status": "running", "variants": [
			{"variant_id": "control", "variant_name": "Three steps", "value": "three-step", "traffic_percentage": 50},
			{"variant_id": "short", "variant_name": "Two steps", "value": "two-step", "traffic_percentage": 50}]}]}`)
	}))
	defer abacus.Close()

	p, err := provider.New(provider.Config{BaseURL: abacus.URL, DisableEvents: true})
	if err != nil {
		panic(err)
	}
	api := isolated.NewAPI() // applications call openfeature.SetProviderAndWait
	if err := api.SetProviderAndWait(context.Background(), p); err != nil {
		panic(err)
	}
	defer func() { _ = api.Shutdown(context.Background()) }()

	c := api.NewClient()
	d, _ := c.StringValueDetails(context.Background(), "checkout-flow", "three-step", openfeature.NewEvaluationContext("user-42", nil))
	fmt.Println(d.Value, d.Variant, d.Reason, d.FlagMetadata["variant_name"])
	d, _ = c.StringValueDetails(context.Background(), "no-such-flag", "three-step", openfeature.NewEvaluationContext("user-42", nil))
	fmt.Println(d.Value, d.Reason, d.ErrorCode)
	// Output:
	// two-step short SPLIT Two steps
	// three-step ERROR FLAG_NOT_FOUND
}
