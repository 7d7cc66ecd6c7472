package secret

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// fakeAWS is an httptest server speaking the AWS JSON 1.1 wire format of
// SSM GetParameter and Secrets Manager GetSecretValue. It verifies every
// request's SigV4 signature the way AWS does: it recomputes the signature
// with the SDK signer from the received request, the headers named in
// SignedHeaders and the known credentials, and compares Authorization.
type fakeAWS struct {
	t      *testing.T
	srv    *httptest.Server
	creds  aws.Credentials // what the server believes the caller holds
	region string
	now    time.Time // the signing time the client is expected to use

	mu       sync.Mutex
	params   map[string]string              // SSM: name → value
	secrets  map[string]smSecret            // Secrets Manager: id → secret
	denied   map[string]bool                // names/ids answered with AccessDeniedException
	faults   []fault                        // consumed one per request, before anything else
	requests int                            // every request received
	targets  []string                       // X-Amz-Target of each request
	sigErrs  []string                       // signature verification failures
	release  chan struct{}                  // closed at cleanup: hung handlers return
	extra    func(http.ResponseWriter) bool // optional raw answer for successful requests
}

type smSecret struct {
	String *string
	Binary []byte
}

type fault struct {
	hang   bool
	status int
	body   string
}

func newFakeAWS(t *testing.T, creds aws.Credentials, region string, now time.Time) *fakeAWS {
	t.Helper()
	f := &fakeAWS{
		t: t, creds: creds, region: region, now: now,
		params:  map[string]string{},
		secrets: map[string]smSecret{},
		denied:  map[string]bool{},
		release: make(chan struct{}),
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		close(f.release)
		f.srv.Close()
	})
	return f
}

func (f *fakeAWS) addFaults(fs ...fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, fs...)
}

func (f *fakeAWS) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

func (f *fakeAWS) signatureErrors() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.sigErrs...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", jsonContentType)
	w.Header().Set("X-Amzn-Requestid", "5b0a7f2e-0000-4000-8000-000000000000")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeAWS) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	f.targets = append(f.targets, r.Header.Get("X-Amz-Target"))
	var ft *fault
	if len(f.faults) > 0 {
		ft = &f.faults[0]
		f.faults = f.faults[1:]
	}
	f.mu.Unlock()

	if ft != nil {
		if ft.hang {
			select {
			case <-r.Context().Done():
			case <-f.release:
			}
			return
		}
		w.Header().Set("Content-Type", jsonContentType)
		w.WriteHeader(ft.status)
		_, _ = io.WriteString(w, ft.body)
		return
	}

	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeJSON(w, 400, map[string]string{"__type": "SerializationException"})
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" || r.URL.RawQuery != "" {
		f.t.Errorf("fake AWS: got %s %s, want POST /", r.Method, r.URL)
		writeJSON(w, 404, map[string]string{"__type": "UnknownOperationException"})
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != jsonContentType {
		f.t.Errorf("fake AWS: Content-Type = %q, want %q", ct, jsonContentType)
	}
	var signingName string
	switch target := r.Header.Get("X-Amz-Target"); target {
	case "AmazonSSM.GetParameter":
		signingName = "ssm"
	case "secretsmanager.GetSecretValue":
		signingName = "secretsmanager"
	default:
		f.t.Errorf("fake AWS: unexpected X-Amz-Target %q", target)
		writeJSON(w, 400, map[string]string{"__type": "UnknownOperationException"})
		return
	}
	if err := f.verifySignature(r, body, signingName); err != nil {
		f.mu.Lock()
		f.sigErrs = append(f.sigErrs, err.Error())
		f.mu.Unlock()
		writeJSON(w, 400, map[string]string{
			"__type":  "InvalidSignatureException",
			"message": "The request signature we calculated does not match the signature you provided.",
		})
		return
	}
	if f.extra != nil && f.extra(w) {
		return
	}
	if signingName == "ssm" {
		f.getParameter(w, body)
	} else {
		f.getSecretValue(w, body)
	}
}

