package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/abacus-ab/abacus/api"
	"github.com/abacus-ab/abacus/internal/auth"
	"github.com/abacus-ab/abacus/internal/eventbus"
	"github.com/abacus-ab/abacus/internal/eventbus/eventbustest"
)

// keysRun runs `abacus keys args...` and returns stdout, stderr and the error.
func keysRun(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(t.Context(), append([]string{"keys"}, args...), envFrom(env), &out, &errb)
	return out.String(), errb.String(), err
}

func TestKeysGenerate(t *testing.T) {
	out, _, err := keysRun(t, nil, "generate")
	if err != nil || auth.ParseKey(strings.TrimSpace(out)) != nil {
		t.Errorf("keys generate = %q, %v: want one well-formed key", out, err)
	}
}

func TestKeysUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no command", nil, "no keys command"},
		{"unknown command", []string{"frob"}, "unknown keys command"},
		{"create without user", []string{"create", "--permissions", "*"}, "--user and --permissions"},
		{"revoke without id", []string{"revoke"}, "give the key id"},
		{"list with argument", []string{"list", "x"}, "takes no argument"},
		{"bad flag", []string{"list", "--frob"}, "frob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			_, _, err := keysRun(t, nil, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("keys %q = %v, want an error mentioning %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

// keysLifecycle creates, lists, rotates, revokes and gets a key through the
// CLI with env, checking what each command prints.
func keysLifecycle(t *testing.T, env map[string]string, extra ...string) {
	t.Helper()
	args := func(a ...string) []string { return append(a, extra...) }
	out, msg, err := keysRun(t, env, args("create", "--user", "svc-ci", "--permissions", "ab_testing.read,ab_testing.assign", "--name", "ci", "--expires-in", "720h")...)
	if err != nil {
		t.Fatalf("keys create = %v\n%s", err, msg)
	}
	plain := strings.TrimSpace(out)
	if auth.ParseKey(plain) != nil || !strings.Contains(msg, "only time the key is shown") {
		t.Fatalf("keys create printed %q to stdout and %q to stderr: want the key alone on stdout", out, msg)
	}
	out, _, err = keysRun(t, env, args("list", "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	var listed []keyInfo
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("keys list --json = %q: %v", out, err)
	}
	var id string
	for _, k := range listed {
		if k.Prefix == auth.DisplayPrefix(plain) {
			id = k.ID
		}
	}
	if id == "" || strings.Contains(out, plain) {
		t.Fatalf("keys list --json = %s: want the new key by prefix, without its secret", out)
	}
	out, msg, err = keysRun(t, env, args("rotate", id, "--grace", "1h")...)
	if err != nil {
		t.Fatalf("keys rotate = %v\n%s", err, msg)
	}
	next := strings.TrimSpace(out)
	if auth.ParseKey(next) != nil || next == plain || !strings.Contains(msg, "Rotated "+id) {
		t.Errorf("keys rotate printed %q and %q", out, msg)
	}
	out, _, err = keysRun(t, env, args("revoke", id)...)
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "revoked") {
		t.Errorf("keys revoke = %q, %v: want the key shown revoked", out, err)
	}
	out, _, err = keysRun(t, env, args("get", id, "--json")...)
	var got keyInfo
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got.Status != "revoked" || got.RotatedTo == "" {
		t.Errorf("keys get --json = %q, %v: want it revoked and rotated", out, err)
	}
	if _, _, err := keysRun(t, env, args("revoke", "key_0000000000000000")...); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("keys revoke of an unknown id = %v, want not found", err)
	}
	if _, _, err := keysRun(t, env, args("create", "--user", "u", "--permissions", "ab_testing.raed")...); err == nil || !strings.Contains(err.Error(), "grants nothing") {
		t.Errorf("keys create with a typo = %v, want a validation error", err)
	}
}

func TestKeysDirectNATS(t *testing.T) {
	t.Chdir(t.TempDir())
	srv := eventbustest.RunServer(t)
	keysLifecycle(t, map[string]string{"NATS_URL": srv.ClientURL()})
}

