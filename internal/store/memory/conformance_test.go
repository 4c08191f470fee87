package memory

import (
	"testing"

	"northd/internal/store"
	"northd/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) store.Store {
		return New(Options{Max: o.Max, MaxPerUser: o.MaxPerUser, TokenTTL: o.TokenTTL})
	})
}
