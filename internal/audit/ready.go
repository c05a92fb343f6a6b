package audit

import "fmt"

// Ready reports whether the log can take a record now: nil, or an error
// wrapping ErrUnavailable while its last commit failed (signing is refused
// until a write succeeds again).
func (l *Log) Ready() error {
	if l.Stats().Unavailable {
		return fmt.Errorf("%w: the last commit failed", ErrUnavailable)
	}
	return nil
}
