package auth

import (
	"strings"

	"github.com/stellaops/signer-agent/proto"
)

// ParseAuthorization extracts the OpTok from an Authorization header value.
// Only the DPoP scheme is accepted (the scheme name is case-insensitive,
// RFC 9110 §11.1); Bearer is refused because the agent takes sender-bound
// tokens only. Failures are *Error with code invalid_token.
func ParseAuthorization(header string) (string, error) {
	if strings.TrimSpace(header) == "" {
		return "", &Error{Code: proto.CodeInvalidToken, Reason: "no Authorization header", Detail: detailMissingToken}
	}
	scheme, token, ok := strings.Cut(header, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return "", &Error{Code: proto.CodeInvalidToken, Reason: "Bearer scheme: the token must be DPoP-bound", Detail: "the access token must be DPoP-bound (Authorization: DPoP <token>), not Bearer"}
	case !strings.EqualFold(scheme, "DPoP"):
		return "", &Error{Code: proto.CodeInvalidToken, Reason: "Authorization scheme is not DPoP", Detail: detailMissingToken}
	}
	token = strings.TrimLeft(token, " ")
	if !ok || token == "" {
		return "", &Error{Code: proto.CodeInvalidToken, Reason: "DPoP scheme without a token", Detail: detailMissingToken}
	}
	if !proto.IsToken68(token) {
		return "", &Error{Code: proto.CodeInvalidToken, Reason: "Authorization credentials are not a token68", Detail: detailMalformedToken}
	}
	return token, nil
}
