package inputs

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/registry-actions/registry/internal/failure"
)

// Values holds raw input strings as the user gave them (empty means unset)
// and turns them into typed values, applying the table's defaults.
//
// Getters never fail silently: a malformed value is recorded and reported by
// Err, quoting the value, so a stage can read all it needs and fail once.
type Values struct {
	raw  map[string]string
	errs []error
	// bugs are names asked for that the table does not hold: a defect of
	// this program, reported as a failure rather than the caller's input.
	bugs []error
}

// NewValues wraps raw values keyed by input name.
func NewValues(raw map[string]string) *Values {
	if raw == nil {
		raw = map[string]string{}
	}
	return &Values{raw: raw}
}

// Clone is a copy with the same raw values and no errors, for a stage that
// reads its inputs on another goroutine.
func (v *Values) Clone() *Values {
	return &Values{raw: maps.Clone(v.raw)}
}

// Set replaces the raw value of an input; tests and chains use it to feed one
// stage's result into the next.
func (v *Values) Set(name, value string) { v.raw[name] = value }

// IsSet reports whether the user gave a non-empty value.
func (v *Values) IsSet(name string) bool { return strings.TrimSpace(v.raw[name]) != "" }

// Raw returns the value with the default applied, untrimmed of inner content.
func (v *Values) Raw(name string) string {
	in, ok := Lookup(name)
	if !ok {
		v.bugs = append(v.bugs, fmt.Errorf("input %q is not in the inputs table: this is a bug in registry, please report it", name))
		return ""
	}
	if s := strings.TrimSpace(v.raw[name]); s != "" {
		return s
	}
	return in.Default
}

// String returns the input's value (or its default).
func (v *Values) String(name string) string { return v.Raw(name) }

// List returns a newline- or comma-separated input as items, trimmed, blanks
// dropped. For Lines inputs only newlines separate items.
func (v *Values) List(name string) []string {
	in, _ := Lookup(name)
	if in.Kind == Lines {
		return SplitLines(v.Raw(name))
	}
	return SplitList(v.Raw(name))
}

// Bool parses "true"/"false" (as GitHub's YAML 1.2 core schema spells them).
func (v *Values) Bool(name string) bool {
	s := v.Raw(name)
	b, err := ParseBool(s)
	if err != nil {
		v.errs = append(v.errs, fmt.Errorf("input %q: %w", name, err))
	}
	return b
}

// Int parses a whole number within the input's range; unset returns 0 and
// ok=false, and so does a value that is malformed or out of range (the error
// names the range).
func (v *Values) Int(name string) (n int, ok bool) {
	s := v.Raw(name)
	if s == "" {
		return 0, false
	}
	in, _ := Lookup(name)
	n64, err := strconv.ParseInt(s, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange), err == nil && (n64 < int64(in.Min) || n64 > int64(in.Max)):
		v.errs = append(v.errs, fmt.Errorf("input %q: %s is out of range: use a whole number from %d to %d", name, s, in.Min, in.Max))
		return 0, false
	case err != nil:
		v.errs = append(v.errs, fmt.Errorf("input %q: %q is not a whole number: use one from %d to %d", name, s, in.Min, in.Max))
		return 0, false
	}
	return int(n64), true
}

// Duration parses "30d", "12h", "90m", "1h30m"; unset returns 0 and ok=false.
func (v *Values) Duration(name string) (d time.Duration, ok bool) {
	s := v.Raw(name)
	if s == "" {
		return 0, false
	}
	d, err := ParseDuration(s)
	if err != nil {
		v.errs = append(v.errs, fmt.Errorf("input %q: %w", name, err))
		return 0, false
	}
	return d, true
}

// Fail records a validation error found by a stage while reading its inputs.
func (v *Values) Fail(err error) { v.errs = append(v.errs, err) }

// Err returns every parse error met so far as one InvalidError, or nil; a
// name missing from the table comes first, as the program's own failure.
func (v *Values) Err() error {
	if len(v.bugs) > 0 {
		return errors.Join(v.bugs...)
	}
	return failure.Invalid(errors.Join(v.errs...))
}

// SplitList splits on newlines and commas, trims spaces and drops blanks.
func SplitList(s string) []string {
	return split(s, func(r rune) bool { return r == '\n' || r == ',' || r == '\r' })
}

// SplitLines splits on newlines only, trims spaces and drops blanks.
func SplitLines(s string) []string {
	return split(s, func(r rune) bool { return r == '\n' || r == '\r' })
}

func split(s string, sep func(rune) bool) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, sep) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// ParseBool accepts the spellings YAML and users actually write.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "1", "on":
		return true, nil
	case "false", "no", "0", "off", "":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean: use true or false", s)
}

// maxDuration is the longest duration a time.Duration holds (about 292 years).
const maxDuration = time.Duration(1<<63 - 1)

var durationPart = regexp.MustCompile(`^(\d+)(w|d|h|m|s)`)

// ParseDuration accepts Go durations plus days and weeks: "30d", "2w",
// "1d12h", "90m". Negative values are refused.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return 0, fmt.Errorf("%q is negative: durations count forward, e.g. 7d", orig)
		}
		return d, nil
	}
	var total time.Duration
	for s != "" {
		m := durationPart.FindStringSubmatch(s)
		if m == nil {
			return 0, fmt.Errorf("%q is not a duration: use forms like 30d, 12h, 90m or 1d12h", orig)
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		unit := map[string]time.Duration{"w": 7 * 24 * time.Hour, "d": 24 * time.Hour, "h": time.Hour, "m": time.Minute, "s": time.Second}[m[2]]
		if err != nil || n > int64(maxDuration/unit) || total > maxDuration-time.Duration(n)*unit {
			return 0, fmt.Errorf("%q is too large a duration: the most is about %d days", orig, maxDuration/(24*time.Hour))
		}
		total += time.Duration(n) * unit
		s = s[len(m[0]):]
	}
	return total, nil
}

// FormatDuration renders d in the largest whole units a user would write.
func FormatDuration(d time.Duration) string {
	day := 24 * time.Hour
	switch {
	case d >= day && d%day == 0:
		return fmt.Sprintf("%dd", d/day)
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}
