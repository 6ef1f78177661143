package queue

import "strconv"

// Priority is a job priority as an option gives it: a value from 0 (the
// highest) to LowestPriority, or unset. The zero value is unset, which is
// not the same as 0: an enqueue that leaves Priority unset takes its kind's
// priority (KindOptions.Priority), and one that gives PriorityOf(0) runs at
// 0 whatever its kind says. A priority left unset everywhere is 0.
//
// Make one with PriorityOf; a plain number does not compile in its place,
// so 0 can never be mistaken for "unset".
//
//	queue.EnqueueOptions{Priority: queue.PriorityOf(0)}
type Priority struct {
	n   int
	set bool
}

// PriorityOf returns the priority n, from 0 (the highest) to LowestPriority.
// A value outside that range is refused with ErrInvalid where it is used
// (at enqueue, or when a kind or workflow is registered).
func PriorityOf(n int) Priority { return Priority{n: n, set: true} }

// Value returns the priority and true, or 0 and false when p is unset.
func (p Priority) Value() (int, bool) { return p.n, p.set }

// String returns the number, or "unset".
func (p Priority) String() string {
	if !p.set {
		return "unset"
	}
	return strconv.Itoa(p.n)
}

// or returns p when it is set, and d otherwise.
func (p Priority) or(d Priority) Priority {
	if p.set {
		return p
	}
	return d
}
