package authorizer_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAuthorizerDependencies keeps the authorizer binary small and its
// attack surface narrow: it must not link the WeChat client nor any of the
// local-stack packages.
func TestAuthorizerDependencies(t *testing.T) {
	goTool := "go" // go test puts $GOROOT/bin first in PATH
	for _, pkg := range []string{"../../functions/authorizer", "."} {
		out, err := exec.Command(goTool, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s listed only %v", pkg, deps)
		}
		for _, d := range deps {
			if strings.HasSuffix(d, "/wechat") || strings.Contains(d, "/wechat/") ||
				strings.Contains(d, "github.com/wxsession/wxsession/internal/devstack/") || strings.Contains(d, "github.com/wxsession/wxsession/cmd/") {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
}
