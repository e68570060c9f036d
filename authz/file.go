package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// errJWT rejects JWT requirements: ztn cannot check them, and ignoring one
// would allow requests the policy means to deny.
var errJWT = errors.New("JWT requirements are not supported by ztn; the entry is rejected rather than enforced without them")

// LoadFile reads and validates the service-intentions entries in the file at
// path (see ParseConfigEntries).
func LoadFile(path string) ([]ConfigEntry, error) {
	entries, err := readFile(path)
	if err == nil {
		_, err = compileAll(entries)
	}
	if err != nil {
		return nil, fmt.Errorf("authz: %s: %w", path, err)
	}
	return entries, nil
}

func readFile(path string) ([]ConfigEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if pe, ok := errors.AsType[*fs.PathError](err); ok {
			return nil, fmt.Errorf("%s: %w", pe.Op, pe.Err)
		}
		return nil, err
	}
	return parseEntries(data)
}

// ParseConfigEntries parses and validates service-intentions config entries
// in the JSON that `consul config write` takes: one entry object, or an
// array of them. Keys are matched as Consul matches them: without regard to
// case, in CamelCase ("PathPrefix") or snake_case ("path_prefix"). Unknown
// keys are errors, and so are a Kind other than "service-intentions", JWT
// requirements, SamenessGroup sources, and a destination with more than one
// entry. Peer sources are accepted (see SourceIntention). Read-only and legacy keys Consul returns (Precedence,
// CreateIndex, ModifyIndex, Hash, LegacyID, LegacyCreateTime,
// LegacyUpdateTime) are accepted and ignored; a non-empty LegacyMeta is an
// error, as in Consul. Value types are strict (no "true" for true).
//
// The entries are returned as written; Set and Intention normalize them.
func ParseConfigEntries(data []byte) ([]ConfigEntry, error) {
	entries, err := parseEntries(data)
	if err == nil {
		_, err = compileAll(entries)
	}
	if err != nil {
		return nil, fmt.Errorf("authz: %w", err)
	}
	return entries, nil
}

func parseEntries(data []byte) ([]ConfigEntry, error) {
	data = bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))) // UTF-8 BOM
	if !json.Valid(data) {
		return nil, syntaxError(data)
	}
	switch data[0] {
	case '{':
		e, err := parseEntry(data, 0)
		if err != nil {
			return nil, err
		}
		return []ConfigEntry{e}, nil
	case '[':
		var raws []json.RawMessage
		if err := json.Unmarshal(data, &raws); err != nil {
			return nil, err
		}
		entries := make([]ConfigEntry, len(raws))
		for i, raw := range raws {
			var err error
			if entries[i], err = parseEntry(raw, i); err != nil {
				return nil, err
			}
		}
		return entries, nil
	default:
		return nil, fmt.Errorf("want a service-intentions entry (a JSON object) or an array of them, got %s", jsonType(data))
	}
}

func syntaxError(data []byte) error {
	if len(data) == 0 {
		return errors.New("empty input: want a service-intentions entry (a JSON object) or an array of them")
	}
	err := json.Unmarshal(data, new(any))
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		line := 1 + bytes.Count(data[:se.Offset], []byte("\n"))
		col := int(se.Offset) - bytes.LastIndexByte(data[:se.Offset], '\n') - 1
		return fmt.Errorf("invalid JSON at line %d, column %d: %v", line, col, se)
	}
	return fmt.Errorf("invalid JSON: %v", err)
}

var (
	entryKeys = newKeys("Kind", "Name", "Namespace", "Partition", "Sources", "Meta", "JWT",
		"CreateIndex", "ModifyIndex", "Hash")
	sourceKeys = newKeys("Name", "Namespace", "Partition", "Peer", "SamenessGroup", "Action",
		"Permissions", "Precedence", "Type", "Description",
		"LegacyID", "LegacyMeta", "LegacyCreateTime", "LegacyUpdateTime")
	permissionKeys = newKeys("Action", "HTTP", "JWT")
	httpKeys       = newKeys("PathExact", "PathPrefix", "PathRegex", "Header", "Methods")
	headerKeys     = newKeys("Name", "Present", "Exact", "Prefix", "Suffix", "Contains", "Regex",
		"Invert", "IgnoreCase")
)

