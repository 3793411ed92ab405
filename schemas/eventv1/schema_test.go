package eventv1

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestJSONSchemasMatchTypes checks that the JSON Schema of each event names
// exactly the JSON fields of its Go type, so that an added field (such as
// attributes or covariates) cannot go undocumented for other languages.
func TestJSONSchemasMatchTypes(t *testing.T) {
	for file, v := range map[string]any{
		"../assignment.v1.schema.json": Assignment{},
		"../result.v1.schema.json":     Result{},
	} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var schema struct {
			Properties map[string]json.RawMessage `json:"properties"`
			Examples   []json.RawMessage          `json:"examples"`
		}
		if err := json.Unmarshal(raw, &schema); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var want []string
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			want = append(want, name)
		}
		var got []string
		for name := range schema.Properties {
			got = append(got, name)
		}
		slices.Sort(want)
		slices.Sort(got)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s properties differ from %s's JSON fields (-go +schema):\n%s", file, typ.Name(), d)
		}
		// Every example is a valid event of the type.
		for i, ex := range schema.Examples {
			dec := json.NewDecoder(strings.NewReader(string(ex)))
			dec.DisallowUnknownFields()
			ev := reflect.New(typ).Interface().(interface{ Validate() error })
			if err := dec.Decode(ev); err != nil {
				t.Errorf("%s examples[%d]: %v", file, i, err)
			} else if err := ev.Validate(); err != nil {
				t.Errorf("%s examples[%d]: Validate() = %v", file, i, err)
			}
		}
	}
}
