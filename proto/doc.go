// Package proto is the wire contract of signer-agent: request and response
// types, error codes and problem documents, URL paths and header names.
//
// It imports only the standard library so that any scanner can depend on it
// (and on the client package) without pulling in the agent's dependencies.
// Decoding is strict (SPEC §15; DecodeStrict): member names match exactly,
// unknown or repeated names are refused at every depth, strings must be
// valid UTF-8 without lone surrogates, numbers must keep their value in RFC
// 8785 form (CheckNumber), and trailing data and malformed digests are
// refused, all with CodeInvalidRequest. Input is accepted as sent or
// refused, never repaired.
package proto
