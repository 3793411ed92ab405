package client

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWithAPIKeyAndDecoding(t *testing.T) {
	var gotKey, gotPath string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotKey, gotPath = r.Header.Get("X-API-Key"), r.URL.Path
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(map[string]any{
			"test_id": "t1", "user_id": "u1", "variant_id": "b", "variant_name": "B", "configuration": map[string]any{"steps": 2.5},
		}); err != nil {
			t.Error(err)
		}
	}))
	defer srv.Close()
	c, err := NewClientWithResponses(srv.URL, WithAPIKey("secret"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.AssignVariantWithResponse(t.Context(), "t1", AssignRequest{UserId: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if gotKey != "secret" || gotPath != "/api/ab-testing/tests/t1/assign" {
		t.Errorf("request had X-API-Key %q and path %q, want secret and the assign path", gotKey, gotPath)
	}
	if r.JSON200 == nil || r.JSON200.VariantId != "b" || r.JSON200.Configuration["steps"] != 2.5 {
		t.Errorf("AssignVariant = %+v, want variant b with its configuration", r.JSON200)
	}
}
