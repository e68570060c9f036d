package main

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine the tests start is gone when they end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
