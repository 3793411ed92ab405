package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/abacus-ab/abacus/internal/auth"
	"github.com/abacus-ab/abacus/internal/eventbus"
)

const keysUsage = `usage: abacus keys <command> [flags]

commands:
  generate                     print a new random key, stored nowhere (for API_KEY)
  create --user ID --permissions LIST [--name TEXT] [--expires-in 720h] [--rate-limit-multiplier 1]
                               create a key; its plaintext goes to stdout, once
  list                         list every key (never secrets)
  get KEY_ID                   show one key
  revoke KEY_ID                revoke a key on every replica at once
  rotate KEY_ID [--grace 24h]  create a successor; the old key works for the grace period

flags of every command but generate:
  --json          print JSON
  --server URL    use the HTTP admin API of the abacus at URL
  --direct        talk to NATS directly, never to a running server

Where the keys are: with NATS_URL set, the CLI talks to NATS directly. With
embedded NATS (no NATS_URL), it uses the HTTP admin API of the abacus serve
answering at ABACUS_HTTP_ADDR if there is one (that needs an admin key in
ABACUS_API_KEY or API_KEY, as make run writes into .env), and otherwise opens
the embedded store in DATA_DIR itself (never while a server has it open).
Settings come from the environment and .env, as for serve.
`

// keyInfo is a key as the CLI prints it (the admin API's JSON shape).
type keyInfo struct {
	auth.Key
	Status    string   `json:"status"`
	Plaintext string   `json:"key,omitempty"`
	Previous  *keyInfo `json:"previous,omitempty"`
}

// keyClient reaches the keys: over the HTTP admin API or NATS directly.
type keyClient interface {
	create(ctx context.Context, n auth.NewKey) (*keyInfo, error)
	list(ctx context.Context) ([]keyInfo, error)
	get(ctx context.Context, id string) (*keyInfo, error)
	revoke(ctx context.Context, id string) (*keyInfo, error)
	rotate(ctx context.Context, id string, grace time.Duration) (*keyInfo, error)
	close()
}

func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprint(stdout, keysUsage)
		if len(args) == 0 {
			return errors.New("no keys command given")
		}
		return nil
	}
	if args[0] == "generate" {
		k, err := auth.GenerateKey()
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, k)
		return nil
	}
	ka, err := parseKeysArgs(args[0], args[1:], stderr)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(nil, getenv, stderr)
	if err != nil {
		return err
	}
	adminKey := getenv("ABACUS_API_KEY")
	if adminKey == "" {
		adminKey = cfg.APIKey
	}
	c, err := keysClient(ctx, cfg, ka.server, ka.direct, adminKey, stderr)
	if err != nil {
		return err
	}
	defer c.close()
	return ka.run(ctx, c, stdout, stderr)
}

// keysArgs is one keys command (every one but generate) with its flags.
type keysArgs struct {
	cmd    string
	id     string // the key id of get, revoke and rotate
	asJSON bool
	server string
	direct bool
	newKey auth.NewKey   // create
	grace  time.Duration // rotate; -1: the server's default
}

