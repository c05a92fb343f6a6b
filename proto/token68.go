package proto

// IsToken68 reports whether s matches RFC 9110's token68 (§11.2): one or
// more of ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/", then any
// number of "=". It is the form of the OpTok in "Authorization: DPoP
// <token>"; the agent parses the header with it and the client checks a
// token with it before sending, so the two cannot drift.
func IsToken68(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
