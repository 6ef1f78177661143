package storage_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// TestText: error text is stored as valid UTF-8 without NUL, at most
// MaxTextBytes long, cut on a character boundary with a note; clean text is
// kept as it is.
func TestText(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", storage.MaxTextBytes) // two bytes each: the cut falls on a boundary or inside one
	cases := []struct {
		name, in, want string
	}{
		{"clean", "boom: connection refused", "boom: connection refused"},
		{"empty", "", ""},
		{"NUL removed", "a\x00b\x00", "ab"},
		{"invalid UTF-8 replaced", "a\xffb\xc3", "a\uFFFDb\uFFFD"},
		{"both", "\x00\xff\x00", "\uFFFD"},
		{"a literal U+FFFD is kept", "a\uFFFDb", "a\uFFFDb"},
		{"exactly the limit", strings.Repeat("x", storage.MaxTextBytes), strings.Repeat("x", storage.MaxTextBytes)},
	}
	for _, c := range cases {
		if got := storage.Text(c.in); got != c.want {
			t.Errorf("%s: Text(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
	for _, in := range []string{
		strings.Repeat("x", storage.MaxTextBytes+1),
		strings.Repeat("boom\x00\xff", 1<<20/6), // about 1 MB, dirty
		long,
		"x" + long,
		strings.Repeat("😀", 1<<20/4),
	} {
		got := storage.Text(in)
		switch {
		case len(got) > storage.MaxTextBytes:
			t.Errorf("Text of %d bytes is %d bytes, more than %d", len(in), len(got), storage.MaxTextBytes)
		case len(got) < storage.MaxTextBytes-8:
			t.Errorf("Text of %d bytes kept only %d bytes", len(in), len(got))
		case !utf8.ValidString(got) || strings.ContainsRune(got, 0):
			t.Errorf("Text of %d bytes is not clean: ends %q", len(in), got[len(got)-40:])
		case !strings.HasSuffix(got, " bytes in all]") || !strings.Contains(got, "[cut: "):
			t.Errorf("Text of %d bytes does not say it was cut: ends %q", len(in), got[len(got)-40:])
		}
	}
}

func TestCheckName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"default", "payments.eu-1", "Zahlungen ü 😀", "o'k\"; DROP TABLE x; --", strings.Repeat("n", storage.MaxNameBytes), "a\uFFFDb"} {
		if err := storage.CheckName("queue", ok); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", ok, err)
		}
	}
	for _, c := range []struct{ in, mention string }{
		{"", "empty"},
		{strings.Repeat("n", storage.MaxNameBytes+1), "256 bytes; a name is at most 255"},
		{strings.Repeat("n", 8000), "8000 bytes"},
		{"a\x00b", "U+0000"},
		{"a\nb", "U+000A"},
		{"a\tb", "U+0009"},
		{"a\u0085b", "U+0085"},
		{"a\xffb", "not valid UTF-8"},
	} {
		err := storage.CheckName("queue", c.in)
		if !errors.Is(err, acidic.ErrInvalid) || !strings.Contains(err.Error(), c.mention) || !strings.Contains(err.Error(), "queue") {
			t.Errorf("CheckName(%q) = %v, want acidic.ErrInvalid naming the queue and saying %q", c.in, err, c.mention)
		}
		if len(err.Error()) > 200 {
			t.Errorf("CheckName(%d bytes): a %d-byte message", len(c.in), len(err.Error()))
		}
	}
}

func TestCheckKey(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"order-7", "a\nb\tc", strings.Repeat("k", storage.MaxKeyBytes), "😀"} {
		if err := storage.CheckKey("idempotency key", ok); err != nil {
			t.Errorf("CheckKey(%q) = %v, want nil", ok, err)
		}
	}
	for _, c := range []struct{ in, mention string }{
		{"", "empty"},
		{strings.Repeat("k", storage.MaxKeyBytes+1), "1025 bytes; at most 1024"},
		{strings.Repeat("k", 2704), "2704 bytes"},
		{"a\x00b", "NUL at byte 1"},
		{"a\xffb", "not valid UTF-8"},
	} {
		err := storage.CheckKey("idempotency key", c.in)
		if !errors.Is(err, acidic.ErrInvalid) || !strings.Contains(err.Error(), c.mention) || !strings.Contains(err.Error(), "idempotency key") {
			t.Errorf("CheckKey(%.20q) = %v, want acidic.ErrInvalid naming the key and saying %q", c.in, err, c.mention)
		}
	}
}

