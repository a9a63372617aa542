// kstatus computes an object's status with sigs.k8s.io/cli-utils/pkg/kstatus/status, the library
// Flux's health checks (kustomize-controller `wait`/`healthChecks`, helm-controller) use.
// Reads one object (JSON or YAML) on stdin and prints {"status", "message", "conditions"} as JSON.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
	// Decoded as a client's unstructured object is (integers stay int64).
	j, err := yaml.YAMLToJSON(data)
	obj := &unstructured.Unstructured{}
	if err == nil {
		err = obj.UnmarshalJSON(j)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: stdin:", err)
		os.Exit(1)
	}
	res, err := status.Compute(obj)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: Compute:", err)
		os.Exit(1)
	}
	conditions := []map[string]string{}
	for _, c := range res.Conditions {
		conditions = append(conditions, map[string]string{"type": string(c.Type), "status": string(c.Status), "reason": c.Reason, "message": c.Message})
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"status": res.Status.String(), "message": res.Message, "conditions": conditions})
}
