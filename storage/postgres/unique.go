package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

func (e *executor) JobUniqueRelease(ctx context.Context, p storage.JobUniqueReleaseParams) (int, error) {
	if len(p.Key) == 0 {
		return 0, fmt.Errorf("%w: release of an empty unique key", acidic.ErrInvalid)
	}
	if p.OlderThan < 0 {
		return 0, fmt.Errorf("%w: release of unique keys older than %s", acidic.ErrInvalid, p.OlderThan)
	}
	tag, err := e.db.Exec(ctx, e.q.Get("JobUniqueRelease"), p.Key, p.OlderThan.Microseconds())
	if err != nil {
		return 0, fmt.Errorf("release unique key: %w", wrapErr(err))
	}
	return int(tag.RowsAffected()), nil
}

// graphReserveTries bounds how often JobGraphReserve looks again for a
// graph whose key its insert found taken but which was gone when it read
// it (its jobs pruned meanwhile).
const graphReserveTries = 20

func (e *executor) JobGraphReserve(ctx context.Context, p storage.JobGraphReserveParams) (storage.JobGraphReservation, error) {
	if err := p.Validate(); err != nil {
		return storage.JobGraphReservation{}, err
	}
	if e.pool != nil {
		// Outside a transaction the key would commit without its jobs.
		return storage.JobGraphReservation{}, fmt.Errorf("%w: graph key %q: a graph key is reserved in the transaction that inserts the graph", acidic.ErrInvalid, p.Key)
	}
	for try := 1; try <= graphReserveTries; try++ {
		var key string
		err := e.db.QueryRow(ctx, e.q.Get("JobGraphReserve"), p.Key).Scan(&key)
		if err == nil {
			return storage.JobGraphReservation{Reserved: true}, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return storage.JobGraphReservation{}, fmt.Errorf("reserve graph key: %w", wrapErr(err))
		}
		var names []string
		var ids []int64
		err = e.db.QueryRow(ctx, e.q.Get("JobGraphGet"), p.Key).Scan(&names, &ids)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // pruned between the two statements: the key is free again
		}
		if err != nil {
			return storage.JobGraphReservation{}, fmt.Errorf("read graph: %w", wrapErr(err))
		}
		if len(names) != len(ids) {
			return storage.JobGraphReservation{}, fmt.Errorf("read graph %q: %d names for %d jobs", p.Key, len(names), len(ids))
		}
		jobs := make(map[string]int64, len(names))
		for i, n := range names {
			jobs[n] = ids[i]
		}
		return storage.JobGraphReservation{Jobs: jobs}, nil
	}
	return storage.JobGraphReservation{}, fmt.Errorf("reserve graph key: %w: the graph holding it kept disappearing (%d tries)", acidic.ErrSerialization, graphReserveTries)
}

func (e *executor) JobGraphRecord(ctx context.Context, p storage.JobGraphRecordParams) error {
	if err := p.Validate(); err != nil {
		return err
	}
	names := make([]string, 0, len(p.Jobs))
	for n := range p.Jobs {
		names = append(names, n)
	}
	slices.Sort(names)
	ids := make([]int64, len(names))
	for i, n := range names {
		ids[i] = p.Jobs[n]
	}
	tag, err := e.db.Exec(ctx, e.q.Get("JobGraphRecord"), p.Key, names, ids)
	if err != nil {
		return fmt.Errorf("record graph: %w", wrapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("record graph %q: %w: the key is not reserved", p.Key, acidic.ErrNotFound)
	}
	return nil
}

func (e *executor) JobGraphPrune(ctx context.Context, p storage.JobGraphPruneParams) (int, error) {
	if p.Retention < 0 || p.Limit < 0 {
		return 0, fmt.Errorf("%w: prune graphs: negative retention or limit", acidic.ErrInvalid)
	}
	tag, err := e.db.Exec(ctx, e.q.Get("JobGraphPrune"), p.Retention.Microseconds(), p.Limit)
	if err != nil {
		return 0, fmt.Errorf("prune graphs: %w", wrapErr(err))
	}
	return int(tag.RowsAffected()), nil
}
