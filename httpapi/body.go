package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// ErrBodyTooLarge reports a request body over the handler's limit (413).
var ErrBodyTooLarge = errors.New("request body too large")

// ErrInvalidBody reports a request body that is not what the handler accepts
// (400). Errors wrapping it read "invalid request body: <reason>", a message
// safe to return to the client as is.
var ErrInvalidBody = errors.New("invalid request body")

// MaxBodyBytes is the largest request body wxsession's routes accept
// (4 KiB: a login or profile body is a few hundred bytes). A larger body is
// answered 413 payload_too_large with TooLargeMessage.
const MaxBodyBytes = 4 << 10

// TooLargeMessage is the message of the 413 payload_too_large answer.
const TooLargeMessage = "request body is larger than 4 KiB"

// MaxDepth is how deeply DecodeObject lets objects and arrays nest. Request
// bodies of wxsession are flat; the limit makes hostile nesting cheap to
// reject.
const MaxDepth = 16

// Body returns the request body, base64-decoding it when API Gateway marked
// it so. A body over max bytes (decoded) is ErrBodyTooLarge; bad base64 is
// ErrInvalidBody.
func Body(req events.APIGatewayV2HTTPRequest, max int) ([]byte, error) {
	if !req.IsBase64Encoded {
		if len(req.Body) > max {
			return nil, ErrBodyTooLarge
		}
		return []byte(req.Body), nil
	}
	if base64.StdEncoding.DecodedLen(len(req.Body)) > max+2 {
		return nil, ErrBodyTooLarge // cheap reject before decoding
	}
	b, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: body is not valid base64", ErrInvalidBody)
	}
	if len(b) > max {
		return nil, ErrBodyTooLarge
	}
	return b, nil
}

// DecodeObject decodes body strictly into v, which must point to a struct
// (or a map): the body must be one JSON object in valid UTF-8, nested at most
// MaxDepth deep, with no trailing data, no duplicate keys and no field that v
// does not declare (names match the json tags exactly, not case-insensitively
// as encoding/json would). Every failure wraps ErrInvalidBody and its text
// is safe to show the client.
func DecodeObject(body []byte, v any) error {
	if err := precheck(body); err != nil {
		return err
	}
	keys, err := topLevelKeys(body)
	if err != nil {
		return err
	}
	if fields := jsonFields(v); fields != nil {
		for _, k := range keys {
			if _, ok := fields[k]; !ok {
				return invalid("unknown field %q", k)
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describe(err)
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidBody}, args...)...)
}

// precheck rejects, in one pass without allocating, bodies that are empty,
// not UTF-8, not starting with '{' or nested too deeply.
func precheck(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return invalid("body is empty, want a JSON object")
	}
	if !utf8.Valid(body) {
		return invalid("body is not valid UTF-8")
	}
	if first := bytes.TrimLeft(body, " \t\r\n"); first[0] != '{' {
		return invalid("body must be a JSON object")
	}
	depth, inString, escaped := 0, false, false
	for _, c := range body {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > MaxDepth {
				return invalid("JSON nested more than %d levels deep", MaxDepth)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// topLevelKeys walks the object's top level, rejecting duplicate keys and
// trailing data, and returns its keys.
func topLevelKeys(body []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // '{', checked by precheck
		return nil, describe(err)
	}
	var (
		keys []string
		seen = map[string]struct{}{}
	)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, describe(err)
		}
		k, ok := t.(string)
		if !ok {
			return nil, invalid("body is not valid JSON")
		}
		if _, dup := seen[k]; dup {
			return nil, invalid("duplicate field %q", k)
		}
		seen[k] = struct{}{}
		keys = append(keys, k)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, describe(err)
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, describe(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("unexpected data after the JSON object")
	}
	return keys, nil
}

// jsonFields returns the exact JSON names v's struct accepts, or nil when v
// does not point to a struct (maps accept any key).
func jsonFields(v any) map[string]struct{} {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	t = t.Elem()
	fields := make(map[string]struct{}, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("json"); ok {
			tagName, _, _ := strings.Cut(tag, ",")
			if tagName == "-" && !strings.HasPrefix(tag, "-,") {
				continue
			}
			if tagName != "" {
				name = tagName
			}
		}
		fields[name] = struct{}{}
	}
	return fields
}

// describe turns an encoding/json error into a client-safe ErrInvalidBody.
func describe(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("body is truncated JSON")
	case errors.As(err, &syn):
		return invalid("body is not valid JSON (at byte %d)", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return invalid("body must be a JSON object")
		}
		return invalid("field %q must be %s", typ.Field, kindName(typ.Type))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return invalid("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return invalid("body could not be decoded")
	}
}

func kindName(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "valid"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	default:
		return "of type " + t.String()
	}
}
