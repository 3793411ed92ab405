package experiment

import "fmt"

// Limits of the attributes an assignment may carry, and of the segments (the
// attribute keys) a test is analysed by.
const (
	// MaxSegments is how many attribute keys a test may segment by.
	MaxSegments            = 5
	MaxAttributes          = 20
	MaxAttributeKeyBytes   = 64
	MaxAttributeValueBytes = 128
)

// ValidAttributeKey reports whether s can name an assignment attribute.
func ValidAttributeKey(s string) bool {
	return len(s) <= MaxAttributeKeyBytes && ValidID(s)
}

// ValidateAttributes checks an assignment's attributes: at most
// MaxAttributes, keys as ValidAttributeKey, values of 1 to
// MaxAttributeValueBytes bytes of UTF-8 without control characters.
func ValidateAttributes(field string, attrs map[string]string) error {
	if len(attrs) > MaxAttributes {
		return Invalid(field, "has more than %d attributes", MaxAttributes)
	}
	for k, v := range attrs {
		if !ValidAttributeKey(k) {
			return Invalid(field, "attribute key %.40q must be 1-%d characters of letters, digits and _ . : @ = + -", k, MaxAttributeKeyBytes)
		}
		if v == "" {
			return Invalid(field+"."+k, "is empty")
		}
		if len(v) > MaxAttributeValueBytes {
			return Invalid(field+"."+k, "is longer than %d bytes", MaxAttributeValueBytes)
		}
		if err := ValidateUserID(field+"."+k, v); err != nil {
			return Invalid(field+"."+k, "must be valid UTF-8 without control characters")
		}
	}
	return nil
}

// validateSegments checks the test's segments: at most MaxSegments
// distinct attribute keys.
func (t *Test) validateSegments() error {
	if len(t.Segments) > MaxSegments {
		return Invalid("segments", "has more than %d attribute keys", MaxSegments)
	}
	seen := map[string]bool{}
	for i, k := range t.Segments {
		field := fmt.Sprintf("segments[%d]", i)
		if !ValidAttributeKey(k) {
			return Invalid(field, "must be an attribute key of 1-%d characters of letters, digits and _ . : @ = + -", MaxAttributeKeyBytes)
		}
		if seen[k] {
			return Invalid(field, "duplicates segment %q", k)
		}
		seen[k] = true
	}
	return nil
}
