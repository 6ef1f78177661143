package otelacidic

import (
	"maps"
	"sync"
	"sync/atomic"
)

// cacheCap bounds a cache: the keys are kinds, queues, workflows, steps and
// outcomes, which code defines, so a few hundred is plenty; past the cap a
// value is made each time rather than kept.
const cacheCap = 1024

// cache keeps values made once per key (a span name, a set of metric
// attributes) for the hot path: a lookup takes no lock and allocates
// nothing; a miss copies the map.
type cache[K comparable, V any] struct {
	mk func(K) V
	m  atomic.Pointer[map[K]V]
	mu sync.Mutex // serializes the copies
}

func newCache[K comparable, V any](mk func(K) V) *cache[K, V] {
	return &cache[K, V]{mk: mk}
}

// get returns the value of key, made by c.mk the first time.
func (c *cache[K, V]) get(key K) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[key]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.m.Load()
	if cur != nil {
		if v, ok := (*cur)[key]; ok {
			return v
		}
		if len(*cur) >= cacheCap {
			return c.mk(key)
		}
	}
	v := c.mk(key)
	next := make(map[K]V)
	if cur != nil {
		maps.Copy(next, *cur)
	}
	next[key] = v
	c.m.Store(&next)
	return v
}
