package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/wxsession/wxsession/internal/faultservers"
)

// fakeSSM answers SSM GetParameter with value, like Parameter Store does for
// a SecureString read WithDecryption. It stands in for the SSM read the
// deployed login function does at cold start.
func fakeSSM(value string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Name string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		if r.Header.Get("X-Amz-Target") != "AmazonSSM.GetParameter" {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"UnknownOperationException","message":"bench fake SSM"}`)
			return
		}
		out, _ := json.Marshal(map[string]any{"Parameter": map[string]any{
			"Name": in.Name, "Type": "SecureString", "Value": value, "Version": 1,
			"ARN": "arn:aws:ssm:us-east-1:123456789012:parameter" + in.Name, "DataType": "text",
		}})
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = w.Write(out)
	})
}

// refuseAll answers 403 to everything: the catch-all HTTP(S) proxy handed
// to cold-started functions, so that any request to a non-loopback host is
// counted and goes nowhere.
func refuseAll() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "bench: outbound requests are refused during cold-start measurement", http.StatusForbidden)
	})
}

// Classification of DynamoDB operations.
var (
	readOps  = map[string]bool{"GetItem": true, "BatchGetItem": true, "Query": true, "Scan": true, "TransactGetItems": true}
	writeOps = map[string]bool{"PutItem": true, "UpdateItem": true, "DeleteItem": true, "BatchWriteItem": true, "TransactWriteItems": true}
)

// opSummary renders requests as "GetItem SessionsTable ×1, PutItem ProfilesTable ×1".
func opSummary(reqs []faultservers.Request) string {
	counts := map[string]int{}
	var keys []string
	for _, r := range reqs {
		k := r.Op
		if len(r.Tables) > 0 {
			k += " " + strings.Join(r.Tables, ",")
		}
		if counts[k] == 0 {
			keys = append(keys, k)
		}
		counts[k]++
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, counts[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
