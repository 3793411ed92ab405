package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/cache"
)

// What each cache layer holds in the API (see internal/cache):
//
//   - tests: the JSON of GET .../tests/{id}, keyed by test id and the time of
//     its last change;
//   - analysis: the latest analysis report of each test (analyze.go);
//   - query: list and dashboard reads: GET .../tests keyed by the filters and
//     the registry's generation, GET .../analyze/history keyed by the
//     revision of the test's stored report;
//   - general: POST /api/ab-testing/power answers, keyed by a digest of the
//     decoded request (the plan is a pure function of it), through
//     cache.CachedCodec (planning.go).
//
// A key that names the version of its source (a test's last change, the
// registry generation, the report revision) is never served after a change
// reaches this replica: the registry's KV watch brings changes from every
// replica within a second, and an invalidation message on
// ab.cache.invalidate.v1 removes entries everywhere (admin endpoints).

// cachedJSON answers with the value cached under key in layer, or with the
// JSON of render(), which it caches. Without a cache it renders.
func (s *Server) cachedJSON(c echo.Context, layer, key string, render func() (any, error)) error {
	if s.cache != nil {
		if b, ok := s.cache.Get(layer, key); ok {
			return c.JSONBlob(http.StatusOK, b)
		}
	}
	v, err := render()
	if err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if s.cache != nil {
		if err := s.cache.Set(layer, key, b); err != nil {
			s.log.Debug("caching a response", "layer", layer, "err", err)
		}
	}
	return c.JSONBlob(http.StatusOK, b)
}

// testKey is a test's key in the tests layer: its id and last change.
func testKey(t *experiment.Test) string {
	return t.ID + "@" + strconv.FormatInt(t.UpdatedAt.UnixNano(), 36)
}

// reportRevision returns the revision of a test's stored report, or false
// when there is none (or the bucket cannot be read).
func (s *Server) reportRevision(c echo.Context, testID string) (uint64, bool) {
	if s.reports == nil {
		return 0, false
	}
	e, err := s.reports.Get(c.Request().Context(), testID)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			s.log.Debug("reading a report revision", "test_id", testID, "err", err)
		}
		return 0, false
	}
	return e.Revision(), true
}

// digest is a short key for a request body.
func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// cacheStats serves GET /api/admin/cache/stats: per layer entries, hits,
// misses, hit rate, evictions and size.
func (s *Server) cacheStats(c echo.Context) error {
	if s.cache == nil {
		return newError(http.StatusNotFound, "the cache is disabled on this replica")
	}
	return c.JSON(http.StatusOK, map[string]any{"layers": s.cache.Stats()})
}

type clearCacheRequest struct {
	// Category is a layer name; empty clears every layer.
	Category string `json:"category"`
}

// clearCache serves POST /api/admin/clear-cache: one layer
// ({"category": "query"}, or ?category=query) or all of them, on every
// replica.
func (s *Server) clearCache(c echo.Context) error {
	if s.cache == nil {
		return newError(http.StatusNotFound, "the cache is disabled on this replica")
	}
	var req clearCacheRequest
	if r := c.Request(); r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		if err := decodeJSON(c, s.cfg.MaxBodyBytes, &req); err != nil {
			return err
		}
	}
	if q := c.QueryParam("category"); q != "" {
		req.Category = q
	}
	var err error
	switch {
	case req.Category == "":
		req.Category = "all"
		err = s.cache.Clear()
	case slices.Contains(cache.Layers, req.Category):
		err = s.cache.InvalidateCategory(req.Category)
	default:
		e := newError(http.StatusBadRequest, "category must be one of %v, or empty for all", cache.Layers)
		e.body.Field = "category"
		return e
	}
	keyID, _ := c.Get(ctxKeyID).(string)
	s.log.Info("cache cleared", "category", req.Category, "key_id", keyID)
	if err != nil {
		// Cleared here; the other replicas will expire their entries.
		return unavailable("cleared on this replica, but the other replicas could not be told (NATS unreachable)", err)
	}
	return c.JSON(http.StatusOK, map[string]string{"cleared": req.Category})
}

// getTestCached serves GET .../tests/{id} from the tests layer.
func (s *Server) getTestCached(c echo.Context) error {
	t, err := s.lookup(c.Request().Context(), c.Param("test_id"))
	if err != nil {
		return err
	}
	return s.cachedJSON(c, cache.LayerTests, testKey(t), func() (any, error) { return t, nil })
}

// listTestsCached serves GET .../tests, filtered by status and test_type,
// from the query layer.
func (s *Server) listTestsCached(c echo.Context) error {
	status := experiment.Status(c.QueryParam("status"))
	if status != "" && !status.Valid() {
		e := newError(http.StatusBadRequest, "status must be one of draft, running, stopped")
		e.body.Field = "status"
		return e
	}
	typ := experiment.Type(c.QueryParam("test_type"))
	if typ != "" && !typ.Valid() {
		e := newError(http.StatusBadRequest, "test_type must be one of workflow, prompt, model, routing")
		e.body.Field = "test_type"
		return e
	}
	key := cache.Key("list_tests", string(status), string(typ), s.reg.Generation())
	return s.cachedJSON(c, cache.LayerQuery, key, func() (any, error) {
		out := listResponse{Tests: []*experiment.Test{}}
		for _, t := range s.reg.List() {
			if (status == "" || t.Status == status) && (typ == "" || t.Type == typ) {
				out.Tests = append(out.Tests, t)
			}
		}
		out.Total = len(out.Tests)
		return out, nil
	})
}