// parseKeysArgs parses the flags and the key id of cmd, which may come in
// any order, and checks them.
func parseKeysArgs(cmd string, args []string, stderr io.Writer) (*keysArgs, error) {
	ka := &keysArgs{cmd: cmd}
	fs := flag.NewFlagSet("abacus keys "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, keysUsage) }
	fs.BoolVar(&ka.asJSON, "json", false, "print JSON")
	fs.StringVar(&ka.server, "server", "", "base URL of a running abacus to use the HTTP admin API of")
	fs.BoolVar(&ka.direct, "direct", false, "talk to NATS directly")
	var perms string
	var expiresIn time.Duration
	switch cmd {
	case "create":
		fs.StringVar(&ka.newKey.UserID, "user", "", "user id the key belongs to (required)")
		fs.StringVar(&perms, "permissions", "", "comma list of permissions: exact (ab_testing.read), wildcard (ab_testing.*) or * (required)")
		fs.StringVar(&ka.newKey.Name, "name", "", "what the key is for")
		fs.DurationVar(&expiresIn, "expires-in", 0, "lifetime, such as 720h (default: no expiry)")
		fs.Float64Var(&ka.newKey.RateLimitMultiplier, "rate-limit-multiplier", 1, "rate limit multiplier stored with the key")
	case "rotate":
		fs.DurationVar(&ka.grace, "grace", -1, "how long the old key keeps working (default: the server's API_KEY_ROTATION_GRACE)")
	case "list", "get", "revoke":
	default:
		fmt.Fprint(stderr, keysUsage)
		return nil, fmt.Errorf("unknown keys command %q", cmd)
	}
	// Flags may come before or after the key id.
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if rest := fs.Args(); len(rest) > 0 {
		ka.id = rest[0]
		if err := fs.Parse(rest[1:]); err != nil {
			return nil, err
		}
		if fs.NArg() > 0 {
			return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
		}
	}
	needID := cmd == "get" || cmd == "revoke" || cmd == "rotate"
	if needID != (ka.id != "") {
		if needID {
			return nil, fmt.Errorf("keys %s: give the key id (see abacus keys list)", cmd)
		}
		return nil, fmt.Errorf("keys %s takes no argument, got %q", cmd, ka.id)
	}
	if cmd == "create" {
		if err := checkCreate(&ka.newKey, perms, expiresIn); err != nil {
			return nil, err
		}
	}
	return ka, nil
}

// checkCreate completes n with create's --permissions and --expires-in
// and checks the required flags.
func checkCreate(n *auth.NewKey, perms string, expiresIn time.Duration) error {
	if n.UserID == "" || perms == "" {
		return errors.New("keys create: --user and --permissions are required")
	}
	for _, p := range strings.Split(perms, ",") {
		n.Permissions = append(n.Permissions, strings.TrimSpace(p))
	}
	if expiresIn < 0 {
		return errors.New("keys create: --expires-in must be positive")
	}
	if expiresIn > 0 {
		t := time.Now().Add(expiresIn)
		n.ExpiresAt = &t
	}
	return nil
}

// run runs the command against c and prints its result.
func (ka *keysArgs) run(ctx context.Context, c keyClient, stdout, stderr io.Writer) error {
	switch ka.cmd {
	case "create", "rotate":
		var k *keyInfo
		var err error
		if ka.cmd == "create" {
			k, err = c.create(ctx, ka.newKey)
		} else {
			k, err = c.rotate(ctx, ka.id, ka.grace)
		}
		if err != nil {
			return err
		}
		if ka.asJSON {
			return printJSON(stdout, k)
		}
		if k.Previous != nil {
			fmt.Fprintf(stderr, "Rotated %s to %s; the old key works until %s.\n", k.Previous.ID, k.ID, fmtTime(k.Previous.ExpiresAt))
		}
		fmt.Fprintf(stderr, "Created %s for user %s (permissions %s, expires %s).\n"+
			"This is the only time the key is shown: store it now.\n", k.ID, k.UserID, strings.Join(k.Permissions, ","), fmtTime(k.ExpiresAt))
		fmt.Fprintln(stdout, k.Plaintext)
		return nil
	case "list":
		ks, err := c.list(ctx)
		if err != nil {
			return err
		}
		if ka.asJSON {
			return printJSON(stdout, ks)
		}
		return printKeys(stdout, ks)
	case "get", "revoke":
		var k *keyInfo
		var err error
		if ka.cmd == "get" {
			k, err = c.get(ctx, ka.id)
		} else {
			k, err = c.revoke(ctx, ka.id)
		}
		if err != nil {
			return err
		}
		if ka.asJSON {
			return printJSON(stdout, k)
		}
		return printKeys(stdout, []keyInfo{*k})
	}
	return nil
}

// keysClient picks how to reach the keys (see keysUsage).
func keysClient(ctx context.Context, cfg *config, server string, direct bool, adminKey string, stderr io.Writer) (keyClient, error) {
	switch {
	case server != "":
		return newHTTPKeys(server, adminKey)
	case direct || cfg.NATSURL != "":
		return newDirectKeys(ctx, cfg, stderr)
	}
	base := "http://" + dialAddr(cfg.HTTPAddr)
	if serverUp(ctx, base) {
		if adminKey == "" {
			return nil, fmt.Errorf("abacus serve is running at %s with the embedded NATS store, so the CLI uses its HTTP admin API, "+
				"which needs an admin key: set ABACUS_API_KEY (or API_KEY in .env), or stop the server and retry", base)
		}
		return newHTTPKeys(base, adminKey)
	}
	return newDirectKeys(ctx, cfg, stderr)
}

