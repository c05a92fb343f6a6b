package proto

import (
	"errors"
	"fmt"
)

// MaxIdempotencyKeyLen is the longest Idempotency-Key accepted (SPEC §4.6).
const MaxIdempotencyKeyLen = 255

// ValidateIdempotencyKey checks an Idempotency-Key header value (SPEC
// §4.6): 1–255 printable ASCII characters (0x20–0x7E). A space may not
// start or end the key, because HTTP strips it from header values and the
// key would then not survive the trip. The key is opaque: quotes, if a
// client sends a structured-field string, are part of it. Errors never
// quote the key.
func ValidateIdempotencyKey(key string) error {
	switch {
	case key == "":
		return errors.New("idempotency key: empty")
	case len(key) > MaxIdempotencyKeyLen:
		return fmt.Errorf("idempotency key: longer than %d characters", MaxIdempotencyKeyLen)
	case key[0] == ' ' || key[len(key)-1] == ' ':
		return errors.New("idempotency key: starts or ends with a space")
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("idempotency key: byte %d is not printable ASCII", i)
		}
	}
	return nil
}
