package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic/storage"
)

// JobFetchLimited claims jobs under limits that hold across clients; see
// storage.LimitedFetcher. The completions of p.Complete and the fetch are
// one write transaction (bookkeeping: synchronous=NORMAL). The single
// writer runs the limited fetches of a queue one after another, so what the
// PostgreSQL driver gets from row locks (the queue's row of queue_limits,
// SKIP LOCKED slots) comes here from the write lock: the fetch reads the
// running jobs, recent starts and free slots, decides in Go, and writes, with
// nothing in between. Start stamps are the driver's clock (strictly
// increasing within the process), or the last stamp handed out if that is
// later (another process's clock).
//
// Without partitions, the queue's slots (queue_slots) count as in the
// PostgreSQL driver: a job claimed otherwise (JobFetch, JobClaim) holds no
// slot. With partitions, every running job of the queue counts.
func (d *Driver) JobFetchLimited(ctx context.Context, p storage.JobFetchLimitedParams) (storage.JobFetchLimitedResult, error) {
	var res storage.JobFetchLimitedResult
	if err := p.Limits.Validate(); err != nil {
		return res, fmt.Errorf("fetch jobs of queue %q: %w", p.Queue, err)
	}
	if err := storage.CheckName("queue", p.Queue); err != nil {
		return res, fmt.Errorf("fetch jobs: %w", err)
	}
	s := &txState{d: d, bookkeeping: true}
	defer s.end()
	ex := &executor{d: d, tx: s}
	if len(p.Complete) > 0 {
		done, err := ex.JobComplete(ctx, storage.JobCompleteParams{Attempts: p.Complete})
		if err != nil {
			return storage.JobFetchLimitedResult{}, fmt.Errorf("fetch jobs of queue %q under limits: %w", p.Queue, err)
		}
		res.Completed = done
	}
	err := ex.write(ctx, true, func(q wq) error {
		if len(p.Limits.PartitionBy) == 0 {
			return fetchLimitedQueue(q, p, &res)
		}
		return fetchLimitedPartitions(q, p, &res)
	})
	if err == nil {
		err = s.commit(ctx)
	}
	if err != nil {
		return storage.JobFetchLimitedResult{}, fmt.Errorf("fetch jobs of queue %q under limits: %w", p.Queue, err)
	}
	slices.SortFunc(res.Jobs, func(a, b storage.FetchedJob) int {
		if a.Priority != b.Priority {
			return a.Priority - b.Priority
		}
		if c := a.ScheduledAt.Compare(b.ScheduledAt); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	return res, nil
}

// readSlots reads the slot numbers a query returns.
func readSlots(rows rowset, err error) ([]int64, error) { return readIDs(rows, err) }

// claimLimited claims job id at stamp ts and leases its run as JobFetch
// does; nil when the job is no longer eligible.
func claimLimited(q wq, id int64, worker string, ts, now int64) (*storage.FetchedJob, error) {
	j, err := scanJob(q.queryRow("LimitClaim", id, ts, worker, now))
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f := &storage.FetchedJob{Job: j}
	if j.RunID != uuid.Nil {
		r, err := scanRun(q.queryRow("JobFetchLease", blobID(j.RunID), leaseToken(j), j.ID, j.Attempt, now, j.Kind))
		switch {
		case err == nil:
			f.LeasedRun = r
		case !isNotFound(err):
			return nil, err
		}
	}
	return f, nil
}

// fetchLimitedQueue is a limited fetch of a queue without partitions,
// through its slots.
func fetchLimitedQueue(q wq, p storage.JobFetchLimitedParams, res *storage.JobFetchLimitedResult) error {
	l := p.Limits
	now := q.now()
	ts := now
	period := l.RatePeriod.Microseconds()
	for _, k := range []struct {
		kind string
		n    int
	}{{"c", l.Concurrency}, {"r", l.RateLimit}} {
		if k.n > 0 {
			if _, err := q.exec("LimitSlotsEnsure", p.Queue, k.kind, k.n); err != nil {
				return err
			}
		}
	}
	room := max(p.Max, 0)
	var cfree, rfree []int64
	var err error
	if l.Concurrency > 0 {
		if cfree, err = readSlots(q.query("LimitSlotsFreeC", p.Queue, l.Concurrency, room)); err != nil {
			return err
		}
		room = min(room, len(cfree))
	}
	if l.RateLimit > 0 {
		if rfree, err = readSlots(q.query("LimitSlotsFreeR", p.Queue, l.RateLimit, ts-period, room)); err != nil {
			return err
		}
		room = min(room, len(rfree))
	}
	var picked []int64
	if room > 0 {
		rows, err := q.query("LimitEligible", p.Queue, now, p.SkipRunJobs)
		if err != nil {
			return wrapErr(err)
		}
		for rows.Next() && len(picked) < room {
			var (
				id, prio, sched int64
				args            []byte
			)
			if err := rows.Scan(&id, &prio, &sched, &args); err != nil {
				rows.Close()
				return wrapErr(err)
			}
			picked = append(picked, id)
		}
		if err := rows.Close(); err != nil {
			return wrapErr(err)
		}
	}
	for i, id := range picked {
		f, err := claimLimited(q, id, p.WorkerID, ts, now)
		if err != nil {
			return err
		}
		if f == nil {
			continue
		}
		if l.Concurrency > 0 {
			if _, err := q.exec("LimitSlotTakeC", p.Queue, cfree[i], f.ID, f.Attempt, ts); err != nil {
				return err
			}
		}
		if l.RateLimit > 0 {
			if _, err := q.exec("LimitSlotTakeR", p.Queue, rfree[i], ts); err != nil {
				return err
			}
		}
		res.Jobs = append(res.Jobs, *f)
	}
	// Held: the slots, not the jobs, ran out.
	if room < p.Max {
		if room > 0 {
			res.Held = len(picked) == room
		} else {
			var any bool
			if err := q.queryRow("LimitEligibleAny", p.Queue, now, p.SkipRunJobs).Scan(&any); err != nil {
				return wrapErr(err)
			}
			res.Held = any
		}
	}
	if l.RateLimit > 0 && len(rfree)-len(res.Jobs) <= 0 {
		var oldest sql.NullInt64
		if err := q.queryRow("LimitRateOldest", p.Queue, l.RateLimit).Scan(&oldest); err != nil {
			return wrapErr(err)
		}
		if oldest.Valid {
			if retry := oldest.Int64 + period - ts; retry > 0 {
				res.RetryIn = time.Duration(retry) * time.Microsecond
			}
		}
	}
	return nil
}

// partitionKey is the partition of a job with the given args: the JSON
// array of the values of the fields (null for a missing one), each in its
// canonical form.
func partitionKey(args []byte, fields []string) string {
	var obj map[string]json.RawMessage
	_ = json.Unmarshal(args, &obj) // not an object: every field null
	var b bytes.Buffer
	b.WriteByte('[')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		v, ok := obj[f]
		if !ok {
			b.WriteString("null")
			continue
		}
		var x any
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		if err := dec.Decode(&x); err != nil {
			b.WriteString("null")
			continue
		}
		enc, err := json.Marshal(x)
		if err != nil {
			b.WriteString("null")
			continue
		}
		b.Write(enc)
	}
	b.WriteByte(']')
	return b.String()
}

// partition is what a partitioned fetch knows of one partition.
type partition struct {
	running   int
	recent    int   // starts inside the window
	oldest    int64 // the oldest of them
	starts    []int64
	stamped   sql.NullInt64
	hasRoom   bool // room was computed (running or recent starts)
	room      int
	scanned   int // waiting jobs scanned
	claimed   int
	rowExists bool
}

// fetchLimitedPartitions is a limited fetch of a partitioned queue: see
// the PostgreSQL driver's JobFetchLimited query for the rules, which this
// follows step by step.
func fetchLimitedPartitions(q wq, p storage.JobFetchLimitedParams, res *storage.JobFetchLimitedResult) error {
	l := p.Limits
	now := q.now()
	var ts int64
	if err := q.queryRow("LimitQueueStamp", p.Queue, now).Scan(&ts); err != nil {
		return wrapErr(err)
	}
	period := l.RatePeriod.Microseconds()
	windowStart := ts - period
	lookahead := l.Lookahead
	if lookahead == 0 {
		lookahead = storage.DefaultLookahead
	}
	parts := map[string]*partition{}
	get := func(k string) *partition {
		pt := parts[k]
		if pt == nil {
			pt = &partition{}
			parts[k] = pt
		}
		return pt
	}
	// The partitions' rows: their starts and when each last got a job.
	rows, err := q.query("LimitPartitions", p.Queue)
	if err != nil {
		return wrapErr(err)
	}
	for rows.Next() {
		var (
			key, starts string
			stamped     sql.NullInt64
		)
		if err := rows.Scan(&key, &starts, &stamped); err != nil {
			rows.Close()
			return wrapErr(err)
		}
		pt := get(key)
		pt.rowExists, pt.stamped = true, stamped
		if err := json.Unmarshal([]byte(starts), &pt.starts); err != nil {
			rows.Close()
			return fmt.Errorf("sqlite: queue %s partition %s: starts: %w", p.Queue, key, err)
		}
		if l.RateLimit > 0 && stamped.Valid && stamped.Int64 > windowStart {
			for _, s := range pt.starts {
				if s > windowStart {
					if pt.recent == 0 || s < pt.oldest {
						pt.oldest = s
					}
					pt.recent++
				}
			}
			pt.hasRoom = true
		}
	}
	if err := rows.Close(); err != nil {
		return wrapErr(err)
	}
	if l.Concurrency > 0 {
		rows, err := q.query("LimitRunning", p.Queue)
		if err != nil {
			return wrapErr(err)
		}
		for rows.Next() {
			var args []byte
			if err := rows.Scan(&args); err != nil {
				rows.Close()
				return wrapErr(err)
			}
			pt := get(partitionKey(args, l.PartitionBy))
			pt.running++
			pt.hasRoom = true
		}
		if err := rows.Close(); err != nil {
			return wrapErr(err)
		}
	}
	fullRoom := 0
	switch {
	case l.Concurrency > 0 && l.RateLimit > 0:
		fullRoom = min(l.Concurrency, l.RateLimit)
	case l.Concurrency > 0:
		fullRoom = l.Concurrency
	default:
		fullRoom = l.RateLimit
	}
	anyFull := false
	for _, pt := range parts {
		if !pt.hasRoom {
			pt.room = fullRoom
			continue
		}
		room := -1
		if l.Concurrency > 0 {
			room = l.Concurrency - pt.running
		}
		if l.RateLimit > 0 && (room < 0 || l.RateLimit-pt.recent < room) {
			room = l.RateLimit - pt.recent
		}
		pt.room = room
		if room <= 0 {
			anyFull = true
		}
	}
	// The scan: waiting jobs in fetch order, passing over partitions with
	// no room, ranked within their partition.
	type cand struct {
		id, prio, sched int64
		part            string
		rank            int
	}
	var scan []cand
	if p.Max > 0 {
		limit := max(lookahead, p.Max)
		rows, err := q.query("LimitEligible", p.Queue, now, p.SkipRunJobs)
		if err != nil {
			return wrapErr(err)
		}
		for len(scan) < limit && rows.Next() {
			var (
				c    cand
				args []byte
			)
			if err := rows.Scan(&c.id, &c.prio, &c.sched, &args); err != nil {
				rows.Close()
				return wrapErr(err)
			}
			c.part = partitionKey(args, l.PartitionBy)
			pt := parts[c.part]
			if pt != nil && pt.hasRoom && pt.room <= 0 {
				continue
			}
			pt = get(c.part)
			if !pt.hasRoom {
				pt.room = fullRoom
			}
			pt.scanned++
			c.rank = pt.scanned
			scan = append(scan, c)
		}
		if err := rows.Close(); err != nil {
			return wrapErr(err)
		}
	}
	overflow := false
	var chosen []cand
	for _, c := range scan {
		if c.rank <= parts[c.part].room {
			chosen = append(chosen, c)
		} else {
			overflow = true
		}
	}
	sort.SliceStable(chosen, func(i, j int) bool {
		a, b := chosen[i], chosen[j]
		if a.prio != b.prio {
			return a.prio < b.prio
		}
		if a.rank != b.rank {
			return a.rank < b.rank
		}
		sa, sb := parts[a.part].stamped, parts[b.part].stamped
		if sa.Valid != sb.Valid {
			return !sa.Valid // never served first
		}
		if sa.Valid && sa.Int64 != sb.Int64 {
			return sa.Int64 < sb.Int64
		}
		if a.sched != b.sched {
			return a.sched < b.sched
		}
		return a.id < b.id
	})
	if len(chosen) > p.Max {
		chosen = chosen[:max(p.Max, 0)]
	}
	for _, c := range chosen {
		f, err := claimLimited(q, c.id, p.WorkerID, ts, now)
		if err != nil {
			return err
		}
		if f == nil {
			continue
		}
		parts[c.part].claimed++
		res.Jobs = append(res.Jobs, *f)
	}
	// Stamp the partitions that got jobs, keeping the latest RateLimit
	// starts under a rate limit.
	var served []string
	for key, pt := range parts {
		if pt.claimed == 0 {
			continue
		}
		served = append(served, key)
		starts := []int64{}
		if l.RateLimit > 0 {
			starts = append(append(starts, pt.starts...), slices.Repeat([]int64{ts}, min(pt.claimed, l.RateLimit))...)
			slices.Sort(starts)
			if len(starts) > l.RateLimit {
				starts = starts[len(starts)-l.RateLimit:]
			}
		}
		doc, err := json.Marshal(starts)
		if err != nil {
			return err
		}
		if _, err := q.exec("LimitPartitionStamp", p.Queue, key, string(doc), ts); err != nil {
			return err
		}
	}
	slices.Sort(served)
	idle := ts - max(period, time.Minute.Microseconds())
	if _, err := q.exec("LimitPrune", p.Queue, idle, stringList(append([]string{}, served...))); err != nil {
		return err
	}
	res.Held = len(res.Jobs) < p.Max && (overflow || anyFull)
	if l.RateLimit > 0 {
		best := int64(-1)
		for _, pt := range parts {
			if pt.recent+pt.claimed < l.RateLimit {
				continue
			}
			o := ts
			if pt.recent > 0 {
				o = pt.oldest
			}
			if best < 0 || o < best {
				best = o
			}
		}
		if best >= 0 {
			if retry := best + period - ts; retry > 0 {
				res.RetryIn = time.Duration(retry) * time.Microsecond
			}
		}
	}
	return nil
}
