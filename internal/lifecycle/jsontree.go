package lifecycle

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON reader that keeps the position of every value. encoding/json
// reports syntax errors as byte offsets whose meaning differs between its
// implementations (and GOEXPERIMENT=jsonv2 changes them), and it cannot say
// where an unknown field or a wrongly typed value sits. Users editing a policy
// file need "line 7, column 12", so the policy parser reads JSON itself.

type jsonKind int

const (
	jsonNull jsonKind = iota
	jsonBool
	jsonNumber
	jsonString
	jsonArray
	jsonObject
)

func (k jsonKind) String() string {
	switch k {
	case jsonNull:
		return "null"
	case jsonBool:
		return "a boolean"
	case jsonNumber:
		return "a number"
	case jsonString:
		return "a string"
	case jsonArray:
		return "an array"
	default:
		return "an object"
	}
}

type jsonPos struct{ Line, Column int }

type jsonMember struct {
	Key    string
	KeyPos jsonPos
	Value  *jsonValue
}

type jsonValue struct {
	Kind    jsonKind
	Pos     jsonPos
	Bool    bool
	Str     string // string value, or the literal text of a number
	Items   []*jsonValue
	Members []jsonMember
}

// maxJSONDepth bounds recursion so hostile input cannot exhaust the stack;
// a lifecycle policy nests four levels deep.
const maxJSONDepth = 64

type jsonReader struct {
	src   []byte
	off   int
	line  int
	col   int // in characters, 1-based
	depth int
}

