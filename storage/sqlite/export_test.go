package sqlite

// Groups returns how many groups of transactions the driver committed (or
// failed) so far: one COMMIT each.
func Groups(d *Driver) int64 { return d.groups.Load() }

// Waiting returns how many writers of the process wait for the writer.
func Waiting(d *Driver) int32 { return d.waiting.Load() }

// Members returns how many transactions ended in the groups counted by
// Groups.
func Members(d *Driver) int64 { return d.members.Load() }
