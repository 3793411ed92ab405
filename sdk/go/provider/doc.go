// Package provider is an OpenFeature provider for Abacus that evaluates
// flags locally, for github.com/open-feature/go-sdk:
//
//	p, err := provider.New(provider.Config{BaseURL: "http://abacus:8000", APIKey: key})
//	openfeature.SetProviderAndWait(p)
//
// A flag is an Abacus test, named by its key or its id; its variants are the
// flag's variants and their values (experiment.Variant.FlagValue) the flag's
// values. The provider fetches every test's definition from GET
// /api/ab-testing/flags, polls it with If-None-Match every
// Config.PollInterval (10 s by default) and swaps in each new set of
// definitions atomically as an immutable snapshot. An evaluation is
// experiment.Decide on that snapshot, the same decision the server makes,
// so a user gets the same variant here as from /assign or OFREP; it does no
// I/O, takes well under a microsecond and allocates nothing once the
// user's exposure in the test has been sent.
//
// Results: a running test evaluates to its variant with reason SPLIT, the
// variant id as variant and the metadata test_id, test_type, status,
// test_key (when set) and variant_name (when set). A draft or stopped test
// gives the default value with reason DISABLED. Errors give the default
// value with reason ERROR and FLAG_NOT_FOUND, TYPE_MISMATCH,
// TARGETING_KEY_MISSING (the targeting key is the user id) or
// PROVIDER_NOT_READY (no definitions fetched yet).
//
// Events: the first evaluation of a user in a running test queues an
// exposure (an assignment event; pairs already sent are remembered, so a hot
// loop sends one), and Track queues a result event: the tracking event's
// name is the metric and its value the metric's value. A background sender
// posts them in batches to POST /api/ab-testing/events, retries a failed
// batch unchanged (the event ids are made here, so the server stores a
// retried event once), and flushes what is queued on Shutdown. The queue is
// bounded: an event that finds it full is dropped and counted (Stats,
// Config.OnDrop); evaluations never wait for the network.
//
// Goroutines: Init starts a poller and Config.Senders senders; Shutdown
// stops the poller, lets the senders post what is queued within its
// context's deadline, and returns after all of them have exited. A
// Provider runs once: after Shutdown it still evaluates on its last
// definitions but sends nothing; make a new one to start again.
//
// The package imports experiment and the standard library of the server
// module, never api, ingest, analysis or internal: it is linked into
// applications.
package provider
