package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// The storage.Uniqueness methods: sql/unique.sql, migration 0002. A graph
// key's reservation needs no wait for another transaction: the single writer
// has every earlier one committed or rolled back.

func (e *executor) JobUniqueRelease(ctx context.Context, p storage.JobUniqueReleaseParams) (int, error) {
	if len(p.Key) == 0 {
		return 0, fmt.Errorf("%w: release of an empty unique key", acidic.ErrInvalid)
	}
	if p.OlderThan < 0 {
		return 0, fmt.Errorf("%w: release of unique keys older than %s", acidic.ErrInvalid, p.OlderThan)
	}
	var n int64
	err := e.write(ctx, false, func(q wq) error {
		var err error
		n, err = q.execCount("JobUniqueRelease", p.Key, q.now()-p.OlderThan.Microseconds())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("release unique key: %w", err)
	}
	return int(n), nil
}

func (e *executor) JobGraphReserve(ctx context.Context, p storage.JobGraphReserveParams) (storage.JobGraphReservation, error) {
	if err := p.Validate(); err != nil {
		return storage.JobGraphReservation{}, err
	}
	if e.tx == nil {
		// Outside a transaction the key would commit without its jobs.
		return storage.JobGraphReservation{}, fmt.Errorf("%w: graph key %q: a graph key is reserved in the transaction that inserts the graph", acidic.ErrInvalid, p.Key)
	}
	var out storage.JobGraphReservation
	err := e.write(ctx, false, func(q wq) error {
		var key string
		err := q.queryRow("JobGraphReserve", p.Key, q.now()).Scan(&key)
		if err == nil {
			out = storage.JobGraphReservation{Reserved: true}
			return nil
		}
		if err = wrapErr(err); !isNotFound(err) {
			return err
		}
		var names, ids string
		if err := q.queryRow("JobGraphGet", p.Key).Scan(&names, &ids); err != nil {
			return wrapErr(err)
		}
		var ns []string
		var is []int64
		if err := json.Unmarshal([]byte(names), &ns); err != nil {
			return fmt.Errorf("sqlite: graph %q: names: %w", p.Key, err)
		}
		if err := json.Unmarshal([]byte(ids), &is); err != nil {
			return fmt.Errorf("sqlite: graph %q: job ids: %w", p.Key, err)
		}
		if len(ns) != len(is) {
			return fmt.Errorf("sqlite: graph %q: %d names for %d jobs", p.Key, len(ns), len(is))
		}
		jobs := make(map[string]int64, len(ns))
		for i, n := range ns {
			jobs[n] = is[i]
		}
		out = storage.JobGraphReservation{Jobs: jobs}
		return nil
	})
	if err != nil {
		return storage.JobGraphReservation{}, fmt.Errorf("reserve graph key: %w", err)
	}
	return out, nil
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
	err := e.write(ctx, false, func(q wq) error {
		n, err := q.execCount("JobGraphRecord", p.Key, stringList(names), idList(ids))
		if err == nil && n == 0 {
			return fmt.Errorf("%w: the key is not reserved", acidic.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("record graph %q: %w", p.Key, err)
	}
	return nil
}

func (e *executor) JobGraphPrune(ctx context.Context, p storage.JobGraphPruneParams) (int, error) {
	if p.Retention < 0 || p.Limit < 0 {
		return 0, fmt.Errorf("%w: prune graphs: negative retention or limit", acidic.ErrInvalid)
	}
	var n int64
	err := e.write(ctx, true, func(q wq) error {
		var err error
		n, err = q.execCount("JobGraphPrune", q.now()-p.Retention.Microseconds(), p.Limit)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune graphs: %w", err)
	}
	return int(n), nil
}
