package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Codec turns values of T into bytes and back.
type Codec[T any] interface {
	Marshal(v T) ([]byte, error)
	Unmarshal(data []byte) (T, error)
}

// Bytes is the Codec of []byte values, stored as they are.
type Bytes struct{}

// Marshal returns v.
func (Bytes) Marshal(v []byte) ([]byte, error) { return v, nil }

// Unmarshal returns data (already a copy owned by the caller).
func (Bytes) Unmarshal(data []byte) ([]byte, error) { return data, nil }

// CachedCodec returns the value cached under key in layer, or computes it
// with fn, caches it through codec and returns it: the seed's @cached
// decorator (build key from the function's arguments with Key). Callers
// that hold their values as bytes (JSON answers) use Bytes.
//
// At most one fn runs per layer and key at a time on this replica: callers
// that miss while it runs wait for its result (singleflight), and each
// decodes its own copy, so no two callers share a value. fn runs with the
// first caller's context values but without its cancellation, so that a
// caller giving up does not fail the others; a caller whose ctx ends
// stops waiting and gets ctx.Err(). An error from fn is returned to every
// waiting caller and not cached.
//
// A result is cached only if the layer saw no invalidation (Delete,
// InvalidateCategory, Clear, local or remote) while fn ran, so a value
// computed from data that changed meanwhile is never stored; callers
// arriving after an invalidation start a new computation rather than join
// the old one.
func CachedCodec[T any](ctx context.Context, c *Cache, layer, key string, codec Codec[T], fn func(context.Context) (T, error)) (T, error) {
	var zero T
	l, err := c.layer(layer)
	if err != nil {
		return zero, err
	}
	if data, ok := l.get(key); ok {
		if v, err := codec.Unmarshal(data); err == nil {
			return v, nil
		}
		// An undecodable entry (a changed type): recompute and replace it.
	}
	if l.big == nil {
		return fn(ctx)
	}
	epoch := l.epoch.Load()
	flight := layer + "\x00" + strconv.FormatUint(epoch, 10) + "\x00" + key
	fctx := context.WithoutCancel(ctx)
	ch := c.flights.DoChan(flight, func() (any, error) {
		// Another flight may have stored the value since this caller
		// missed.
		if data, ok := l.peek(key); ok {
			if _, err := codec.Unmarshal(data); err == nil {
				return data, nil
			}
		}
		v, err := fn(fctx)
		if err != nil {
			return nil, err
		}
		data, err := codec.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encoding the value of %s for the %s cache: %w", key, layer, err)
		}
		if _, err := l.set(key, data, &epoch); err != nil {
			c.log.Debug("caching a computed value", "layer", layer, "err", err)
		}
		return data, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return zero, r.Err
		}
		data := r.Val.([]byte)
		if r.Shared {
			data = bytes.Clone(data) // a codec may keep the slice (Bytes does)
		}
		return codec.Unmarshal(data)
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// Key builds a cache key from a function name and its arguments, each
// encoded as JSON: Key("list_tests", "running", 50) is
// `list_tests("running",50)`. An argument that JSON cannot encode is
// formatted with %#v.
func Key(name string, args ...any) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('(')
	for i, a := range args {
		if i > 0 {
			b.WriteByte(',')
		}
		if j, err := json.Marshal(a); err == nil {
			b.Write(j)
		} else {
			fmt.Fprintf(&b, "%#v", a)
		}
	}
	b.WriteByte(')')
	return b.String()
}
