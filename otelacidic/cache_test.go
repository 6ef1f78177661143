package otelacidic

import (
	"strconv"
	"sync"
	"testing"
)

// TestCacheMakesOncePerKeyUpToItsCap: a key's value is made once and kept;
// past the cap, values are still right, made each time; concurrent
// readers and writers agree.
func TestCacheMakesOncePerKeyUpToItsCap(t *testing.T) {
	var mu sync.Mutex
	made := map[string]int{}
	c := newCache(func(k string) string {
		mu.Lock()
		made[k]++
		mu.Unlock()
		return "v" + k
	})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range cacheCap + 10 {
				k := strconv.Itoa((i + g) % (cacheCap + 10))
				if v := c.get(k); v != "v"+k {
					t.Errorf("get(%s) = %s", k, v)
				}
			}
		})
	}
	wg.Wait()
	if n := len(*c.m.Load()); n != cacheCap {
		t.Fatalf("cache holds %d values, cap %d", n, cacheCap)
	}
	for k, v := range *c.m.Load() {
		if made[k] != 1 || v != "v"+k {
			t.Fatalf("key %s made %d times, value %s", k, made[k], v)
		}
	}
}
