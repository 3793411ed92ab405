package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/auth"
)

// keyAdmin manages API keys (met by *auth.Store).
type keyAdmin interface {
	Create(ctx context.Context, n auth.NewKey) (*auth.Key, string, error)
	List() []*auth.Key
	Get(ctx context.Context, id string) (*auth.Key, error)
	Revoke(ctx context.Context, id string) (*auth.Key, error)
	Rotate(ctx context.Context, id string, grace time.Duration) (old, next *auth.Key, plain string, err error)
}

// keyView is a key as the admin endpoints show it: never its digest, and its
// plaintext only in the answer that creates it.
type keyView struct {
	*auth.Key
	Status string `json:"status"`
	// Plaintext is the key itself, present only when it was just created.
	Plaintext string `json:"key,omitempty"`
}

type createKeyRequest struct {
	Name                string     `json:"name"`
	UserID              string     `json:"user_id"`
	Permissions         []string   `json:"permissions"`
	RateLimitMultiplier *float64   `json:"rate_limit_multiplier"`
	ExpiresAt           *time.Time `json:"expires_at"`
}

type rotateKeyRequest struct {
	// GracePeriodSeconds is how long the old key keeps working; omitted:
	// the server's default (API_KEY_ROTATION_GRACE).
	GracePeriodSeconds *int64 `json:"grace_period_seconds"`
}

type rotateKeyResponse struct {
	keyView
	Previous keyView `json:"previous"`
}

type keyList struct {
	Keys  []keyView `json:"keys"`
	Total int       `json:"total"`
}

// maxGrace bounds a rotation's grace period.
const maxGrace = 30 * 24 * time.Hour

func (s *Server) view(k *auth.Key) keyView {
	return keyView{Key: k, Status: k.Status(s.now())}
}

func (s *Server) keyAdmin() (keyAdmin, error) {
	if s.keys == nil {
		return nil, newError(http.StatusServiceUnavailable, "this server has no API key store")
	}
	return s.keys, nil
}

// caller is the key id behind an admin request, for the audit log.
func caller(c echo.Context) string {
	if id, ok := c.Get(ctxKeyID).(string); ok {
		return id
	}
	return "unauthenticated (development mode)"
}

// checkGrantable refuses to hand out permissions the caller does not hold:
// a key with admin.keys alone must not mint a "*" key. A pattern is the
// caller's to give when the caller holds "*", holds the same pattern, or
// (for a pattern without wildcards) holds a pattern granting it. In
// development mode there is no caller and nothing to check.
func checkGrantable(c echo.Context, patterns []string) error {
	k, ok := c.Get(ctxKey).(*auth.Key)
	if !ok {
		return nil
	}
	for _, p := range patterns {
		if slices.Contains(k.Permissions, auth.All) || slices.Contains(k.Permissions, p) ||
			(!strings.Contains(p, "*") && k.Allows(auth.Permission(p))) {
			continue
		}
		e := newError(http.StatusForbidden, "the calling key cannot grant %q: it does not hold that permission", p)
		e.body.Field = "permissions"
		e.body.Detail = map[string]any{"permission": p}
		return e
	}
	return nil
}

// checkMultiplier refuses a rate_limit_multiplier above the calling key's
// own (0 means 1), unless the caller holds "*": a key cannot mint a key
// with a larger budget than its own.
func checkMultiplier(c echo.Context, m float64) error {
	k, ok := c.Get(ctxKey).(*auth.Key)
	if !ok || slices.Contains(k.Permissions, auth.All) {
		return nil
	}
	own := k.RateLimitMultiplier
	if own == 0 {
		own = 1
	}
	if m == 0 {
		m = 1
	}
	if m > own {
		e := newError(http.StatusForbidden, "the calling key cannot grant rate_limit_multiplier %g: its own is %g", m, own)
		e.body.Field = "rate_limit_multiplier"
		return e
	}
	return nil
}

