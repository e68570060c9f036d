package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
)

// maxBody bounds a request body: 64 KiB, far more than any of the API's
// bodies needs (a message is 400 characters); more is a 413.
const maxBody = 64 << 10

// decodeBody reads one JSON object into v, a pointer to a struct whose
// fields have json tags. It refuses, with a 4xx saying why:
//   - a Content-Type other than application/json (415; none is taken as
//     JSON, as a plain client sends none), so that a form or text/plain
//     post from another site is never read as JSON;
//   - a body over [maxBody] (413);
//   - anything but one JSON object whose keys are v's tags, each spelled
//     as the tag and given once (400): encoding/json would take a key in
//     any case and the last of duplicates, so {"text":"a","TEXT":"b"}
//     could mean one thing here and another to a proxy that checked it.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return errorf(http.StatusUnsupportedMediaType, "Content-Type %q is malformed; send application/json", ct)
		}
		if mt != "application/json" {
			return errorf(http.StatusUnsupportedMediaType, "Content-Type %s is not accepted; send application/json", mt)
		}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", maxBody)
		}
		return errorf(http.StatusBadRequest, "reading the body: %v", err)
	}
	if err := checkKeys(data, v); err != nil {
		return errorf(http.StatusBadRequest, "invalid JSON body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errorf(http.StatusBadRequest, "invalid JSON body: more than one value")
	}
	return nil
}

// checkKeys checks that data is a JSON object whose keys are json tags of
// v's struct, exactly, each at most once. The values are left to
// json.Decode.
func checkKeys(data []byte, v any) error {
	tags := map[string]bool{}
	t := reflect.TypeOf(v).Elem()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" {
			tags[name] = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("want one JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if !tags[key] {
			return fmt.Errorf("json: unknown field %q", key)
		}
		if seen[key] {
			return fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}