func parseEntry(raw json.RawMessage, i int) (ConfigEntry, error) {
	var e ConfigEntry
	o, err := decodeObject(raw, entryKeys)
	if err == nil {
		err = errors.Join(o.str("Name", &e.Name), o.str("Namespace", &e.Namespace), o.str("Partition", &e.Partition))
	}
	if err != nil {
		return e, fmt.Errorf("entry %d: %w", i+1, err)
	}
	if err := parseEntryBody(o, &e); err != nil {
		return e, fmt.Errorf("%s: %w", entryLabel(&e, i), err)
	}
	return e, nil
}

func parseEntryBody(o object, e *ConfigEntry) error {
	if err := o.str("Kind", &e.Kind); err != nil {
		return err
	}
	switch e.Kind {
	case KindServiceIntentions:
	case "":
		return fmt.Errorf("Kind is required (%q)", KindServiceIntentions)
	default:
		return fmt.Errorf("Kind is %q: only %q entries hold intentions", e.Kind, KindServiceIntentions)
	}
	if o.has("JWT") {
		return errJWT
	}
	if err := o.strMap("Meta", &e.Meta); err != nil {
		return err
	}
	raws, err := o.list("Sources")
	if err != nil {
		return err
	}
	if raws != nil {
		e.Sources = make([]SourceIntention, len(raws))
	}
	for j, raw := range raws {
		s := &e.Sources[j]
		if err := parseSource(raw, s); err != nil {
			return fmt.Errorf("%s: %w", sourceLabel(s, j), err)
		}
	}
	return nil
}

func parseSource(raw json.RawMessage, s *SourceIntention) error {
	o, err := decodeObject(raw, sourceKeys)
	if err != nil {
		return err
	}
	var action string
	var legacyMeta map[string]string
	if err := errors.Join(
		o.str("Name", &s.Name),
		o.str("Namespace", &s.Namespace),
		o.str("Partition", &s.Partition),
		o.str("Peer", &s.Peer),
		o.str("SamenessGroup", &s.SamenessGroup),
		o.str("Action", &action),
		o.str("Type", &s.Type),
		o.str("Description", &s.Description),
		o.strMap("LegacyMeta", &legacyMeta),
	); err != nil {
		return err
	}
	s.Action = Action(action)
	if len(legacyMeta) > 0 {
		return errors.New("LegacyMeta must be omitted (Consul rejects it on write too)")
	}
	raws, err := o.list("Permissions")
	if err != nil {
		return err
	}
	if raws != nil {
		s.Permissions = make([]Permission, len(raws))
	}
	for k, raw := range raws {
		if err := parsePermission(raw, &s.Permissions[k]); err != nil {
			return fmt.Errorf("permission %d: %w", k+1, err)
		}
	}
	return nil
}

func parsePermission(raw json.RawMessage, p *Permission) error {
	o, err := decodeObject(raw, permissionKeys)
	if err != nil {
		return err
	}
	if o.has("JWT") {
		return errJWT
	}
	var action string
	if err := o.str("Action", &action); err != nil {
		return err
	}
	p.Action = Action(action)
	if !o.has("HTTP") {
		return nil
	}
	h, err := decodeObject(o["HTTP"], httpKeys)
	if err == nil {
		p.HTTP = &HTTPMatch{}
		err = errors.Join(
			h.str("PathExact", &p.HTTP.PathExact),
			h.str("PathPrefix", &p.HTTP.PathPrefix),
			h.str("PathRegex", &p.HTTP.PathRegex),
			h.strList("Methods", &p.HTTP.Methods),
		)
	}
	if err != nil {
		return fmt.Errorf("HTTP: %w", err)
	}
	raws, err := h.list("Header")
	if err != nil {
		return fmt.Errorf("HTTP: %w", err)
	}
	if raws != nil {
		p.HTTP.Header = make([]HeaderMatch, len(raws))
	}
	for k, raw := range raws {
		if err := parseHeader(raw, &p.HTTP.Header[k]); err != nil {
			return fmt.Errorf("HTTP: header %d: %w", k+1, err)
		}
	}
	return nil
}

