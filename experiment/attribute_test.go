package experiment

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateAttributes(t *testing.T) {
	tests := []struct {
		name      string
		attrs     map[string]string
		wantField string
	}{
		{"none", nil, ""},
		{"valid", map[string]string{"platform": "ios", "country": "Côte d'Ivoire"}, ""},
		{"bad key", map[string]string{"a b": "x"}, "attributes"},
		{"empty value", map[string]string{"a": ""}, "attributes.a"},
		{"control character", map[string]string{"a": "x\ny"}, "attributes.a"},
		{"long value", map[string]string{"a": strings.Repeat("x", MaxAttributeValueBytes+1)}, "attributes.a"},
	}
	for _, tt := range tests {
		err := ValidateAttributes("attributes", tt.attrs)
		var ve *ValidationError
		switch {
		case tt.wantField == "" && err != nil:
			t.Errorf("%s: ValidateAttributes() = %v, want nil", tt.name, err)
		case tt.wantField != "" && (!errors.As(err, &ve) || ve.Field != tt.wantField):
			t.Errorf("%s: ValidateAttributes() = %v, want an error on %s", tt.name, err, tt.wantField)
		}
	}
}