// SyntaxError is a malformed JSON document, located by line and column
// (both 1-based; columns count characters, as editors do).
type SyntaxError struct {
	Line, Column int
	Msg          string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

func parseJSON(src []byte) (*jsonValue, error) {
	r := &jsonReader{src: src, line: 1, col: 1}
	r.skipSpace()
	if r.off >= len(r.src) {
		return nil, r.errorf("empty document")
	}
	v, err := r.value()
	if err != nil {
		return nil, err
	}
	r.skipSpace()
	if r.off < len(r.src) {
		return nil, r.errorf("unexpected %s after the end of the document", r.describeNext())
	}
	return v, nil
}

func (r *jsonReader) pos() jsonPos { return jsonPos{r.line, r.col} }

func (r *jsonReader) errorf(format string, args ...any) error {
	return &SyntaxError{Line: r.line, Column: r.col, Msg: fmt.Sprintf(format, args...)}
}

func (r *jsonReader) describeNext() string {
	if r.off >= len(r.src) {
		return "end of input"
	}
	c, _ := utf8.DecodeRune(r.src[r.off:])
	if c == utf8.RuneError {
		return "invalid UTF-8"
	}
	return strconv.QuoteRune(c)
}

// advance moves past one character, keeping line and column current.
func (r *jsonReader) advance() {
	if r.src[r.off] == '\n' {
		r.off++
		r.line++
		r.col = 1
		return
	}
	_, size := utf8.DecodeRune(r.src[r.off:])
	r.off += size
	r.col++
}

func (r *jsonReader) skipSpace() {
	for r.off < len(r.src) {
		switch r.src[r.off] {
		case ' ', '\t', '\n', '\r':
			r.advance()
		default:
			return
		}
	}
}

func (r *jsonReader) value() (*jsonValue, error) {
	if r.off >= len(r.src) {
		return nil, r.errorf("unexpected end of input, expected a value")
	}
	start := r.pos()
	switch c := r.src[r.off]; {
	case c == '{':
		return r.object()
	case c == '[':
		return r.array()
	case c == '"':
		s, err := r.str()
		if err != nil {
			return nil, err
		}
		return &jsonValue{Kind: jsonString, Pos: start, Str: s}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return r.number()
	case c == 't':
		return r.literal("true", &jsonValue{Kind: jsonBool, Pos: start, Bool: true})
	case c == 'f':
		return r.literal("false", &jsonValue{Kind: jsonBool, Pos: start})
	case c == 'n':
		return r.literal("null", &jsonValue{Kind: jsonNull, Pos: start})
	default:
		return nil, r.errorf("unexpected %s, expected a value", r.describeNext())
	}
}

func (r *jsonReader) literal(word string, v *jsonValue) (*jsonValue, error) {
	for i := 0; i < len(word); i++ {
		if r.off >= len(r.src) || r.src[r.off] != word[i] {
			return nil, r.errorf("unexpected %s in literal %s", r.describeNext(), word)
		}
		r.advance()
	}
	return v, nil
}

func (r *jsonReader) enter() error {
	r.depth++
	if r.depth > maxJSONDepth {
		return r.errorf("nesting deeper than %d levels", maxJSONDepth)
	}
	return nil
}

func (r *jsonReader) object() (*jsonValue, error) {
	v := &jsonValue{Kind: jsonObject, Pos: r.pos()}
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer func() { r.depth-- }()
	r.advance() // {
	r.skipSpace()
	if r.off < len(r.src) && r.src[r.off] == '}' {
		r.advance()
		return v, nil
	}
	seen := map[string]bool{}
	for {
		r.skipSpace()
		if r.off >= len(r.src) || r.src[r.off] != '"' {
			return nil, r.errorf("unexpected %s, expected a field name in double quotes", r.describeNext())
		}
		keyPos := r.pos()
		key, err := r.str()
		if err != nil {
			return nil, err
		}
		if seen[key] {
			return nil, &SyntaxError{Line: keyPos.Line, Column: keyPos.Column, Msg: fmt.Sprintf("duplicate field %q", key)}
		}
		seen[key] = true
		r.skipSpace()
		if r.off >= len(r.src) || r.src[r.off] != ':' {
			return nil, r.errorf("unexpected %s, expected ':' after field name %q", r.describeNext(), key)
		}
		r.advance()
		r.skipSpace()
		val, err := r.value()
		if err != nil {
			return nil, err
		}
		v.Members = append(v.Members, jsonMember{Key: key, KeyPos: keyPos, Value: val})
		r.skipSpace()
		if r.off >= len(r.src) {
			return nil, r.errorf("unexpected end of input, expected ',' or '}'")
		}
		switch r.src[r.off] {
		case ',':
			r.advance()
		case '}':
			r.advance()
			return v, nil
		default:
			return nil, r.errorf("unexpected %s, expected ',' or '}'", r.describeNext())
		}
	}
}

func (r *jsonReader) array() (*jsonValue, error) {
	v := &jsonValue{Kind: jsonArray, Pos: r.pos()}
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer func() { r.depth-- }()
	r.advance() // [
	r.skipSpace()
	if r.off < len(r.src) && r.src[r.off] == ']' {
		r.advance()
		return v, nil
	}
	for {
		r.skipSpace()
		item, err := r.value()
		if err != nil {
			return nil, err
		}
		v.Items = append(v.Items, item)
		r.skipSpace()
		if r.off >= len(r.src) {
			return nil, r.errorf("unexpected end of input, expected ',' or ']'")
		}
		switch r.src[r.off] {
		case ',':
			r.advance()
		case ']':
			r.advance()
			return v, nil
		default:
			return nil, r.errorf("unexpected %s, expected ',' or ']'", r.describeNext())
		}
	}
}

func (r *jsonReader) number() (*jsonValue, error) {
	v := &jsonValue{Kind: jsonNumber, Pos: r.pos()}
	start := r.off
	digits := func() int {
		n := 0
		for r.off < len(r.src) && r.src[r.off] >= '0' && r.src[r.off] <= '9' {
			r.advance()
			n++
		}
		return n
	}
	if r.src[r.off] == '-' {
		r.advance()
	}
	if r.off < len(r.src) && r.src[r.off] == '0' {
		r.advance()
	} else if digits() == 0 {
		return nil, r.errorf("unexpected %s in number, expected a digit", r.describeNext())
	}
	if r.off < len(r.src) && r.src[r.off] == '.' {
		r.advance()
		if digits() == 0 {
			return nil, r.errorf("unexpected %s in number, expected a digit after '.'", r.describeNext())
		}
	}
	if r.off < len(r.src) && (r.src[r.off] == 'e' || r.src[r.off] == 'E') {
		r.advance()
		if r.off < len(r.src) && (r.src[r.off] == '+' || r.src[r.off] == '-') {
			r.advance()
		}
		if digits() == 0 {
			return nil, r.errorf("unexpected %s in number, expected a digit in the exponent", r.describeNext())
		}
	}
	v.Str = string(r.src[start:r.off])
	return v, nil
}

func (r *jsonReader) str() (string, error) {
	r.advance() // opening quote
	var b strings.Builder
	for {
		if r.off >= len(r.src) {
			return "", r.errorf("unexpected end of input inside a string")
		}
		c := r.src[r.off]
		switch {
		case c == '"':
			r.advance()
			return b.String(), nil
		case c == '\\':
			if err := r.escape(&b); err != nil {
				return "", err
			}
		case c < 0x20:
			return "", r.errorf("control character %U must be escaped inside a string", rune(c))
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			r.advance()
		default:
			ch, size := utf8.DecodeRune(r.src[r.off:])
			if ch == utf8.RuneError && size == 1 {
				return "", r.errorf("invalid UTF-8 inside a string")
			}
			b.WriteRune(ch)
			r.advance()
		}
	}
}

func (r *jsonReader) escape(b *strings.Builder) error {
	r.advance() // backslash
	if r.off >= len(r.src) {
		return r.errorf("unexpected end of input inside a string escape")
	}
	c := r.src[r.off]
	simple := map[byte]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}
	if out, ok := simple[c]; ok {
		b.WriteByte(out)
		r.advance()
		return nil
	}
	if c != 'u' {
		return r.errorf("invalid escape sequence \\%s inside a string", r.describeNext())
	}
	r.advance()
	first, err := r.hex4()
	if err != nil {
		return err
	}
	if !utf16.IsSurrogate(first) {
		b.WriteRune(first)
		return nil
	}
	// A high surrogate must be followed by an escaped low surrogate; an
	// unpaired one becomes U+FFFD, as encoding/json does.
	if first < 0xDC00 && r.off+1 < len(r.src) && r.src[r.off] == '\\' && r.src[r.off+1] == 'u' {
		save := *r
		r.advance()
		r.advance()
		second, err := r.hex4()
		if err != nil {
			return err
		}
		if pair := utf16.DecodeRune(first, second); pair != utf8.RuneError {
			b.WriteRune(pair)
			return nil
		}
		*r = save
	}
	b.WriteRune(utf8.RuneError)
	return nil
}

func (r *jsonReader) hex4() (rune, error) {
	var n rune
	for i := 0; i < 4; i++ {
		if r.off >= len(r.src) {
			return 0, r.errorf("unexpected end of input in \\u escape")
		}
		c := r.src[r.off]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, r.errorf("unexpected %s in \\u escape, expected a hex digit", r.describeNext())
		}
		n = n<<4 | rune(d)
		r.advance()
	}
	return n, nil
}
