package cache

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// SubjectInvalidate carries cache invalidations between replicas over NATS
// core pub/sub (at most once, not JetStream).
const SubjectInvalidate = "ab.cache.invalidate.v1"

// allLayers in an invalidation's layer field means every layer.
const allLayers = "all"

// invalidation is the payload on SubjectInvalidate, as JSON:
//
//	{"origin":"6f1c...","layer":"tests","key":"checkout-button"}  one key
//	{"origin":"6f1c...","layer":"query"}                          one layer
//	{"origin":"6f1c...","layer":"all"}                            everything
//
// Applying one twice is harmless; a replica skips its own.
type invalidation struct {
	Origin string  `json:"origin"`
	Layer  string  `json:"layer"`
	Key    *string `json:"key,omitempty"` // nil: the whole layer
}

func (c *Cache) broadcast(m invalidation) error {
	if c.nc == nil {
		return nil
	}
	m.Origin = c.origin
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding cache invalidation: %w", err)
	}
	if err := c.nc.Publish(c.cfg.Subject, data); err != nil {
		return fmt.Errorf("publishing cache invalidation of layer %s: %w", m.Layer, err)
	}
	return nil
}

// subscribe applies other replicas' invalidations and clears every layer
// when the connection comes back after a disconnect.
func (c *Cache) subscribe() error {
	sub, err := c.nc.Subscribe(c.cfg.Subject, c.receive)
	if err != nil {
		return fmt.Errorf("subscribing to cache invalidations: %w", err)
	}
	c.sub = sub
	// SUB travels asynchronously: without this round trip, a replica's
	// first invalidations could reach the server before the subscription
	// and be lost. If it fails, the connection is down, and the reconnect
	// handler below clears the layers when it comes back.
	if err := c.nc.FlushTimeout(5 * time.Second); err != nil {
		c.log.Warn("confirming the cache invalidation subscription", "subject", c.cfg.Subject, "err", err)
	}
	// nats.go has one reconnect handler per connection: chain ours in
	// front of the one already set (eventbus logs reconnects). Nothing
	// else sets it concurrently while New runs.
	prev := c.nc.Opts.ReconnectedCB
	c.nc.SetReconnectHandler(func(nc *nats.Conn) {
		c.reconnected()
		if prev != nil {
			prev(nc)
		}
	})
	return nil
}

// reconnected clears every layer: invalidations published while this
// replica was disconnected are lost (NATS core is at most once). It runs
// on nats.go's callback goroutine.
func (c *Cache) reconnected() {
	if c.closed.Load() {
		return
	}
	// nats.go has resent the subscription but the server may not have
	// processed it yet: clear only after a round trip, or an entry refilled
	// in between could miss an invalidation published in between.
	if err := c.nc.FlushTimeout(5 * time.Second); err != nil {
		c.log.Warn("confirming the cache invalidation subscription after a reconnect", "subject", c.cfg.Subject, "err", err)
	}
	c.clearLocal()
	c.log.Warn("nats reconnected: cleared the cache, invalidations may have been missed")
}

// receive runs on the subscription's goroutine.
func (c *Cache) receive(msg *nats.Msg) {
	if c.closed.Load() {
		return
	}
	var m invalidation
	if err := json.Unmarshal(msg.Data, &m); err != nil {
		c.log.Warn("decoding cache invalidation", "subject", msg.Subject, "err", err)
		return
	}
	if m.Origin == c.origin {
		return
	}
	if m.Layer == allLayers {
		c.clearLocal()
		return
	}
	l, ok := c.layers[m.Layer]
	if !ok {
		// A newer replica's layer: nothing of it is cached here.
		c.log.Debug("cache invalidation of an unknown layer", "layer", m.Layer)
		return
	}
	if m.Key != nil {
		l.delete(*m.Key)
	} else {
		l.invalidate()
	}
}
