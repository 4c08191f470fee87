package memory

import (
	"testing"

	"northd/internal/push"
	"northd/internal/push/pushtest"
)

func TestConformance(t *testing.T) {
	pushtest.Run(t, func(*testing.T) push.Store { return New() })
}
