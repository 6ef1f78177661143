package sqlite

import (
	"context"
	"fmt"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// Group commit. Every write transaction of the process runs on the one
// writer connection, one at a time, and the commit of each step, enqueue or
// transaction of the caller's waits for the disk (synchronous=FULL). When
// such a transaction ends while another of them waits for the writer, it
// does not commit: it hands the open SQLite transaction over to the next
// one, and waits. The one that ends with none of them waiting (or the
// maxGroup-th) commits for all, and every transaction of the group returns
// that COMMIT's result: several transactions share one sync of the WAL and
// write the pages they share once. A bookkeeping transaction that gets the
// writer while a group is open ends it (see grouped); migrations commit
// alone.
//
//	BEGIN IMMEDIATE                        the group's first transaction
//	  … its statements …
//	SAVEPOINT acidic_member                the next one (handed over)
//	  … its statements …
//	RELEASE acidic_member                  (or ROLLBACK TO + RELEASE: it failed)
//	SAVEPOINT acidic_member                …
//	COMMIT                                 the last one; every member returns now
//
// What each transaction is promised stays as it was:
//   - its writes (a step's effects, its recovery point and its log) commit
//     together or not at all: they are in one SAVEPOINT of the one
//     transaction;
//   - one that fails rolls back its own savepoint only (the group's first
//     one fails before anyone joined, and rolls the transaction back);
//   - none returns success before the COMMIT that holds its writes is on
//     disk (synchronous=FULL, as every member asks), and each learns that
//     COMMIT's own result: a commit error fails every member, an I/O error
//     while committing is acidic.ErrCommitUnknown for every member;
//   - a crash between any two statements loses the whole open transaction,
//     which no member was told had committed;
//   - readers (the reader connections, other processes) see none of a
//     member's writes before the COMMIT; a later member sees an earlier
//     one's, as the next transaction would, and is committed or lost with
//     it;
//   - should SQLite roll the transaction back by itself (an interrupted
//     statement, a full disk), every member waiting on it fails with
//     errGroupLost, which matches acidic.ErrSerialization: nothing of
//     theirs was written, and InTx and InStepTx run them again.
//
// Notifications of the members are published after the COMMIT, before any
// member returns. What changes: a member that has ended holds its caller
// until the group commits, that is until the transactions handed the group
// after it have ended; and the members' callers then go on in any order,
// where each transaction's caller used to go on before the next began. A
// member that waited longer than groupGrace queues for the writer itself,
// to commit the group when it gets it; one that cannot get it within
// Options.BusyTimeout (the transaction after it waits, holding the write
// lock, for something that needs the member's caller to go on) returns
// acidic.ErrCommitUnknown.

const (
	// maxGroup caps the transactions committed by one COMMIT, so a steady
	// stream of writers cannot hold the first ones' results back for long.
	maxGroup = 16
	// groupGrace is how long a member that handed the group over waits for
	// the group's commit before it queues for the writer to commit the group
	// itself (whoever it handed over to may have given up waiting, or be
	// slow).
	groupGrace = 2 * time.Millisecond
)

// group is the open SQLite transaction in which the members of a group
// commit. Its fields are used by the writer's holder; err is set before done
// is closed.
type group struct {
	members int // transactions ended in it, to be committed
	notes   []storage.Notification
	done    chan struct{}
	err     error
}

// errGroupLost is a member's error when SQLite rolled back the transaction
// it was to commit in.
var errGroupLost = fmt.Errorf("%w: sqlite: SQLite rolled back the transaction this one was to commit in, after an error of another transaction in it; nothing of this one was written",
	acidic.ErrSerialization)

// grouped tells whether s may be handed a group and hand it on: not a
// migration (it commits alone), nor a bookkeeping transaction (a claim, a
// job's outcome, a heartbeat, a lease).
//
// A bookkeeping transaction never holds a group back: it commits with
// synchronous=NORMAL, so waiting for a later sync would gain it nothing, and
// its caller acts on it the moment it returns, before anything that reads
// its writes may run: the queue publishes an attempt's outcome after writing
// it, and the job's next attempt is claimed by a fetch that reads that
// write. Had the write waited in a group for a later member's end, the
// fetch could run first and the next attempt's events be published before
// the first's (TestEventsForEachOutcomeInOrder). So it is never counted as
// waiting, and at its end it commits: alone, or, when it got the writer
// with a group open, as the group's last member, synced with it; either way
// it returns as soon as its own COMMIT does. (A group is always begun by a
// transaction that commits with synchronous=FULL: SQLite fixes that when
// the transaction begins, "Safety level may not be changed inside a
// transaction", and a group begun with NORMAL could not take a step.)
func (s *txState) grouped() bool { return !s.solo && !s.bookkeeping }

// join starts s in the open group, in a savepoint, or opens a group with
// BEGIN IMMEDIATE; a migration commits the open group first. The caller
// holds the writer.
func (d *Driver) join(ctx context.Context, s *txState) error {
	if d.group != nil && s.solo {
		d.commitGroup()
	}
	if d.group == nil {
		if err := d.beginTx(ctx, s.bookkeeping); err != nil {
			return err
		}
		d.group = &group{done: make(chan struct{})}
		s.g = d.group
		return nil
	}
	if _, err := d.control(context.Background(), ctlSavepoint); err != nil {
		return fmt.Errorf("sqlite: begin: %w", wrapErr(err))
	}
	s.g, s.savepoint = d.group, true
	return nil
}

// release gives the writer back. With an open group, it hands the group
// over when mayHandOver and another writer of the process waits (it
// returns true then), and commits it otherwise.
func (d *Driver) release(mayHandOver bool) bool {
	g := d.group
	handOver := g != nil && mayHandOver && g.members < maxGroup && d.waiting.Load() > 0 && !d.closed.Load()
	if g != nil && !handOver {
		d.commitGroup()
	}
	d.unlock()
	return handOver
}

// commitGroup commits the open group, sets its result and publishes its
// notifications. The caller holds the writer.
func (d *Driver) commitGroup() {
	g := d.group
	d.group = nil
	bg := context.Background()
	var err error
	if d.aborted.Load() {
		_, _ = d.control(bg, ctlRollback)
		err = errGroupLost
	} else {
		_, err = d.control(bg, ctlCommit)
		if err != nil {
			_, _ = d.control(bg, ctlRollback)
			// An I/O error while the commit was written or synced may
			// leave the commit record in the WAL, where the next reader
			// finds it.
			if sqliteCode(err)&0xff == sqlite3.SQLITE_IOERR {
				err = fmt.Errorf("%w: %w", acidic.ErrCommitUnknown, err)
			} else {
				err = fmt.Errorf("sqlite: commit: %w", wrapErr(err))
			}
		}
	}
	// Published before the members learn they committed, as a transaction
	// of its own publishes before its commit returns.
	if err == nil {
		d.hub.publish(g.notes)
	}
	g.err = err
	close(g.done)
	d.groups.Add(1)
	d.members.Add(int64(g.members))
}

// failGroup ends the open group with err, its transaction rolled back.
func (d *Driver) failGroup(err error) {
	g := d.group
	if g == nil {
		return
	}
	d.group = nil
	g.err = err
	close(g.done)
}

// rollbackMember undoes s, which holds the writer: its savepoint, or the
// whole transaction when s opened the group (nothing else is in it yet), or
// when SQLite rolled the transaction back already (the group is lost).
func (d *Driver) rollbackMember(s *txState) {
	bg := context.Background()
	switch {
	case !s.savepoint:
		_, _ = d.control(bg, ctlRollback)
		d.failGroup(errGroupLost) // no member: nobody reads it
	case d.aborted.Load():
		_, _ = d.control(bg, ctlRollback)
		d.failGroup(errGroupLost)
	default:
		_, err := d.control(bg, ctlRollbackTo)
		if err == nil {
			_, err = d.control(bg, ctlRelease)
		}
		if err != nil {
			// The savepoint could not be undone: the group cannot commit
			// without it.
			_, _ = d.control(bg, ctlRollback)
			d.failGroup(fmt.Errorf("%w: sqlite: rolling back another transaction of its group failed: %w", acidic.ErrSerialization, err))
		}
	}
}

// awaitGroup waits for the commit of g, which the caller ended a member of
// and handed over, and returns its result. After groupGrace it queues for
// the writer, to commit g itself if it is still open then.
func (d *Driver) awaitGroup(g *group) error {
	grace := time.NewTimer(groupGrace)
	defer grace.Stop()
	select {
	case <-g.done:
		return g.err
	case <-grace.C:
	}
	deadline := time.NewTimer(d.opts.BusyTimeout)
	defer deadline.Stop()
	select {
	case <-g.done:
		return g.err
	case d.sem <- struct{}{}:
		// g is still open (d.group) or was ended, done closed, by an
		// earlier holder.
		if d.group == g {
			d.commitGroup()
		}
		d.unlock()
		return g.err
	case <-deadline.C:
		return fmt.Errorf("%w: sqlite: the transaction it was to commit in was held open for %v", acidic.ErrCommitUnknown, d.opts.BusyTimeout)
	}
}
