// Command raw is a hand-written runtime (plain net/http, no aws-lambda-go)
// that probes the Runtime API's edges for package lambdaruntime's tests.
// With RAW_MODE=initerror it reports an init error and exits.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

var base = "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime"

func post(path, errType string, body []byte) int {
	req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
	if errType != "" {
		req.Header.Set("Lambda-Runtime-Function-Error-Type", errType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println("post error:", err)
		return -1
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func main() {
	if os.Getenv("RAW_MODE") == "initerror" {
		post("/init/error", "Runtime.ConfigError", []byte(`{"errorMessage":"missing WECHAT_APPID","errorType":"Runtime.ConfigError"}`))
		os.Exit(1)
	}
	for {
		resp, err := http.Get(base + "/invocation/next")
		if err != nil {
			fmt.Println("next error:", err)
			os.Exit(1)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		var ev struct{ Op string }
		_ = json.Unmarshal(body, &ev)
		switch ev.Op {
		case "badid":
			bad := post("/invocation/not-a-real-id/response", "", []byte(`{}`))
			late := post("/init/error", "X", []byte(`{}`))
			out, _ := json.Marshal(map[string]int{"bogus": bad, "late_init_error": late})
			post("/invocation/"+id+"/response", "", out)
			fmt.Printf("double_response_status=%d\n", post("/invocation/"+id+"/response", "", out))
		case "big":
			big := []byte(`"` + strings.Repeat("x", 7<<20) + `"`)
			fmt.Printf("big_response_status=%d\n", post("/invocation/"+id+"/response", "", big))
		case "errheader":
			post("/invocation/"+id+"/error", "Custom.Header", []byte("not json"))
		case "headers":
			h := map[string]string{}
			for k := range resp.Header {
				h[k] = resp.Header.Get(k)
			}
			out, _ := json.Marshal(h)
			post("/invocation/"+id+"/response", "", out)
		default:
			post("/invocation/"+id+"/response", "", body)
		}
	}
}
