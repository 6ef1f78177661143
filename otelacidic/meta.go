package otelacidic

import (
	"encoding/json"
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
	members(c, func(k, _ []byte) bool {
		keys = append(keys, jsonString(k))
		return true
	})
	return keys
}

// member returns the raw value of the top-level member key of the JSON
// object obj, nil when obj is not an object or has no such member.
func member(obj []byte, key string) []byte {
	var found []byte
	members(obj, func(k, v []byte) bool {
		if keyIs(k, key) {
			found = v
			return false
		}
		return true
	})
	return found
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

// members calls fn with the raw name (quoted) and raw value of each
// top-level member of the JSON object obj, in order, until fn returns
// false. It stops quietly at anything that is not a well-formed object.
func members(obj []byte, fn func(k, v []byte) bool) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	i = skipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return
	}
	for i < len(obj) {
		if obj[i] != '"' {
			return
		}
		kEnd := skipString(obj, i)
		if kEnd < 0 {
			return
		}
		k := obj[i:kEnd]
		i = skipSpace(obj, kEnd)
		if i >= len(obj) || obj[i] != ':' {
			return
		}
		i = skipSpace(obj, i+1)
		vEnd := skipValue(obj, i)
		if vEnd < 0 {
			return
		}
		if !fn(k, obj[i:vEnd]) {
			return
		}
		i = skipSpace(obj, vEnd)
		if i >= len(obj) || obj[i] != ',' {
			return // '}' or malformed: done either way
		}
		i = skipSpace(obj, i+1)
	}
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
