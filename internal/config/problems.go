package config

import (
	"errors"
	"fmt"
)

// problems collects what Validate finds, so that one run reports every bad
// value, each prefixed with its key (for example "listen.api.mode: …").
type problems struct {
	errs []error
}

// add records a problem with key, the YAML path of the value
// ("tenants[2].defaultKey"; a section name for checks across its keys).
func (p *problems) add(key, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

// err is nil without problems, else one error joining them all.
func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return fmt.Errorf("config: %w", errors.Join(p.errs...))
}

// indexKey names a field of a list item: indexKey("keys", 2, "uri") is
// "keys[2].uri"; an empty field names the item itself ("keys[2]").
func indexKey(list string, i int, field string) string {
	k := fmt.Sprintf("%s[%d]", list, i)
	if field != "" {
		k += "." + field
	}
	return k
}