func (f *fakeAWS) getParameter(w http.ResponseWriter, body []byte) {
	var in struct {
		Name           string
		WithDecryption *bool
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || in.Name == "" {
		f.t.Errorf("fake SSM: bad request body %s: %v", body, err)
		writeJSON(w, 400, map[string]string{"__type": "ValidationException", "message": "bad body"})
		return
	}
	if in.WithDecryption == nil || !*in.WithDecryption {
		f.t.Errorf("fake SSM: WithDecryption = %v, want true", in.WithDecryption)
	}
	f.mu.Lock()
	v, ok := f.params[in.Name]
	denied := f.denied[in.Name]
	f.mu.Unlock()
	switch {
	case denied:
		writeJSON(w, 400, map[string]string{
			"__type": "AccessDeniedException",
			"Message": "User: arn:aws:sts::123456789012:assumed-role/login-role/login is not authorized to perform: " +
				"ssm:GetParameter on resource: arn:aws:ssm:" + f.region + ":123456789012:parameter" + in.Name +
				" because no identity-based policy allows the ssm:GetParameter action",
		})
	case !ok:
		writeJSON(w, 400, map[string]string{"__type": "ParameterNotFound"})
	default:
		writeJSON(w, 200, map[string]any{"Parameter": map[string]any{
			"ARN":              "arn:aws:ssm:" + f.region + ":123456789012:parameter" + in.Name,
			"DataType":         "text",
			"LastModifiedDate": 1.7e9,
			"Name":             in.Name,
			"Type":             "SecureString",
			"Value":            v,
			"Version":          3,
		}})
	}
}

func (f *fakeAWS) getSecretValue(w http.ResponseWriter, body []byte) {
	var in struct{ SecretId string }
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || in.SecretId == "" {
		f.t.Errorf("fake Secrets Manager: bad request body %s: %v", body, err)
		writeJSON(w, 400, map[string]string{"__type": "InvalidParameterException", "message": "bad body"})
		return
	}
	f.mu.Lock()
	s, ok := f.secrets[in.SecretId]
	denied := f.denied[in.SecretId]
	f.mu.Unlock()
	switch {
	case denied:
		writeJSON(w, 400, map[string]string{
			"__type":  "AccessDeniedException",
			"message": "User: arn:aws:sts::123456789012:assumed-role/login-role/login is not authorized to perform: secretsmanager:GetSecretValue",
		})
	case !ok:
		writeJSON(w, 400, map[string]string{
			"__type":  "ResourceNotFoundException",
			"message": "Secrets Manager can't find the specified secret.",
		})
	default:
		out := map[string]any{
			"ARN":           "arn:aws:secretsmanager:" + f.region + ":123456789012:secret:wx-AbCdEf",
			"CreatedDate":   1.7e9,
			"Name":          "wx",
			"VersionId":     "a1b2c3d4-0000-4000-8000-000000000000",
			"VersionStages": []string{"AWSCURRENT"},
		}
		if s.String != nil {
			out["SecretString"] = *s.String
		}
		if s.Binary != nil {
			out["SecretBinary"] = s.Binary // encoding/json: base64, as AWS sends blobs
		}
		writeJSON(w, 200, out)
	}
}

// verifySignature checks the request's SigV4 Authorization header.
func (f *fakeAWS) verifySignature(r *http.Request, body []byte, service string) error {
	auth := r.Header.Get("Authorization")
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return fmt.Errorf("Authorization %q is not SigV4", auth)
	}
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(auth, algo), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("malformed Authorization part %q", part)
		}
		fields[k] = v
	}
	amzDate := r.Header.Get("X-Amz-Date")
	signedAt, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return fmt.Errorf("X-Amz-Date %q: %v", amzDate, err)
	}
	if !signedAt.Equal(f.now.UTC().Truncate(time.Second)) {
		return fmt.Errorf("X-Amz-Date %s, want the client's clock %s", amzDate, f.now.UTC().Format("20060102T150405Z"))
	}
	wantScope := fmt.Sprintf("%s/%s/%s/%s/aws4_request", f.creds.AccessKeyID, signedAt.Format("20060102"), f.region, service)
	if fields["Credential"] != wantScope {
		return fmt.Errorf("Credential = %q, want %q", fields["Credential"], wantScope)
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !sort.StringsAreSorted(signed) {
		return fmt.Errorf("SignedHeaders %q not sorted", fields["SignedHeaders"])
	}
	must := []string{"content-type", "host", "x-amz-date", "x-amz-target"}
	if f.creds.SessionToken != "" {
		must = append(must, "x-amz-security-token")
		if got := r.Header.Get("X-Amz-Security-Token"); got != f.creds.SessionToken {
			return fmt.Errorf("X-Amz-Security-Token = %q, want the session token", got)
		}
	} else if r.Header.Get("X-Amz-Security-Token") != "" {
		return fmt.Errorf("X-Amz-Security-Token sent without a session token")
	}
	for _, h := range must {
		if !contains(signed, h) {
			return fmt.Errorf("SignedHeaders %q lacks %s", fields["SignedHeaders"], h)
		}
	}

	// Rebuild the request from what was received, keeping only the
	// signed headers, and sign it again with the known credentials.
	re, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	for _, h := range signed {
		if h == "host" || h == "content-length" {
			continue // taken from the URL and ContentLength by the signer
		}
		vals := r.Header.Values(h)
		if len(vals) == 0 {
			return fmt.Errorf("signed header %s not received", h)
		}
		re.Header[http.CanonicalHeaderKey(h)] = vals
	}
	if contains(signed, "content-length") {
		re.ContentLength = r.ContentLength
	} else {
		re.ContentLength = 0
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), f.creds, re, hex.EncodeToString(sum[:]), service, f.region, signedAt); err != nil {
		return err
	}
	if got := re.Header.Get("Authorization"); got != auth {
		return fmt.Errorf("signature mismatch:\n got  %s\n want %s", auth, got)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
