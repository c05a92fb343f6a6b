// Package metrics holds the agent's Prometheus metrics (SPEC §11): one
// registry per Metrics (never the global default registry) with the Go
// runtime and process collectors, small methods the request path calls,
// an audit.Observer for the audit log, and the scrape handler (what the
// agent serves on 127.0.0.1:9464/metrics and at GET /metrics on the admin
// socket, SPEC §3 and §4).
//
// The names below are stable: the Grafana dashboard and the alert rules in
// packaging/observability use them, and a test checks that both, and this
// table, match the registry.
//
// # Metrics
//
// | metric | type | labels | meaning |
// | --- | --- | --- | --- |
// | `signer_requests_total` | counter | `route`, `decision`, `code` | requests answered; `decision` is `allow` or `deny`, `code` the error code (§4.3) or `ok` |
// | `signer_request_duration_seconds` | histogram | `route` | time from a request's arrival to its answer |
// | `signer_gate_duration_seconds` | histogram | `gate` | time spent in one gate (the agent's gate names: `transport`, `peer`, `route`, `optok`, `dpop`, `mtls`, `body`, `entitlement`, `release`, `idempotency`, `quota`, `policy`, `sign`, `audit`) |
// | `signer_sign_duration_seconds` | histogram | `key_source` | time of one signature by a key backend, failures included |
// | `signer_key_signatures_total` | counter | `key_id`, `key_source`, `result` | signatures attempted per key (key usage); `result` is `ok` or `error` |
// | `signer_key_fallback_total` | counter | `tenant`, `from_key`, `to_key` | signatures made with a fallback key because the primary's backend failed |
// | `signer_keyless_failures_total` | counter | `cause` | keyless signatures that failed (each refused with `signing_backend_unavailable`, or signed by the tenant's fallback key, which `signer_key_fallback_total{from_key="keyless"}` counts); `cause` is `fulcio`, `tsa`, `identity` (the agent's OIDC token) or `other` |
// | `signer_key_age_seconds` | gauge | `key_id`, `key_source` | seconds since the key was created (computed at scrape time) |
// | `signer_key_not_after_timestamp_seconds` | gauge | `key_id` | end of the key's validity window, Unix seconds (keys without one are absent) |
// | `signer_poe_verdicts_total` | counter | `state` | Proof-of-Entitlement verdicts: `valid`, `cached` (cache hit), `grace` (licensing unreachable, cached verdict served), `bypass`, `denied`, `unavailable` (licensing unreachable, grace over) |
// | `signer_entitlement_bypass_active` | gauge | | 1 while the emergency entitlement bypass is on |
// | `signer_quota_hits_total` | counter | `tenant`, `plan`, `kind` | requests refused by a plan limit; `kind` is `rate`, `concurrency`, `size` or `daily` |
// | `signer_quota_store_mode` | gauge | `mode` | with `quota.store: redis` only: 1 for the current mode, `shared` (the fleet-wide count), `local_share` (store down, serving the node's share) or `unavailable` (store down, refusing with `quota_unavailable`), 0 for the others |
// | `signer_quota_store_duration_seconds` | histogram | `op` | round trips to the shared quota store, failures included; `op` is `reserve` (the request path, one per request or batch), `settle` (batched lease releases and refunds, asynchronous) or `probe` (reconnecting) |
// | `signer_quota_store_errors_total` | counter | `op` | store round trips that failed or timed out |
// | `signer_quota_reservations_total` | counter | `mode`, `outcome` | reservations by the mode that decided and `outcome`: `admitted`, `partial`, `throttled`, `concurrency`, `exhausted`, `too_large`, `overloaded`, `unavailable`, `error` |
// | `signer_quota_store_settle_dropped_total` | counter | | lease releases and refunds not sent (store down or queue full); their leases expire after `quota.leaseTTL` |
// | `signer_release_verdicts_total` | counter | `source`, `trusted` | release-integrity verdicts; `source` is `referrers`, `tag`, `allowlist`, `offline-bundle`, `cache` or `none`; `trusted` is `true` or `false` |
// | `signer_audit_append_duration_seconds` | histogram | | time of one audit group commit (writes and fdatasyncs) |
// | `signer_audit_batch_size` | histogram | | audit records per group commit |
// | `signer_connections_refused_total` | counter | `socket`, `reason` | connections closed at accept: `peer` (not allowed on the socket) or `busy` (at a connection cap with none idle; answered `agent_busy`) |
// | `signer_connections_evicted_total` | counter | `socket` | idle connections closed to make room for a new one at a cap |
// | `signer_body_budget_refused_total` | counter | | requests refused with `agent_busy` because their body did not fit the in-flight memory budget |
// | `signer_body_budget_used_bytes` | gauge | | bytes of the in-flight body budget charged now (bodies in flight × `limits.bodyMemoryFactor`) |
// | `signer_body_budget_bytes` | gauge | | the in-flight body budget, `limits.inflightBodyBytes` |
// | `signer_connections_open` | gauge | `socket` | connections open now, counted against the socket's cap |
// | `signer_audit_denials_suppressed_total` | counter | | denials folded into one summary audit record per burst because their peer exceeded `limits.denialAuditRate` |
// | `signer_audit_failures_total` | counter | | audit appends that failed: not durable, request refused (`audit_unavailable`) |
// | `signer_audit_events_total` | counter | `kind` | audit log maintenance: `rotated`, `recovered`, `abandoned`, `write_failed`, `pruned`, `prune_failed` |
// | `signer_audit_queue_depth` | gauge | | audit appends waiting for the writer |
// | `signer_ready` | gauge | | 1 when ready (keys unlocked, trust roots loaded), else 0 |
// | `signer_idempotency_total` | counter | `route`, `outcome` | requests with an `Idempotency-Key`: `stored` (the answer is kept for retries), `replayed` (a retry got the kept answer, `Idempotent-Replayed: true`), `reused` (the key came with another request: 422 `idempotency_key_reused`), `not_stored` (an answer over `idempotency.maxBytes`, sent but not kept) |
// | `signer_batch_items_total` | counter | `code` | items of admitted batches (`/sign/batch`) by outcome: `ok` when signed, else the item's error code |
//
// Histograms of latencies use LatencyBuckets (0.5 ms to 5 s), except the
// quota store's, which uses QuotaStoreBuckets (50 µs to 1 s). The Go
// collector adds `go_*` and the process collector `process_*` metrics,
// and the handler adds `promhttp_metric_handler_errors_total` once a
// scrape has hit an error.
//
// # Label values and cardinality
//
// Every label is bounded by code or by configuration; nothing is labelled
// by pid, uid, token, jti, request id, audit id, digest or subject.
//
//   - route: the known endpoint paths; the admin key operations are
//     collapsed to /admin/v1/keys/{id}/<action>, and any other path
//     (404s, scans) is "other" (see Route). The agent may pass
//     r.URL.Path.
//   - code: the proto error codes, "ok" for an allowed request, "other"
//     for a code proto does not define.
//   - gate, state, kind, result, trusted, source, key_source: fixed sets
//     named by the agent's packages (key_source is the key URI scheme).
//   - key_id, from_key, to_key: the configured keys.
//   - tenant, plan: the configured tenants and the plans their PoEs name.
//     Quota hits and fallbacks are recorded only after the token and the
//     PoE have been verified, so an unauthenticated caller cannot invent
//     a tenant; an operator with many tenants should expect one series
//     per tenant, plan and kind that has hit a limit.
//
// Empty label values are exported as "none".
//
// # Cost
//
// A request-path method finds its series by label values (a hash and a
// read-locked map lookup) and adds to it atomically; once a series exists
// nothing is allocated (BenchmarkRequestPath: 0 allocs). Label values
// that are not valid UTF-8 drop the sample instead of panicking. Every
// method is a no-op on a nil *Metrics, for an agent running with metrics
// off.
package metrics
