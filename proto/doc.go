// Package proto is the wire contract of signer-agent: request and response
// types, error codes and problem documents, URL paths and header names.
//
// It imports only the standard library so that any scanner can depend on it
// (and on the client package) without pulling in the agent's dependencies.
// Decoding is strict: unknown fields, trailing data and malformed digests are
// refused with CodeInvalidRequest.
package proto
