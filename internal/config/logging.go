package config

// Logging configures zap.
type Logging struct {
	Level  string `yaml:"level,omitempty"`  // debug, info (default), warn, error
	Format string `yaml:"format,omitempty"` // json (default) or console
}

func (l *Logging) applyDefaults() {
	setDefault(&l.Level, "info")
	setDefault(&l.Format, "json")
}

func (l *Logging) validate(p *problems) {
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add("logging.level", "want debug, info, warn or error")
	}
	switch l.Format {
	case "json", "console":
	default:
		p.add("logging.format", "want json or console")
	}
}
