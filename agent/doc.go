// Package agent is the signer-agent daemon as a library: New builds an Agent
// from a configuration file, Run serves the api and admin Unix sockets until
// its context ends (draining in-flight requests), and Reload swaps in a new
// configuration snapshot without dropping requests.
//
// Every request runs an explicit, ordered list of gates (SPEC §1, §15) over
// one requestContext. A gate either passes or returns a Denial carrying a
// spec error code, a client-safe detail and an operator-facing reason; every
// decision, allow or deny, goes through the audit.Auditor before the
// response is written.
package agent