func parseHeader(raw json.RawMessage, hm *HeaderMatch) error {
	o, err := decodeObject(raw, headerKeys)
	if err != nil {
		return err
	}
	return errors.Join(
		o.str("Name", &hm.Name),
		o.boolean("Present", &hm.Present),
		o.str("Exact", &hm.Exact),
		o.str("Prefix", &hm.Prefix),
		o.str("Suffix", &hm.Suffix),
		o.str("Contains", &hm.Contains),
		o.str("Regex", &hm.Regex),
		o.boolean("Invert", &hm.Invert),
		o.boolean("IgnoreCase", &hm.IgnoreCase),
	)
}

// keys maps every accepted spelling of an object's keys, lower-cased, to the
// key's canonical (CamelCase) name.
type keys map[string]string

func newKeys(names ...string) keys {
	k := make(keys, 2*len(names))
	for _, n := range names {
		k[strings.ToLower(n)] = n
		k[snakeCase(n)] = n
	}
	return k
}

// snakeCase turns "PathPrefix" into "path_prefix" and "LegacyID" into
// "legacy_id", as Consul's aliases are spelled.
func snakeCase(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			if i > 0 && 'a' <= s[i-1] && s[i-1] <= 'z' {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

func (k keys) names() string {
	var names []string
	for _, n := range k {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// object is a decoded JSON object by canonical key; null values are left
// out.
type object map[string]json.RawMessage

// decodeObject decodes a JSON object whose keys must be in k, each at most
// once in any spelling.
func decodeObject(raw json.RawMessage, k keys) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("want a JSON object, got %s", jsonType(raw))
	}
	o := make(object)
	spelled := make(map[string]string)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		name, ok := k[strings.ToLower(key)]
		if !ok {
			return nil, fmt.Errorf("unknown key %q (known keys: %s)", key, k.names())
		}
		if prev, dup := spelled[name]; dup {
			return nil, fmt.Errorf("key %s is given twice (as %q and %q)", name, prev, key)
		}
		spelled[name] = key
		if !bytes.Equal(v, []byte("null")) {
			o[name] = v
		}
	}
	return o, nil
}

func (o object) has(key string) bool { _, ok := o[key]; return ok }

func (o object) decode(key, want string, v any) error {
	raw, ok := o[key]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: want %s, got %s", key, want, jsonType(raw))
	}
	return nil
}

func (o object) str(key string, v *string) error { return o.decode(key, "a string", v) }

func (o object) boolean(key string, v *bool) error { return o.decode(key, "true or false", v) }

// strList, strMap and list leave empty values nil, so that parsed entries
// have one form whatever the input spells ([] or null or nothing).
func (o object) strList(key string, v *[]string) error {
	err := o.decode(key, "an array of strings", v)
	if len(*v) == 0 {
		*v = nil
	}
	return err
}

func (o object) strMap(key string, v *map[string]string) error {
	err := o.decode(key, "an object of strings", v)
	if len(*v) == 0 {
		*v = nil
	}
	return err
}

// list returns the elements of an array, nil if the key is absent.
func (o object) list(key string) ([]json.RawMessage, error) {
	var raws []json.RawMessage
	if err := o.decode(key, "an array", &raws); err != nil || len(raws) == 0 {
		return nil, err
	}
	return raws, nil
}

// jsonType names the type of a valid JSON value.
func jsonType(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}
