// Package otelauth reports what oauthclient token sources do as
// OpenTelemetry metrics and traces. It implements oauthclient.Observer
// with the OpenTelemetry API only; the application chooses the SDK and
// exporters. Package oauthclient itself imports no telemetry library.
//
//	obs := otelauth.New(otelauth.Options{}) // the global providers
//	ts, err := oauthclient.NewTokenSource(oauthclient.Config{…, Observer: obs})
//	reg, err := otelauth.Observe(meter, ts) // remaining-lifetime gauge
//
// # Metrics
//
// Instrument names follow the OpenTelemetry semantic-convention style
// (dot-separated namespaces, seconds for durations):
//
//   - oauth.client.token.requests (counter, {request}): token-endpoint
//     requests, by oauth.grant_type, oauth.outcome (ok, temporary_error,
//     permanent_error) and, when the server sent one, oauth.error_code
//     (invalid_client, invalid_grant, …).
//   - oauth.client.token.request.duration (histogram, s): their duration,
//     by oauth.grant_type and oauth.outcome.
//   - oauth.client.fetches (counter, {fetch}): fetches (one or more
//     requests shared by every waiting caller), by oauth.fetch.outcome
//     (fetched, cached, failed, abandoned) and oauth.fetch.background.
//   - oauth.client.token.refresh.lead_time (histogram, s): how long before
//     the old token's expiry its replacement arrived.
//   - oauth.client.cache.loads (counter, {load}): persistent cache loads,
//     by oauth.cache.result (hit, miss, failed).
//   - oauth.client.lock.wait.duration (histogram, s): waits for the
//     cache's cross-process lock, by oauth.lock.outcome (acquired,
//     unavailable, timeout, failed).
//   - oauth.client.replays (counter, {response}): 401 answers the
//     Transport handled, by oauth.replay.outcome (replayed,
//     replayed_rejected, no_new_token, not_replayable).
//   - oauth.client.token.remaining_lifetime (gauge, s): time until the
//     in-memory token of each source given to Observe expires, by
//     oauth.source (its position in the Observe call).
//
// # Traces
//
// Every fetch is a span named "oauth.client.fetch" (a root span: a fetch
// outlives the callers that wait for it), linked to the span of every
// caller that waited for it, the one that started it included. Each
// token-endpoint request is a child span named "oauth.client.token_request"
// (kind client) with the attributes url.full (the token URL without its
// query), oauth.grant_type, oauth.client_id, oauth.attempt,
// http.response.status_code, oauth.outcome and oauth.error_code, linked to
// the callers that were waiting when it ended.
//
// # Cost
//
// No Observer method is called on the hot path (a fresh token from
// memory), so a Transport round trip allocates the same with and without
// an observer; BenchmarkTransportRoundTrip shows it.
//
// # Security considerations
//
// Events carry no secrets: no token, client secret, assertion or device
// code reaches an attribute. URLs lose their query, and error codes are the
// registered OAuth codes the server sent. The client ID is recorded: drop
// it with a view or span processor if it is sensitive where you export.
package otelauth
