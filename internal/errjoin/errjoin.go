// Package errjoin joins errors on one line, for the messages of ztnet and
// httpztn that list why each instance failed.
package errjoin

import "strings"

// List is errors.Join with "; " between the errors instead of newlines, so a
// log record or an error string stays on one line. errors.Is and errors.As
// see every error in it.
type List []error

// Error returns the errors' messages separated by "; ".
func (l List) Error() string {
	var b strings.Builder
	for i, err := range l {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap returns the errors, for errors.Is and errors.As.
func (l List) Unwrap() []error { return l }
