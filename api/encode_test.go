package api

import (
	"bytes"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// TestWriteJSONMatchesEncodingJSON checks writeJSON against Echo's c.JSON
// (encoding/json) on the data plane's answers with random configurations
// and flag values: nested objects and arrays, floats across the range,
// HTML characters, U+2028: the bytes are the same.
func TestWriteJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	strs := []string{"plain", "<script>&'\"", "ünïcødé ☃", "tab\tnew\nline", "\u2028\u2029", "x\\y", "\x7f", strings.Repeat("z", 100)}
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1e-7, 1e-6, 1e20, 1e21, 123456789.123456789, math.MaxFloat64, math.SmallestNonzeroFloat64}
	var value func(depth int) any
	value = func(depth int) any {
		switch k := rng.IntN(7); {
		case k == 0:
			return strs[rng.IntN(len(strs))]
		case k == 1:
			return floats[rng.IntN(len(floats))]
		case k == 2:
			return (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(40)-20))
		case k == 3:
			return rng.IntN(2) == 0
		case k == 4:
			return nil
		case k == 5 && depth < 3:
			a := make([]any, rng.IntN(4))
			for i := range a {
				a[i] = value(depth + 1)
			}
			return a
		case depth < 3:
			m := map[string]any{}
			for range rng.IntN(4) {
				m[strs[rng.IntN(len(strs))]] = value(depth + 1)
			}
			return m
		}
		return "leaf"
	}
	e := echo.New()
	render := func(f func(c echo.Context) error) []byte {
		rec := httptest.NewRecorder()
		if err := f(e.NewContext(httptest.NewRequest(http.MethodPost, "/", nil), rec)); err != nil {
			t.Fatal(err)
		}
		return rec.Body.Bytes()
	}
	for range 2000 {
		cfg, _ := value(0).(map[string]any)
		s := strs[rng.IntN(len(strs))]
		for _, v := range []any{
			&assignResponse{TestID: s, UserID: s + "u", VariantID: "v", VariantName: s, Configuration: cfg},
			&recordResponse{Status: "accepted", EventID: s, TestID: "t", Duplicate: rng.IntN(2) == 0},
			&ofrepEvaluation{Key: s, Value: value(0), Reason: ofrepSplit, Variant: "v", Metadata: map[string]any{"test_id": s, "n": floats[rng.IntN(len(floats))]}},
		} {
			want := render(func(c echo.Context) error { return c.JSON(http.StatusOK, v) })
			got := render(func(c echo.Context) error { return writeJSON(c, http.StatusOK, v) })
			if !bytes.Equal(got, want) {
				t.Fatalf("writeJSON:\n%s\nc.JSON:\n%s", got, want)
			}
		}
	}
}
