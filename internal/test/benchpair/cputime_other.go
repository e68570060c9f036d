//go:build !unix

package benchpair

import "time"

// processCPU is not measured here: the CPU ratios are not reported.
func processCPU() time.Duration { return 0 }
