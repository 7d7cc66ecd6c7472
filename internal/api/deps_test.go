package api_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAPIDependencies: the business example needs no WeChat client (DELETE
// /me deletes phone data through internal/phonestore, which links none),
// nor the access-token keeper, nor the local stack.
func TestAPIDependencies(t *testing.T) {
	for _, pkg := range []string{"../../functions/api", "."} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s listed only %v", pkg, deps)
		}
		for _, d := range deps {
			if strings.HasSuffix(d, "/wechat") || strings.Contains(d, "/wechat/") || strings.HasSuffix(d, "/wxapi") ||
				strings.HasSuffix(d, "/wxtoken") || strings.HasSuffix(d, "/wxuser") || strings.Contains(d, "/internal/devstack/") {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
}