// TestKeysEmbeddedStore uses no NATS_URL and no running server: the CLI
// opens the embedded store in DATA_DIR, which keeps the keys.
func TestKeysEmbeddedStore(t *testing.T) {
	t.Chdir(t.TempDir())
	env := map[string]string{"DATA_DIR": t.TempDir(), "ABACUS_HTTP_ADDR": freeAddr(t)}
	keysLifecycle(t, env)
	out, _, err := keysRun(t, env, "list")
	if err != nil || strings.Count(out, "key_") != 2 {
		t.Errorf("keys list after the lifecycle = %q, %v: want the 2 keys kept in DATA_DIR", out, err)
	}
}

// TestKeysHTTP drives a running API: the CLI finds it at ABACUS_HTTP_ADDR
// and authenticates with ABACUS_API_KEY.
func TestKeysHTTP(t *testing.T) {
	t.Chdir(t.TempDir())
	ns := eventbustest.RunServer(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus, err := eventbus.Connect(t.Context(), eventbus.Config{URL: ns.ClientURL()}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	st, stop, err := runKeyStore(t.Context(), &config{}, bus, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	a, err := api.New(api.Config{}, api.Deps{Logger: log, Keys: st})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(a.Handler())
	t.Cleanup(hs.Close)
	_, admin, err := st.Create(context.Background(), auth.NewKey{UserID: "admin", Permissions: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ABACUS_HTTP_ADDR": strings.TrimPrefix(hs.URL, "http://"), "DATA_DIR": t.TempDir()}
	if _, _, err := keysRun(t, env, "list"); err == nil || !strings.Contains(err.Error(), "ABACUS_API_KEY") {
		t.Errorf("keys list against a running server without a key = %v, want advice on ABACUS_API_KEY", err)
	}
	env["ABACUS_API_KEY"] = admin
	keysLifecycle(t, env)
	_, reader, _ := st.Create(context.Background(), auth.NewKey{UserID: "r", Permissions: []string{"ab_testing.read"}})
	if _, _, err := keysRun(t, map[string]string{"ABACUS_API_KEY": reader}, "list", "--server", hs.URL); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("keys list with a non-admin key = %v, want the server's 403", err)
	}
}

func TestAuthConfig(t *testing.T) {
	key, _ := auth.GenerateKey()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"production on any address", map[string]string{"ABACUS_HTTP_ADDR": "0.0.0.0:8000"}, ""},
		{"development on loopback", map[string]string{"ENVIRONMENT": "development"}, ""},
		{"development on localhost", map[string]string{"ENVIRONMENT": "development", "ABACUS_HTTP_ADDR": "localhost:8000"}, ""},
		{"development on ::1", map[string]string{"ENVIRONMENT": "development", "ABACUS_HTTP_ADDR": "[::1]:8000"}, ""},
		{"development on all interfaces", map[string]string{"ENVIRONMENT": "development", "ABACUS_HTTP_ADDR": "0.0.0.0:8000"}, "ALLOW_INSECURE_DEV_BIND"},
		{"development on empty host", map[string]string{"ENVIRONMENT": "development", "ABACUS_HTTP_ADDR": ":8000"}, "ALLOW_INSECURE_DEV_BIND"},
		{"development forced", map[string]string{"ENVIRONMENT": "development", "ABACUS_HTTP_ADDR": "0.0.0.0:8000", "ALLOW_INSECURE_DEV_BIND": "true"}, ""},
		{"bad force flag", map[string]string{"ALLOW_INSECURE_DEV_BIND": "yes please"}, "ALLOW_INSECURE_DEV_BIND"},
		{"API_KEY well-formed", map[string]string{"API_KEY": key}, ""},
		{"API_KEY weak", map[string]string{"API_KEY": "changeme"}, "abacus keys generate"},
		{"short pepper", map[string]string{"API_KEY_PEPPER": "salt"}, "API_KEY_PEPPER"},
		{"bad grace", map[string]string{"API_KEY_ROTATION_GRACE": "a day"}, "API_KEY_ROTATION_GRACE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			c, err := loadConfig(nil, envFrom(tt.env), io.Discard)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("loadConfig() = %v, want error containing %q", err, tt.wantErr)
			}
			if err == nil && tt.env["API_KEY"] != "" && strings.Contains(fmtSummary(c), tt.env["API_KEY"]) {
				t.Error("the config summary shows API_KEY")
			}
		})
	}
}

func fmtSummary(c *config) string { return fmt.Sprint(c.summary()...) }
