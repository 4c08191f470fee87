package push_test

import (
	"testing"

	"northd/internal/push"
	"northd/internal/push/pushtest"
)

func TestMemoryStoreConformance(t *testing.T) {
	pushtest.Run(t, func(*testing.T) push.Store { return push.NewMemoryStore() })
}
