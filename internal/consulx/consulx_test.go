package consulx

import "testing"

func TestNextIndex(t *testing.T) {
	for _, c := range []struct{ prev, got, want uint64 }{
		{0, 0, 1},   // never block on 0
		{0, 42, 42}, // first answer
		{42, 42, 42},
		{42, 50, 50},
		{50, 7, 0}, // backwards: start over
		{50, 0, 0},
	} {
		if got := NextIndex(c.prev, c.got); got != c.want {
			t.Errorf("NextIndex(%d, %d) = %d, want %d", c.prev, c.got, got, c.want)
		}
	}
}