// dialAddr turns a listen address into one to connect to.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func serverUp(ctx context.Context, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printKeys(w io.Writer, ks []keyInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY_ID\tPREFIX\tUSER\tPERMISSIONS\tSTATUS\tCREATED\tEXPIRES\tLAST_USED\tNAME")
	for _, k := range ks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, k.UserID, strings.Join(k.Permissions, ","),
			k.Status, k.CreatedAt.Format(time.RFC3339), fmtTime(k.ExpiresAt), fmtTime(k.LastUsedAt), k.Name)
	}
	return tw.Flush()
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// directKeys is the key store itself, over NATS.
type directKeys struct {
	bus  *eventbus.Bus
	st   *auth.Store
	stop func()
}

func newDirectKeys(ctx context.Context, cfg *config, stderr io.Writer) (*directKeys, error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bus, err := eventbus.Connect(ctx, eventbus.Config{
		URL:          cfg.NATSURL,
		CredsFile:    cfg.NATSCreds,
		DataDir:      cfg.DataDir,
		Replicas:     cfg.NATSReplicas,
		StreamMaxAge: cfg.StreamMaxAge,
		Name:         "abacus-keys",
	}, log)
	if err != nil {
		return nil, err
	}
	st, stop, err := runKeyStore(ctx, cfg, bus, log)
	if err != nil {
		bus.Close()
		return nil, err
	}
	return &directKeys{bus: bus, st: st, stop: stop}, nil
}

// runKeyStore provisions the buckets, starts a key store and waits until it
// has loaded. stop ends its watch (and last-used writes) and waits for it.
func runKeyStore(ctx context.Context, cfg *config, bus *eventbus.Bus, log *slog.Logger) (*auth.Store, func(), error) {
	if err := bus.Provision(ctx); err != nil {
		return nil, nil, err
	}
	kv, err := bus.KV(ctx, eventbus.BucketKeys)
	if err != nil {
		return nil, nil, err
	}
	st, err := auth.NewStore(kv, auth.Config{
		Pepper:        []byte(cfg.APIKeyPepper),
		StaticKey:     cfg.APIKey,
		RotationGrace: cfg.KeyRotationGrace,
	}, log)
	if err != nil {
		return nil, nil, err
	}
	// The watch outlives the roles, which verify keys while they drain.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.Run(runCtx)
	}()
	stop := func() { cancel(); <-done }
	readyCtx, cancelReady := context.WithTimeout(ctx, 30*time.Second)
	defer cancelReady()
	if err := st.WaitReady(readyCtx); err != nil {
		stop()
		return nil, nil, err
	}
	return st, stop, nil
}

// startKeyStore is runKeyStore for serve, which also says at start how
// requests will be authenticated.
func startKeyStore(ctx context.Context, cfg *config, bus *eventbus.Bus, log *slog.Logger) (*auth.Store, func(), error) {
	st, stop, err := runKeyStore(ctx, cfg, bus, log)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Environment == "development" {
		log.Warn("AUTHENTICATION IS DISABLED: ENVIRONMENT=development serves every endpoint without an API key; " +
			"never run it where others can reach it (set ENVIRONMENT=production)")
		return st, stop, nil
	}
	active := 0
	for _, k := range st.List() {
		if k.Status(time.Now()) == "active" && k.Allows(auth.AdminKeys) {
			active++
		}
	}
	if active == 0 {
		log.Warn("no admin API key exists, so no one can create keys over HTTP: " +
			"set API_KEY to the output of `abacus keys generate` and restart, " +
			"or stop the server and run `abacus keys create --user admin --permissions '*'`")
	}
	log.Info("api keys loaded", "keys", len(st.List()), "admin_keys_active", active, "digest", st.Hash())
	return st, stop, nil
}

