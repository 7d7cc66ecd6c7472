// Package httpapi holds the small HTTP pieces every wxsession handler shares
// for API Gateway HTTP APIs (payload format 2.0): JSON and error responses,
// the session cookie, session-carrier parsing (Authorization: Bearer, then
// the sessionid cookie) and strict request-body decoding.
package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// ContentTypeJSON is the Content-Type of every body wxsession sends.
const ContentTypeJSON = "application/json; charset=utf-8"

// CookieName is the session cookie's name (Django's).
const CookieName = "sessionid"

// ErrorBody is the shape of every error response: a stable machine-readable
// code and a human-readable message.
type ErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// baseHeaders returns the headers every response carries.
func baseHeaders() map[string]string {
	return map[string]string{
		"Content-Type":           ContentTypeJSON,
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
	}
}

// JSON returns a response with status and v encoded as its JSON body. Should
// v fail to encode (a programming error), it answers 500 internal_error
// instead of a half-written body.
func JSON(status int, v any) events.APIGatewayV2HTTPResponse {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal_error","message":"response could not be encoded"}`)
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    baseHeaders(),
		Body:       string(b),
	}
}

// Error returns an error response {"error": code, "message": message}.
func Error(status int, code, message string) events.APIGatewayV2HTTPResponse {
	return JSON(status, ErrorBody{Error: code, Message: message})
}

// WithRetryAfter returns resp with a Retry-After header of d rounded up to
// whole seconds (at least 1).
func WithRetryAfter(resp events.APIGatewayV2HTTPResponse, d time.Duration) events.APIGatewayV2HTTPResponse {
	secs := int64((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	if resp.Headers == nil {
		resp.Headers = map[string]string{}
	}
	resp.Headers["Retry-After"] = strconv.FormatInt(secs, 10)
	return resp
}

// NoContent returns a 204 response without a body.
func NoContent() events.APIGatewayV2HTTPResponse {
	h := baseHeaders()
	delete(h, "Content-Type")
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusNoContent, Headers: h}
}

// SessionCookie returns the Set-Cookie value that hands id to the client for
// maxAge (rounded down to whole seconds): HttpOnly, Secure, SameSite=Lax,
// Path=/. Put it in the response's Cookies (payload 2.0), not in Headers.
func SessionCookie(id string, maxAge time.Duration) string {
	secs := int64(maxAge / time.Second)
	if secs < 0 {
		secs = 0
	}
	return CookieName + "=" + id + "; Path=/; Max-Age=" + strconv.FormatInt(secs, 10) + "; HttpOnly; Secure; SameSite=Lax"
}

// ClearSessionCookie returns the Set-Cookie value that removes the session
// cookie (Max-Age=0, same attributes as SessionCookie).
func ClearSessionCookie() string {
	return CookieName + "=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
}

// RouteKey is the route a request was matched by: its routeKey ("GET /me",
// "DELETE /me/sessions/{sid}"), or "METHOD /raw/path" when the route is the
// catch-all "$default" or the event carries none (a direct invocation).
// Source: the HTTP API payload format 2.0 (routeKey, requestContext.http).
func RouteKey(req events.APIGatewayV2HTTPRequest) string {
	if req.RouteKey == "" || req.RouteKey == "$default" {
		return req.RequestContext.HTTP.Method + " " + req.RawPath
	}
	return req.RouteKey
}
