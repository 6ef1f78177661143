package postgres_test

import (
	"testing"

	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/storagetest"
)

// TestConformance runs the driver conformance suite on fresh schemas.
func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) storage.Driver { return testdb.New(t, testdb.Options{}) })
}
