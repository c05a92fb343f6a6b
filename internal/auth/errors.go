package auth

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/stellaops/signer-agent/proto"
)

// Error is an authentication failure with its proto code. VerifyToken,
// VerifyDPoP and ParseAuthorization return failures as *Error.
type Error struct {
	// Code is the stable error code (SPEC §4.3).
	Code proto.Code
	// Reason says precisely what failed, for the audit log and the agent's
	// logs. It may name claims and their values (iss, kid, htm) but never
	// contains a token, a proof or key material.
	Reason string
	// Detail is the client-safe explanation for the problem document.
	Detail string
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("auth: %s: %s", e.Code, e.Reason)
}

// Challenge is the WWW-Authenticate value for a 401 or 403 caused by e
// (SPEC §15: every 401 carries one).
func (e *Error) Challenge() string {
	return fmt.Sprintf(`DPoP algs="ES256 EdDSA", error=%q, error_description=%q`, string(e.Code), e.Detail)
}

// CodeOf returns the code of an *Error in err's chain, or "" when there is
// none.
func CodeOf(err error) proto.Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func tokenError(detail, format string, args ...any) *Error {
	return &Error{Code: proto.CodeInvalidToken, Reason: fmt.Sprintf(format, args...), Detail: detail}
}

func proofError(detail, format string, args ...any) *Error {
	return &Error{Code: proto.CodeInvalidDPoPProof, Reason: fmt.Sprintf(format, args...), Detail: detail}
}

// Client-safe details.
const (
	detailMissingToken   = "a DPoP-bound access token is required (Authorization: DPoP <token>)"
	detailMalformedToken = "the access token is malformed"
	detailTokenSig       = "the access token signature is not valid"
	detailTokenKey       = "the access token is signed by an unknown key"
	detailTokenAlg       = "the access token algorithm is not accepted"
	detailTokenIssuer    = "the access token issuer is not accepted"
	detailTokenAudience  = "the access token audience is not accepted"
	detailTokenExpired   = "the access token has expired"
	detailTokenNotYet    = "the access token is not yet valid"
	detailTokenLifetime  = "the access token lifetime is too long"
	detailTokenTenant    = "the access token has no tenant"
	detailTokenBinding   = "the access token is not sender-constrained (cnf)"
	detailScope          = "the access token lacks the required scope"
	detailInstallation   = "the access token is for another installation"
	detailProofMissing   = "a DPoP proof is required"
	detailProofMalformed = "the DPoP proof is malformed"
	detailProofKey       = "the DPoP proof key is not accepted"
	detailProofBinding   = "the DPoP proof key does not match the access token"
	detailProofSig       = "the DPoP proof signature is not valid"
	detailProofRequest   = "the DPoP proof does not match the request (htm/htu)"
	detailProofTime      = "the DPoP proof iat is outside the accepted window"
	detailProofATH       = "the DPoP proof ath does not match the access token"
	detailProofReplay    = "the DPoP proof has already been used"
	detailNonce          = "use the DPoP-Nonce value from this response"
)

// q quotes an untrusted value for a Reason, bounded in length.
func q(s string) string {
	const limit = 64
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "…"
	}
	return strconv.Quote(s)
}
