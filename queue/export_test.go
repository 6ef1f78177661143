package queue

// OnMaintenanceTick makes c call fn after every tick of its maintenance
// loop with whether the tick ran a pass (c led). Call it before Start.
func OnMaintenanceTick(c *Client, fn func(ran bool)) { c.node.maintained = fn }

// ActiveSlots is how many of queue's worker slots c's producer counts as
// taken (-1 when c has no producer for queue).
func ActiveSlots(c *Client, queue string) int {
	c.mu.Lock()
	p := c.producers[queue]
	c.mu.Unlock()
	if p == nil {
		return -1
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.active
}