func TestCheckTime(t *testing.T) {
	t.Parallel()
	for _, ok := range []time.Time{{}, time.Now(), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)} {
		if err := storage.CheckTime("ScheduledAt", ok); err != nil {
			t.Errorf("CheckTime(%v) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []time.Time{time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(-4713, 1, 1, 0, 0, 0, 0, time.UTC)} {
		err := storage.CheckTime("ScheduledAt", bad)
		if !errors.Is(err, acidic.ErrInvalid) || !strings.Contains(err.Error(), "ScheduledAt") || !strings.Contains(err.Error(), "years 1 to 9999") {
			t.Errorf("CheckTime(%v) = %v, want acidic.ErrInvalid naming ScheduledAt and the years", bad, err)
		}
	}
}

// TestCheckJSON covers the rules by example; storage/postgres checks them
// against PostgreSQL itself (TestCheckJSONMatchesJsonb).
func TestCheckJSON(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{`{}`, `{"a":"\\u0000"}`, `"\ud83d\ude00"`, `"\\\\u0000"`, `1e131071`, `1e-16383`, `0e99999999`, `-0.5`, `[1,2.5e3,-7E-2]`} {
		if err := storage.CheckJSON("args", []byte(ok)); err != nil {
			t.Errorf("CheckJSON(%s) = %v, want nil", ok, err)
		}
	}
	for _, c := range []struct{ in, mention string }{
		{``, "not valid JSON"},
		{`{"a":`, "not valid JSON"},
		{"{\"a\":\"\xff\"}", "not valid UTF-8"},
		{`{"a":"\u0000"}`, `\u0000`},
		{`["x\u0000"]`, `\u0000`},
		{`"\ud800"`, `unpaired surrogate \ud800`},
		{`"\udc00\ud800"`, `unpaired surrogate \udc00`},
		{`"\ud800\u0041"`, `unpaired surrogate`},
		{`1e131072`, "numeric"},
		{`1e-16384`, "numeric"},
		{`1.5e-16383`, "numeric"},
		{`0e-99999999`, "numeric"},
		{`1e2000000000`, "numeric"},
	} {
		err := storage.CheckJSON("args", []byte(c.in))
		if !errors.Is(err, acidic.ErrInvalid) || !strings.Contains(err.Error(), c.mention) || !strings.Contains(err.Error(), "args") {
			t.Errorf("CheckJSON(%s) = %v, want acidic.ErrInvalid naming args and saying %q", c.in, err, c.mention)
		}
	}
}

// BenchmarkRunUpdateValidate is the check every step's progress write
// passes, with persisted state of about 1 KB.
func BenchmarkRunUpdateValidate(b *testing.B) {
	attrs := []byte(`{"items":[` + strings.Repeat(`{"id":12345,"name":"widget \u00e9","price":19.99,"ok":true},`, 16) + `{}]}`)
	u := storage.RunUpdateParams{State: acidic.RunRunning, RecoveryPoint: "charge", Attrs: attrs, Result: []byte(`{"charge_id":"ch_123"}`),
		Step: &acidic.Step{Name: "charge", State: acidic.StepSucceeded, Error: ""}}
	b.SetBytes(int64(len(attrs)))
	for b.Loop() {
		if err := u.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJobInsertValidate is the check of every enqueued job.
func BenchmarkJobInsertValidate(b *testing.B) {
	j := storage.JobInsert{Queue: "default", Kind: "send-receipt", Args: []byte(`{"order":"o-123456","cents":1999}`),
		State: acidic.JobAvailable, MaxAttempts: 20}
	for b.Loop() {
		if err := j.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}
