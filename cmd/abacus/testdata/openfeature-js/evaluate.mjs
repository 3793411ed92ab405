// Evaluates Abacus tests through the OpenFeature JavaScript server SDK and
// its OFREP provider, and prints what it got as one JSON object on stdout.
// cmd/abacus/openfeature_js_test.go runs it against a real abacus serve and
// checks every evaluation against the server's own assignments.
//
// Environment:
//   ABACUS_URL           the server's base URL (http://127.0.0.1:8000)
//   ABACUS_API_KEY       a key with the permission ab_testing.assign
//   ABACUS_USERS         how many users to evaluate (user-0, user-1, ...)
//   ABACUS_BOOL_FLAG     a running test with boolean values, by its key
//   ABACUS_STRING_FLAG   a running test with string values, by its test id
//   ABACUS_DRAFT_FLAG    a draft test
//   ABACUS_STOPPED_FLAG  a stopped test
//   ABACUS_UNKNOWN_FLAG  a flag no test answers to
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

function env(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set`);
  }
  return v;
}

const baseUrl = env('ABACUS_URL');
const users = Number.parseInt(env('ABACUS_USERS'), 10);
const flags = {
  bool: env('ABACUS_BOOL_FLAG'),
  string: env('ABACUS_STRING_FLAG'),
  draft: env('ABACUS_DRAFT_FLAG'),
  stopped: env('ABACUS_STOPPED_FLAG'),
  unknown: env('ABACUS_UNKNOWN_FLAG'),
};

// Counts the HTTP requests the provider sends, to show what track() does.
let requests = 0;
function countingFetch(input, init) {
  requests++;
  return fetch(input, init);
}

const provider = new OFREPProvider({
  baseUrl,
  headers: { Authorization: `Bearer ${env('ABACUS_API_KEY')}` },
  fetchImplementation: countingFetch,
});
await OpenFeature.setProviderAndWait(provider);
const client = OpenFeature.getClient();

// A provider without a key, in its own domain.
await OpenFeature.setProviderAndWait('no-key', new OFREPProvider({ baseUrl }));
const anonymous = OpenFeature.getClient('no-key');

// The part of EvaluationDetails the Go test compares.
function details(d) {
  const out = { value: d.value, reason: d.reason };
  if (d.variant !== undefined) out.variant = d.variant;
  if (d.errorCode !== undefined) out.errorCode = d.errorCode;
  if (d.errorMessage !== undefined) out.errorMessage = d.errorMessage;
  if (d.flagMetadata && Object.keys(d.flagMetadata).length > 0) out.flagMetadata = d.flagMetadata;
  return out;
}

// Every user, both running flags, with a few evaluations in flight at once
// (the server-side provider sends one request per evaluation).
const started = Date.now();
const evaluations = new Array(users);
let next = 0;
async function worker() {
  for (let i = next++; i < users; i = next++) {
    const ctx = { targetingKey: `user-${i}`, plan: 'pro' };
    const [b, s] = await Promise.all([
      client.getBooleanDetails(flags.bool, false, ctx),
      client.getStringDetails(flags.string, 'fallback', ctx),
    ]);
    evaluations[i] = { bool: details(b), string: details(s) };
  }
}
await Promise.all(Array.from({ length: 16 }, worker));
const evaluateMs = Date.now() - started;

const ctx = { targetingKey: 'user-0' };
const edge = {
  draft: details(await client.getBooleanDetails(flags.draft, true, ctx)),
  stopped: details(await client.getStringDetails(flags.stopped, 'fallback', ctx)),
  unknown: details(await client.getStringDetails(flags.unknown, 'fallback', ctx)),
  typeMismatch: details(await client.getStringDetails(flags.bool, 'fallback', ctx)),
  noTargetingKey: details(await client.getBooleanDetails(flags.bool, false, {})),
  noKey: details(await anonymous.getBooleanDetails(flags.bool, false, ctx)),
};

// OpenFeature tracking: the SDK hands track() to the provider, if the
// provider implements it. OFREP has no tracking endpoint.
const before = requests;
client.track('conversion', ctx, { value: 1 });
await new Promise((resolve) => setTimeout(resolve, 100));
const track = { providerImplementsTrack: typeof provider.track === 'function', requests: requests - before };

await OpenFeature.close();
process.stdout.write(JSON.stringify({ evaluateMs, requests, evaluations, edge, track }) + '\n');
