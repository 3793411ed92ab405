package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

type readiness struct {
	Status  string            `json:"status"`
	Checks  map[string]string `json:"checks"`
	Details map[string]any    `json:"details,omitempty"`
}

// readyz runs every readiness check concurrently with a short deadline. It
// fails as soon as shutdown begins so that load balancers stop sending work.
func (s *Server) readyz(c echo.Context) error {
	out := readiness{Status: "ready", Checks: make(map[string]string, len(s.checks))}
	if s.stopping.Load() {
		out.Status = "stopping"
		return c.JSON(http.StatusServiceUnavailable, out)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, ch := range s.checks {
		if ch.Details != nil {
			if d := ch.Details(); d != nil {
				if out.Details == nil {
					out.Details = map[string]any{}
				}
				out.Details[ch.Name] = d
			}
		}
		if ch.Func == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := "ok"
			if err := ch.Func(ctx); err != nil {
				res = err.Error()
			}
			mu.Lock()
			out.Checks[ch.Name] = res
			if res != "ok" {
				out.Status = "not_ready"
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	code := http.StatusOK
	if out.Status != "ready" {
		code = http.StatusServiceUnavailable
	}
	return c.JSON(code, out)
}
