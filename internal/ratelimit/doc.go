// Package ratelimit limits requests per client over several windows at once
// (by default 60 a minute, 1,000 an hour and 10,000 a day), in one process
// or across the replicas of the api role that share a NATS JetStream. It
// decides; the HTTP middleware that turns a Decision into headers and 429
// responses lives in api.
//
// # Policies and plans
//
// A Window is a limit of L requests per period P. A Policy is a named
// group of windows ("global"; an endpoint such as "POST /x"; a tighter
// "auth_failure" policy keyed by IP). Each client has its own state per
// policy window. A Plan is a set of policies checked together, such as
// global plus one endpoint's: a request is admitted only if every window of
// every policy in the plan admits it, and a denied request consumes nothing
// in any window (all-or-nothing). The global policy's state is shared by
// every plan that includes it. A client's multiplier (an API key's
// rate_limit_multiplier, in (0, 1000]) scales every limit: the client's
// limit is floor(L × multiplier), at least 1.
//
// # Algorithm
//
// Each window runs the generic cell rate algorithm (GCRA) with emission
// interval T = P/L (truncated to the nanosecond) and burst tolerance
// (L−1)·T ≈ P − T. Its state is one time, the theoretical arrival time
// TAT. A request at time now is admitted when
//
//	max(TAT, now) + T ≤ now + L·T
//
// and then sets TAT = max(TAT, now) + T. So an idle client may send L
// requests at once and then one every T; unlike fixed windows there is no
// double burst at a window boundary, and unlike a sliding log the state is
// eight bytes. In any interval of length x a window admits at most L + x/T
// requests. For each window a Decision reports:
//
//   - Limit: the client's L;
//   - Remaining: how many requests the window would admit right now,
//     floor((now + L·T − max(TAT, now)) / T);
//   - Reset: TAT, the time at which the window is full again (Remaining =
//     Limit) if the client sends nothing more; now if it is already full;
//   - RetryAfter: TAT + T − L·T − now, how long until the window admits one
//     request, or 0.
//
// The Decision's RetryAfter is the largest RetryAfter of the windows that
// denied the request. Each WindowState maps to an IETF RateLimit-Policy
// item (q = Limit, w = Period) and RateLimit item (r = Remaining, t from
// Reset), and to the X-RateLimit-*-Minute headers. Time comes from
// Config.Now, so tests move a clock instead of sleeping.
//
// # Memory
//
// A client is identified by a 64-bit hash of its key with a random secret
// seed (two clients share state only by chance, which becomes likely around
// 2^32 clients, and nobody can aim for it). The hash picks one of
// Config.Shards shards, each a map under its own mutex; checking a known
// client locks one shard once and does not allocate. The key string itself
// is not kept. A window whose TAT is
// at or before now is full, which is the same as having no state, so a
// client all of whose windows are full (and who holds no lease, below) is
// idle and may be dropped without changing any decision. Inserting a client
// drops idle clients it meets among a few probed entries, Run drops all of
// them periodically, and Config.MaxEntries caps the table: at the cap a new
// client evicts the sampled client whose windows refill first, which
// forgets that client's usage (the limiter fails open for it rather than
// growing without bound). A client costs about 150 bytes of heap with the
// global policy (141 MB for a million).
//
// # Replicas
//
// NewDistributed keeps each client's TATs in one record of a JetStream KV
// bucket ("AB_RATELIMIT", in memory, history 1, with a TTL of at least the
// longest window: a record untouched for that long is full anyway). One
// record per client, not per policy, so that a plan's windows change
// together. A replica does not go to NATS for every request: it leases
// tokens. When a request finds a window without a token on this replica,
// the replica reads the record, checks that every such window has at least
// one token in the shared GCRA state, advances those windows' TATs by k·T
// (reserving k tokens) and writes the record back with compare-and-set on
// its revision, retrying on conflict; then it serves up to k requests from
// memory. A lease is served for at most Config.LeaseTTL; tokens left after
// that are dropped. The lease size k starts at 1, doubles on each
// reservation that follows the previous one within LeaseTTL (and is at
// least the number of requests waiting for the reservation), and is capped
// at kmax = max(1, floor(L × LeaseFraction)) per window. Quiet clients
// therefore see exact limits, and busy ones cost one compare-and-set per
// kmax requests. Only one reservation per client runs at a time on a
// replica; concurrent requests wait for it. When a reservation finds a
// window exhausted, the replica denies locally until the time at which that
// window could first admit again: other replicas can only move that time
// later, so this cache never admits too much. A distributed Decision's
// Remaining and Reset come from the shared TAT as last seen by this replica
// plus its unserved lease: exact for one replica, an estimate for several.
//
// Cost. A check served from a lease takes the same shard lock as a local
// one. A reservation is a read and a compare-and-set, about 90 µs on an
// in-process server, paid by the request that finds no token: each request
// of a client quieter than one per LeaseTTL, one in kmax for busy ones.
// Replicas that collide retry after a random, growing pause; a client whose
// reservation still loses every race until RemoteTimeout is decided
// locally for RemoteBackoff.
//
// Bound. Tokens are reserved in the shared state before they are served,
// so the shared windows count every admitted request, at the time of its
// reservation. Serving a token later than its reservation is what can
// exceed the single-process GCRA bound, and a replica holds at most kmax
// reserved tokens per window. Hence, over any interval, a window's
// admissions across R replicas exceed L + x/T by at most R·kmax: with the
// default LeaseFraction of 1/100 that is R% of L for L ≥ 100, so at most 5%
// for up to five replicas. For L < 200, kmax is 1 and the token is served
// microseconds after its reservation, so the excess is nil in practice.
// With a frozen clock (all requests at the same instant) the total across
// replicas never exceeds L. Leases also under-admit: tokens a replica
// reserved and did not serve within LeaseTTL are lost, up to R·kmax per
// LeaseTTL for a client that stops abruptly. Replicas compare their own
// clocks with TATs written by others: a clock ahead by δ admits up to δ/T
// requests early, so run NTP.
//
// The bucket is bounded (Config.BucketMaxBytes) and drops its oldest
// records when full (discard-old): those clients start again with full
// windows, as after eviction from memory, while every other client stays
// shared. A write the server refuses for one client makes only that client
// local for Config.RemoteBackoff.
//
// If NATS is unreachable (disconnected, a timeout after
// Config.RemoteTimeout), requests are never failed, nor held
// longer than RemoteTimeout: the replica decides from its own GCRA state,
// which follows every request it admitted, for Config.RemoteBackoff, then
// tries NATS again. Such
// decisions have Decision.Local set and are counted in Stats.Fallbacks;
// meanwhile a client may get up to R·L across R replicas.
package ratelimit
