// Package keyless is the keyless signing backend (SPEC §8.1): for each
// request an ephemeral ECDSA P-256 key, a short-lived Fulcio certificate
// for it (/api/v2/signingCert, proof of possession over the token's
// subject) obtained with the agent's own OIDC identity token, and an
// RFC 3161 timestamp over each signature from a timestamp authority. The
// HTTP exchanges with Fulcio and the TSA are sigstore-go's pkg/sign
// (sign.Fulcio, sign.TimestampAuthority); this package adds what a signing
// service needs around them:
//
//   - The identity token comes from a TokenSource: a token file (a
//     Kubernetes projected service-account token; re-read whenever the
//     file changes) or client credentials at the Authority with
//     audience "sigstore" (cached until shortly before expiry). A token
//     that is missing, unreadable or expired is ErrIdentityUnavailable
//     before anything is sent to Fulcio.
//   - Fulcio's leaf is checked before the key signs anything: it must
//     certify the ephemeral key, carry a SAN and an OIDC issuer, and chain
//     to Fulcio's CA (configured, or read once from Fulcio's trust bundle)
//     at the current time for code signing.
//   - A timestamp is checked against the TSA's chain when one is
//     configured, and must fall inside the certificate's validity.
//   - Every failure names its cause with one sentinel, all wrapping
//     keys.ErrBackendUnavailable (the agent's signing_backend_unavailable)
//     and carrying a Retry-After hint: ErrFulcioUnavailable,
//     ErrTSAUnavailable, ErrIdentityUnavailable (ErrIdentityExpired for an
//     expired token). Errors never contain the token.
//   - The caller's context bounds each exchange (pkg/sign builds its
//     requests without one; a small transport attaches it), and non-2xx
//     answers end the exchange at once: the agent decides on fallback, not
//     a retry loop inside a request.
//
// # Reuse window
//
// By default (Config.ReuseWindow 0) every Certify makes a new key and asks
// Fulcio for a new certificate: one Fulcio round trip per request, and a
// private key that lives only as long as the request. A reuse window lets
// requests share one key and certificate for up to that long (capped at 5
// minutes, and never past two minutes before the certificate's end, so
// every signature is timestamped well inside its validity). It trades one
// Fulcio round trip per request for a signing key that stays in memory for
// the window and signatures that are linkable to one certificate. Its
// private key is never written anywhere. The agent offers it per
// deployment, off by default.
package keyless
