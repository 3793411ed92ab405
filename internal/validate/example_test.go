package validate_test

import (
	"errors"
	"fmt"

	"github.com/abacus-ab/abacus/internal/validate"
)

func Example() {
	v, err := validate.New(validate.DefaultConfig())
	if err != nil {
		panic(err)
	}
	bodies := []string{
		`{"test_name":"O'Brien's test; blue | green","variants":[{"variant_id":"a","configuration":{"html":"<b>hi</b>"}}]}`,
		`{"test_name":"ok","variants":[{"variant_id":"a"},{"variant_id":"b","variant_name":"1' OR '1'='1"}]}`,
		`{"description":"nul\u0000here"}`,
	}
	for _, b := range bodies {
		clean, err := v.Sanitize([]byte(b))
		var ve *validate.Violation
		if errors.As(err, &ve) {
			fmt.Printf("rejected: field=%s rule=%s: %v\n", ve.Field, ve.Rule, err)
			continue
		}
		fmt.Printf("accepted: %s\n", clean)
	}
	// Output:
	// accepted: {"test_name":"O'Brien's test; blue | green","variants":[{"variant_id":"a","configuration":{"html":"<b>hi</b>"}}]}
	// rejected: field=variants[1].variant_name rule=sql_injection: variants[1].variant_name: looks like SQL injection
	// accepted: {"description":"nulhere"}
}