func (d *directKeys) close() {
	d.stop()
	d.bus.Close()
}

func (d *directKeys) info(k *auth.Key) *keyInfo {
	return &keyInfo{Key: *k, Status: k.Status(time.Now())}
}

func (d *directKeys) create(ctx context.Context, n auth.NewKey) (*keyInfo, error) {
	k, plain, err := d.st.Create(ctx, n)
	if err != nil {
		return nil, err
	}
	out := d.info(k)
	out.Plaintext = plain
	return out, nil
}

func (d *directKeys) list(context.Context) ([]keyInfo, error) {
	var out []keyInfo
	for _, k := range d.st.List() {
		out = append(out, *d.info(k))
	}
	return out, nil
}

func (d *directKeys) get(ctx context.Context, id string) (*keyInfo, error) {
	k, err := d.st.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return d.info(k), nil
}

func (d *directKeys) revoke(ctx context.Context, id string) (*keyInfo, error) {
	k, err := d.st.Revoke(ctx, id)
	if err != nil {
		return nil, err
	}
	return d.info(k), nil
}

func (d *directKeys) rotate(ctx context.Context, id string, grace time.Duration) (*keyInfo, error) {
	old, next, plain, err := d.st.Rotate(ctx, id, grace)
	if err != nil {
		return nil, err
	}
	out := d.info(next)
	out.Plaintext = plain
	out.Previous = d.info(old)
	return out, nil
}

// httpKeys is the admin API of a running server.
type httpKeys struct {
	base, key string
	c         *http.Client
}

func newHTTPKeys(base, key string) (*httpKeys, error) {
	if key == "" {
		return nil, errors.New("the HTTP admin API needs an admin key: set ABACUS_API_KEY (or API_KEY in .env)")
	}
	return &httpKeys{base: strings.TrimRight(base, "/"), key: key, c: &http.Client{Timeout: 30 * time.Second}}, nil
}

func (h *httpKeys) close() {}

func (h *httpKeys) do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", h.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.c.Do(req)
	if err != nil {
		return fmt.Errorf("calling %s: %w", h.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(raw))
		}
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, e.Error)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decoding the answer of %s %s: %w", method, path, err)
	}
	return nil
}

func (h *httpKeys) create(ctx context.Context, n auth.NewKey) (*keyInfo, error) {
	body := map[string]any{"user_id": n.UserID, "permissions": n.Permissions}
	if n.Name != "" {
		body["name"] = n.Name
	}
	if n.RateLimitMultiplier != 0 {
		body["rate_limit_multiplier"] = n.RateLimitMultiplier
	}
	if n.ExpiresAt != nil {
		body["expires_at"] = n.ExpiresAt.UTC()
	}
	var k keyInfo
	return &k, h.do(ctx, http.MethodPost, "/api/admin/keys", body, &k)
}

func (h *httpKeys) list(ctx context.Context) ([]keyInfo, error) {
	var l struct {
		Keys []keyInfo `json:"keys"`
	}
	err := h.do(ctx, http.MethodGet, "/api/admin/keys", nil, &l)
	return l.Keys, err
}

func (h *httpKeys) get(ctx context.Context, id string) (*keyInfo, error) {
	var k keyInfo
	return &k, h.do(ctx, http.MethodGet, "/api/admin/keys/"+pathID(id), nil, &k)
}

func (h *httpKeys) revoke(ctx context.Context, id string) (*keyInfo, error) {
	var k keyInfo
	return &k, h.do(ctx, http.MethodDelete, "/api/admin/keys/"+pathID(id), nil, &k)
}

func (h *httpKeys) rotate(ctx context.Context, id string, grace time.Duration) (*keyInfo, error) {
	var body any
	if grace >= 0 {
		body = map[string]int64{"grace_period_seconds": int64(grace / time.Second)}
	}
	var k keyInfo
	return &k, h.do(ctx, http.MethodPost, "/api/admin/keys/"+pathID(id)+"/rotate", body, &k)
}

// pathID keeps a key id from escaping its path segment.
func pathID(id string) string {
	return strings.NewReplacer("/", "%2F", "?", "%3F", "#", "%23").Replace(id)
}
