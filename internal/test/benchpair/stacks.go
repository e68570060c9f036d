package benchpair

import (
	"io"
	"log/slog"
	"strconv"
	"testing"
)

// Stack is a configuration both sides of an adapter benchmark share, so
// that the ratio charges ztn only for what it adds.
type Stack struct {
	Name string
	Otel bool // OpenTelemetry instrumentation on client and server (ztn: the adapters' default; off: no-op providers)
	Log  bool // access records at Info to a JSON handler (else the logger is at Error)
}

// stacks are the adapters' benchmark configurations: what the adapters set
// up by default, no OpenTelemetry on either side, and the default with
// per-request access records.
var stacks = []Stack{
	{"default", true, false},
	{"bare", false, false},
	{"accesslog", true, true},
}

// Adapter runs an adapter's paired benchmark: for each of the stacks and at
// concurrency 1 and 16, the raw and ztn operations pair returns for the
// stack's logger and instrumentation are run by Rates, and reported as
// tls-<unit>/s, ztn-<unit>/s, their ratio ztn/tls and, where CPU time can be
// read, the ratio per CPU second ztn/tls-cpu.
func Adapter(b *testing.B, unit string, pair func(b *testing.B, logger *slog.Logger, otel bool) (raw, zt func() error)) {
	for _, st := range stacks {
		for _, conc := range []int{1, 16} {
			b.Run(st.Name+"/c="+strconv.Itoa(conc), func(b *testing.B) {
				raw, zt := pair(b, st.logger(), st.Otel)
				var rates, cpu []float64
				for b.Loop() {
					rates, cpu = Rates(b, 10, conc, []func() error{raw, zt})
				}
				b.ReportMetric(rates[0], "tls-"+unit+"/s")
				b.ReportMetric(rates[1], "ztn-"+unit+"/s")
				b.ReportMetric(rates[1]/rates[0], "ztn/tls")
				if cpu != nil { // per CPU second: ztn's cost per op relative to plain TLS
					b.ReportMetric(cpu[1]/cpu[0], "ztn/tls-cpu")
				}
			})
		}
	}
}

// AdapterEach runs the raw and ztn operations of each stack one at a time
// as ordinary sub-benchmarks (<stack>/tls, <stack>/ztn): with -benchmem it
// compares allocations per operation.
func AdapterEach(b *testing.B, pair func(b *testing.B, logger *slog.Logger, otel bool) (raw, zt func() error)) {
	for _, st := range stacks {
		b.Run(st.Name, func(b *testing.B) {
			raw, zt := pair(b, st.logger(), st.Otel)
			for _, c := range []struct {
				name string
				op   func() error
			}{{"tls", raw}, {"ztn", zt}} {
				b.Run(c.name, func(b *testing.B) {
					for b.Loop() {
						if err := c.op(); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}

// logger returns the stack's logger: JSON to nowhere, at Info when the stack
// writes access records, else at Error.
func (st Stack) logger() *slog.Logger {
	level := slog.LevelError
	if st.Log {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: level}))
}
