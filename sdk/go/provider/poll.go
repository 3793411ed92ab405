package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/abacus-ab/abacus/experiment"
)

// flagsPath serves every test's definition, with an ETag.
const flagsPath = "/api/ab-testing/flags"

// errUnauthorized is a 401 or 403: the API key is missing, unknown or
// lacks the permission, which retrying does not fix.
var errUnauthorized = errors.New("the server rejected the API key")

// refresh fetches the definitions (Init).
func (p *Provider) refresh(ctx context.Context) error {
	_, err := p.fetch(ctx)
	return err
}

// fetch gets the definitions, with If-None-Match when it holds some, and
// swaps in a new snapshot when they changed, which it reports.
func (p *Provider) fetch(ctx context.Context) (changed bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.BaseURL+flagsPath, nil)
	if err != nil {
		return false, fmt.Errorf("building the definitions request: %w", err)
	}
	p.authorize(req)
	req.Header.Set("Accept", "application/json")
	old := p.snap.Load()
	if old != nil && old.etag != "" {
		req.Header.Set("If-None-Match", old.etag)
	}
	resp, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return false, fmt.Errorf("fetching the definitions: %w", err)
	}
	defer func() { _ = resp.Body.Close() }() // read to the end or not needed
	switch {
	case resp.StatusCode == http.StatusNotModified && old != nil:
		return false, nil
	case resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden:
		return false, fmt.Errorf("fetching the definitions: %d: %w", resp.StatusCode, errUnauthorized)
	case resp.StatusCode != http.StatusOK:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return false, fmt.Errorf("fetching the definitions: status %d: %s", resp.StatusCode, body)
	}
	var defs struct {
		Tests []*experiment.Test `json:"tests"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&defs); err != nil {
		return false, fmt.Errorf("decoding the definitions: %w", err)
	}
	p.snap.Store(newSnapshot(defs.Tests, resp.Header.Get("ETag")))
	return true, nil
}

func (p *Provider) authorize(req *http.Request) {
	if p.cfg.APIKey != "" {
		req.Header.Set("X-API-Key", p.cfg.APIKey)
	}
}

// poll fetches the definitions every PollInterval until Shutdown; ready
// says whether Init got them. It emits READY when the first definitions
// arrive late, CONFIGURATION_CHANGED on each change, STALE on the first
// failure after a success. It exits when p.stop is closed.
func (p *Provider) poll(ctx context.Context, ready bool) {
	defer p.wg.Done()
	tick := time.NewTicker(p.cfg.PollInterval)
	defer tick.Stop()
	stale := false
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		changed, err := p.fetch(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			p.log.Warn("polling the flag definitions failed", "err", err)
			if ready && !stale {
				stale = true
				p.emit(openfeature.ProviderStale, err.Error())
			}
		case !ready || stale:
			ready, stale = true, false
			p.log.Info("flag definitions fetched")
			p.emit(openfeature.ProviderReady, "flag definitions fetched")
		case changed:
			p.emit(openfeature.ProviderConfigChange, "flag definitions changed")
		}
	}
}
