package errjoin_test

import (
	"errors"
	"io"
	"net"
	"testing"

	"github.com/ztnlabs/ztn/internal/errjoin"
)

func TestList(t *testing.T) {
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("refused")}
	err := error(errjoin.List{io.EOF, opErr})
	if got, want := err.Error(), "EOF; dial tcp: refused"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, io.EOF) {
		t.Error("errors.Is does not find io.EOF")
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe != opErr {
		t.Error("errors.As does not find the *net.OpError")
	}
}
