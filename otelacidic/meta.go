package otelacidic

import (
	"encoding/json"
	"unicode/utf8"
)

// Reading the trace context out of a job's Meta happens on every attempt,
// so it does not decode Meta: it scans the JSON object for its top-level
// MetaKey member and hands the propagator a carrier that reads the members
// of that member's object where they lie. Meta is valid JSON (the queue
// checks it at enqueue, PostgreSQL stores it as jsonb, which adds spaces);
// anything the scanner does not understand reads as "no trace context".

// metaCarrier is a propagation.TextMapCarrier over the raw bytes of a JSON
// object of strings: the value of Meta's MetaKey member. It only reads.
type metaCarrier []byte

// Get returns the string value of member key, "" when there is none or it
// is not a string.
func (c metaCarrier) Get(key string) string {
	v := member(c, key)
	if len(v) < 2 || v[0] != '"' {
		return ""
	}
	return jsonString(v)
}

// Set does nothing: the carrier is read-only.
func (c metaCarrier) Set(string, string) {}

// Keys returns the object's member names.
func (c metaCarrier) Keys() []string {
	var keys []string
	members(c, func(k []byte, _, _ int) bool {
		keys = append(keys, jsonString(k))
		return true
	})
	return keys
}

// member returns the raw value of the top-level member key of the JSON
// object obj, nil when obj is not an object or has no such member.
func member(obj []byte, key string) []byte {
	var found []byte
	members(obj, func(k []byte, vStart, vEnd int) bool {
		if keyIs(k, key) {
			found = obj[vStart:vEnd]
			return false
		}
		return true
	})
	return found
}

// withMember returns a copy of meta, a JSON object (empty or null meaning
// none), whose top-level member key has the raw JSON value value: the member's value replaced where it lies when meta
// has one, the member added last otherwise. meta is not decoded, so the
// user's members keep their order, spacing and duplicates. ok is false,
// and meta is to be left alone, when meta is not a well-formed object.
func withMember(meta []byte, key string, value []byte) (out []byte, ok bool) {
	const room = 8 // the braces, quotes, colon and comma
	if t := trimSpace(meta); len(t) == 0 || string(t) == "null" {
		out = make([]byte, 0, len(key)+len(value)+room)
		out = appendJSONString(append(out, '{'), key)
		return append(append(append(out, ':'), value...), '}'), true
	}
	vStart, vEnd := -1, -1
	end := members(meta, func(k []byte, s, e int) bool {
		if keyIs(k, key) {
			vStart, vEnd = s, e // the last one wins, as for a decoder
		}
		return true
	})
	if end < 0 || skipSpace(meta, end+1) != len(meta) {
		return nil, false
	}
	out = make([]byte, 0, len(meta)+len(key)+len(value)+room)
	if vStart >= 0 {
		out = append(append(out, meta[:vStart]...), value...)
		return append(out, meta[vEnd:]...), true
	}
	out = append(out, meta[:end]...)
	if last := trimSpace(meta[:end]); last[len(last)-1] != '{' {
		out = append(out, ',')
	}
	out = appendJSONString(out, key)
	out = append(append(out, ':'), value...)
	return append(out, meta[end:]...), true
}

func trimSpace(b []byte) []byte {
	i, j := skipSpace(b, 0), len(b)
	for j > i && (b[j-1] == ' ' || b[j-1] == '\t' || b[j-1] == '\n' || b[j-1] == '\r') {
		j--
	}
	return b[i:j]
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		q, _ := json.Marshal(s) // replaces what is not UTF-8, as before
		return append(b, q...)
	}
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// keyIs reports whether the raw JSON string k (quotes included) is key.
func keyIs(k []byte, key string) bool {
	if len(k) == len(key)+2 && string(k[1:len(k)-1]) == key {
		return true
	}
	for _, c := range k {
		if c == '\\' { // escaped: compare what it means
			return jsonString(k) == key
		}
	}
	return false
}

// jsonString returns the text of the raw JSON string s (quotes included).
func jsonString(s []byte) string {
	if len(s) < 2 {
		return ""
	}
	plain := true
	for _, c := range s[1 : len(s)-1] {
		if c == '\\' || c < 0x20 {
			plain = false
			break
		}
	}
	if plain {
		return string(s[1 : len(s)-1])
	}
	var out string
	if json.Unmarshal(s, &out) != nil {
		return ""
	}
	return out
}

// members calls fn with the raw name (quoted) and the offsets in obj of
// the raw value of each top-level member of the JSON object obj, in order,
// until fn returns false. It stops quietly at anything that is not a
// well-formed object. It returns the index of the object's closing brace
// when it walked the whole object, -1 otherwise.
func members(obj []byte, fn func(k []byte, vStart, vEnd int) bool) int {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return -1
	}
	i = skipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return i
	}
	for i < len(obj) {
		if obj[i] != '"' {
			return -1
		}
		kEnd := skipString(obj, i)
		if kEnd < 0 {
			return -1
		}
		k := obj[i:kEnd]
		i = skipSpace(obj, kEnd)
		if i >= len(obj) || obj[i] != ':' {
			return -1
		}
		i = skipSpace(obj, i+1)
		vEnd := skipValue(obj, i)
		if vEnd < 0 {
			return -1
		}
		if !fn(k, i, vEnd) {
			return -1
		}
		i = skipSpace(obj, vEnd)
		if i < len(obj) && obj[i] == '}' {
			return i
		}
		if i >= len(obj) || obj[i] != ',' {
			return -1
		}
		i = skipSpace(obj, i+1)
	}
	return -1
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the JSON string starting at
// b[i] ('"'), or -1 when it does not end.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index just past the JSON value starting at b[i],
// or -1 when it does not end.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end := skipString(b, i)
				if end < 0 {
					return -1
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	default: // a number, true, false or null
		start := i
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		if i == start {
			return -1
		}
		return i
	}
}

// pairCarrier is the propagation.TextMapCarrier the enqueue hook injects
// into: the few pairs a propagator writes, in the order written, then
// appended to Meta as a JSON object with no map in between.
type pairCarrier struct{ pairs [][2]string }

// Get returns the value of key, "" when there is none.
func (c *pairCarrier) Get(key string) string {
	for _, p := range c.pairs {
		if p[0] == key {
			return p[1]
		}
	}
	return ""
}

// Set sets key to value.
func (c *pairCarrier) Set(key, value string) {
	for i := range c.pairs {
		if c.pairs[i][0] == key {
			c.pairs[i][1] = value
			return
		}
	}
	c.pairs = append(c.pairs, [2]string{key, value})
}

// Keys returns the keys, in the order set.
func (c *pairCarrier) Keys() []string {
	keys := make([]string, len(c.pairs))
	for i, p := range c.pairs {
		keys[i] = p[0]
	}
	return keys
}

// appendJSON appends the pairs as a JSON object of strings.
func (c *pairCarrier) appendJSON(b []byte) []byte {
	b = append(b, '{')
	for i, p := range c.pairs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, p[0])
		b = appendJSONString(append(b, ':'), p[1])
	}
	return append(b, '}')
}
