package queue

// OnMaintenanceTick makes c call fn after every tick of its maintenance
// loop with whether the tick ran a pass (c led). Call it before Start.
func OnMaintenanceTick(c *Client, fn func(ran bool)) { c.node.maintained = fn }
