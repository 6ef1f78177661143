package postgres

import (
	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/base/statebits"
)

// StateBit exposes the stored state bits to the external tests.
func StateBit(s acidic.JobState) int16 { return int16(statebits.Bit(s)) }
