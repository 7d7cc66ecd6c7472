package httpapi_test

import (
	"errors"
	"testing"

	"github.com/wxsession/wxsession/httpapi"
)

func TestCrossSite(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		domain  string
		want    bool
	}{
		{"no browser headers", map[string]string{"host": "api.example.com"}, "", false},
		{"same-origin", map[string]string{"sec-fetch-site": "same-origin"}, "", false},
		{"same-site", map[string]string{"sec-fetch-site": "same-site"}, "", false},
		{"none", map[string]string{"sec-fetch-site": "none"}, "", false},
		{"cross-site", map[string]string{"sec-fetch-site": "cross-site"}, "", true},
		{"cross-site in capitals, header in another case", map[string]string{"Sec-Fetch-Site": " CROSS-SITE "}, "", true},
		{"unknown value", map[string]string{"sec-fetch-site": "sideways"}, "", true},
		{"empty value", map[string]string{"sec-fetch-site": ""}, "", true},
		{"Sec-Fetch-Site decides over Origin", map[string]string{"sec-fetch-site": "same-origin", "origin": "https://evil.example"}, "", false},
		{"own origin", map[string]string{"origin": "https://api.example.com", "host": "api.example.com"}, "", false},
		{"own origin, default port", map[string]string{"origin": "https://api.example.com:443", "host": "api.example.com"}, "", false},
		{"own origin, host with default port", map[string]string{"origin": "http://api.example.com", "host": "api.example.com:80"}, "", false},
		{"own origin, case", map[string]string{"Origin": "https://API.Example.com", "Host": "api.example.COM"}, "", false},
		{"local port", map[string]string{"origin": "http://127.0.0.1:3000", "host": "127.0.0.1:3000"}, "", false},
		{"other port", map[string]string{"origin": "http://127.0.0.1:5173", "host": "127.0.0.1:3000"}, "", true},
		{"other host", map[string]string{"origin": "https://evil.example", "host": "api.example.com"}, "", true},
		{"suffix is not the host", map[string]string{"origin": "https://api.example.com.evil.example", "host": "api.example.com"}, "", true},
		{"no Host: domainName", map[string]string{"origin": "https://api.example.com"}, "api.example.com", false},
		{"no Host, other domainName", map[string]string{"origin": "https://evil.example"}, "api.example.com", true},
		{"null origin", map[string]string{"origin": "null", "host": "api.example.com"}, "", true},
		{"origin without scheme", map[string]string{"origin": "api.example.com", "host": "api.example.com"}, "", true},
		{"file origin", map[string]string{"origin": "file://", "host": "api.example.com"}, "", true},
	}
	for _, tt := range tests {
		if got := httpapi.CrossSite(tt.headers, tt.domain); got != tt.want {
			t.Errorf("%s: CrossSite(%v, %q) = %v, want %v", tt.name, tt.headers, tt.domain, got, tt.want)
		}
	}
}

func TestSafeMethod(t *testing.T) {
	for m, want := range map[string]bool{"GET": true, "head": true, "OPTIONS": true, "POST": false, "PUT": false,
		"PATCH": false, "DELETE": false, "": false, "CONNECT": false} {
		if got := httpapi.SafeMethod(m); got != want {
			t.Errorf("SafeMethod(%q) = %v, want %v", m, got, want)
		}
	}
}

func TestFindSessionIDCarrier(t *testing.T) {
	id := newID(t)
	tests := []struct {
		name    string
		headers map[string]string
		cookies []string
		want    httpapi.Carrier
		err     error
	}{
		{"bearer", map[string]string{"authorization": "Bearer " + id}, nil, httpapi.CarrierBearer, nil},
		{"bearer wins over the cookie", map[string]string{"authorization": "Bearer " + id}, []string{"sessionid=" + id}, httpapi.CarrierBearer, nil},
		{"cookie", nil, []string{"sessionid=" + id}, httpapi.CarrierCookie, nil},
		{"other scheme, then the cookie", map[string]string{"authorization": "Basic YTpi"}, []string{"sessionid=" + id}, httpapi.CarrierCookie, nil},
		{"none", nil, nil, httpapi.CarrierNone, httpapi.ErrNoCredentials},
		{"malformed", map[string]string{"authorization": "Bearer x"}, nil, httpapi.CarrierNone, httpapi.ErrMalformed},
	}
	for _, tt := range tests {
		got, c, err := httpapi.FindSessionID(tt.headers, tt.cookies)
		if c != tt.want || !errors.Is(err, tt.err) || (err == nil) != (got == id) {
			t.Errorf("%s: FindSessionID = %q, %v, %v; want carrier %v, error %v", tt.name, got, c, err, tt.want, tt.err)
		}
	}
}
