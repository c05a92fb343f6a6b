// Package authoritytest is a test Authority (OIDC issuer) for the auth gate
// and for the tests of packages that sit behind it: it generates issuer
// keys, serves the discovery document and the JWKS on an httptest server on
// 127.0.0.1, writes the same JWKS to a file (the offline form), and mints
// OpToks and DPoP proofs, including malformed ones for negative tests.
//
// Nothing here is for production: keys live in memory, and the signing
// helpers deliberately produce "none", HMAC and mismatched-key variants.
package authoritytest