func (s *Server) createKey(c echo.Context) error {
	ks, err := s.keyAdmin()
	if err != nil {
		return err
	}
	var req createKeyRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := checkGrantable(c, req.Permissions); err != nil {
		return err
	}
	n := auth.NewKey{Name: req.Name, UserID: req.UserID, Permissions: req.Permissions, ExpiresAt: req.ExpiresAt}
	if req.RateLimitMultiplier != nil {
		if *req.RateLimitMultiplier <= 0 {
			e := newError(http.StatusBadRequest, "rate_limit_multiplier must be in (0, 1000]")
			e.body.Field = "rate_limit_multiplier"
			return e
		}
		n.RateLimitMultiplier = *req.RateLimitMultiplier
	}
	if err := checkMultiplier(c, n.RateLimitMultiplier); err != nil {
		return err
	}
	k, plain, err := ks.Create(c.Request().Context(), n)
	if err != nil {
		return keyError(err, "storing the key failed")
	}
	s.log.Info("api key created", "key_id", k.ID, "permissions", k.Permissions, "created_by", caller(c))
	v := s.view(k)
	v.Plaintext = plain
	c.Response().Header().Set(echo.HeaderLocation, "/api/admin/keys/"+k.ID)
	return c.JSON(http.StatusCreated, v)
}

func (s *Server) listKeys(c echo.Context) error {
	ks, err := s.keyAdmin()
	if err != nil {
		return err
	}
	all := ks.List()
	out := keyList{Keys: make([]keyView, 0, len(all)), Total: len(all)}
	for _, k := range all {
		out.Keys = append(out.Keys, s.view(k))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getKey(c echo.Context) error {
	ks, err := s.keyAdmin()
	if err != nil {
		return err
	}
	k, err := ks.Get(c.Request().Context(), c.Param("key_id"))
	if err != nil {
		return keyError(err, "reading the key failed; retry later")
	}
	return c.JSON(http.StatusOK, s.view(k))
}

func (s *Server) revokeKey(c echo.Context) error {
	ks, err := s.keyAdmin()
	if err != nil {
		return err
	}
	k, err := ks.Revoke(c.Request().Context(), c.Param("key_id"))
	if err != nil {
		return keyError(err, "revoking the key failed; retry later")
	}
	s.log.Info("api key revoked", "key_id", k.ID, "revoked_by", caller(c))
	return c.JSON(http.StatusOK, s.view(k))
}

func (s *Server) rotateKey(c echo.Context) error {
	ks, err := s.keyAdmin()
	if err != nil {
		return err
	}
	var req rotateKeyRequest
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
			return err
		}
	}
	grace := time.Duration(-1) // the store's default
	if req.GracePeriodSeconds != nil {
		grace = time.Duration(*req.GracePeriodSeconds) * time.Second
		if *req.GracePeriodSeconds < 0 || grace > maxGrace {
			e := newError(http.StatusBadRequest, "grace_period_seconds must be in [0, %d]", int64(maxGrace/time.Second))
			e.body.Field = "grace_period_seconds"
			return e
		}
	}
	if target, err := ks.Get(c.Request().Context(), c.Param("key_id")); err == nil {
		// The successor inherits the key's permissions: they must be the caller's to give.
		if err := checkGrantable(c, target.Permissions); err != nil {
			return err
		}
	}
	old, next, plain, err := ks.Rotate(c.Request().Context(), c.Param("key_id"), grace)
	if err != nil {
		return keyError(err, "rotating the key failed; retry later")
	}
	s.log.Info("api key rotated", "key_id", old.ID, "new_key_id", next.ID, "old_expires_at", old.ExpiresAt, "rotated_by", caller(c))
	out := rotateKeyResponse{keyView: s.view(next), Previous: s.view(old)}
	out.Plaintext = plain
	c.Response().Header().Set(echo.HeaderLocation, "/api/admin/keys/"+next.ID)
	return c.JSON(http.StatusCreated, out)
}

// keyError maps the key store's errors: not found 404, conflict 409,
// validation 400 (by the error handler), anything else 503.
func keyError(err error, msg string) error {
	switch {
	case errors.Is(err, auth.ErrNotFound):
		return &httpError{status: http.StatusNotFound, body: errorBody{Error: "API key not found"}}
	case errors.Is(err, auth.ErrConflict):
		return &httpError{status: http.StatusConflict, body: errorBody{Error: err.Error()}}
	}
	var he *httpError
	if errors.As(err, &he) || isValidation(err) {
		return err
	}
	return unavailable(msg, err)
}

func isValidation(err error) bool {
	var ve *experiment.ValidationError
	return errors.As(err, &ve)
}
