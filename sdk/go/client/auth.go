package client

import (
	"context"
	"net/http"
)

// WithAPIKey sends key in the X-API-Key header of every request.
func WithAPIKey(key string) ClientOption {
	return WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		req.Header.Set("X-API-Key", key)
		return nil
	})
}
