// Package zerotest checks that values not made by their constructor (zero
// values and nil pointers) fail cleanly: every exported method either
// returns or reports an error, and none panics. It is test support.
//
//	func TestZeroValues(t *testing.T) {
//		zerotest.Methods(t, &certs.Files{}, (*certs.Files)(nil))
//	}
package zerotest

import (
	"context"
	"fmt"
	"reflect"
	"testing"
)

// Methods calls every exported method of each value with zero arguments (a
// live context.Context for context parameters, nothing for variadic ones)
// and fails the test for each call that panics. It returns, per value and
// method name, the error results that were not nil, so a caller can check
// that they say what is wrong.
func Methods(t testing.TB, values ...any) map[string]error {
	t.Helper()
	errs := map[string]error{}
	ctxType := reflect.TypeFor[context.Context]()
	errType := reflect.TypeFor[error]()
	for _, v := range values {
		rv := reflect.ValueOf(v)
		for i := range rv.NumMethod() {
			m := rv.Method(i)
			name := fmt.Sprintf("%T.%s", v, rv.Type().Method(i).Name)
			mt := m.Type()
			n := mt.NumIn()
			if mt.IsVariadic() {
				n--
			}
			args := make([]reflect.Value, n)
			for j := range n {
				if mt.In(j) == ctxType {
					args[j] = reflect.ValueOf(context.Background())
				} else {
					args[j] = reflect.Zero(mt.In(j))
				}
			}
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Errorf("%s on a value not made by its constructor panics: %v", name, p)
					}
				}()
				for _, out := range m.Call(args) {
					if out.Type() == errType && !out.IsNil() {
						errs[name] = out.Interface().(error)
					}
				}
			}()
		}
	}
	return errs
}
