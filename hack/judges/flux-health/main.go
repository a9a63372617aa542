// flux-health computes an object's health the way Flux's kustomize-controller does: kstatus from
// Flux's own fork (github.com/fluxcd/cli-utils/pkg/kstatus/status.Compute), and, when a Kustomization
// is given, its spec.healthCheckExprs entry for the object's apiVersion/kind evaluated by Flux's CEL
// status evaluator (github.com/fluxcd/pkg/runtime/cel). Reads one object (JSON or YAML) on stdin and
// prints {"kstatus": {...}, "healthCheckExprs": {...} or null} as JSON. An expression that cannot be
// evaluated (e.g. it reads status before there is one) is reported as status "Error": Flux then keeps
// waiting until the Kustomization's timeout.
//
//	flux-health [-kustomization kustomization.yaml] < object.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/runtime/cel"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "flux-health: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	ksPath := flag.String("kustomization", "", "a Flux Kustomization whose spec.healthCheckExprs to evaluate")
	flag.Parse()
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("%v", err)
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		fail("stdin: %v", err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(j); err != nil {
		fail("stdin: %v", err)
	}
	out := map[string]any{"healthCheckExprs": nil}
	ks, err := status.Compute(obj)
	if err != nil {
		fail("kstatus: %v", err)
	}
	out["kstatus"] = result{Status: ks.Status.String(), Message: ks.Message}

	if *ksPath != "" {
		raw, err := os.ReadFile(*ksPath)
		if err != nil {
			fail("%v", err)
		}
		var k struct {
			Spec struct {
				HealthCheckExprs []kustomize.CustomHealthCheck `json:"healthCheckExprs"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(raw, &k); err != nil {
			fail("%s: %v", *ksPath, err)
		}
		for _, hc := range k.Spec.HealthCheckExprs {
			if hc.APIVersion != obj.GetAPIVersion() || hc.Kind != obj.GetKind() {
				continue
			}
			ev, err := cel.NewStatusEvaluator(&hc.HealthCheckExpressions)
			if err != nil {
				fail("%s: %s: %v", *ksPath, hc.Kind, err)
			}
			res, err := ev.Evaluate(context.Background(), obj)
			if err != nil {
				out["healthCheckExprs"] = result{Status: "Error", Message: err.Error()}
			} else {
				out["healthCheckExprs"] = result{Status: res.Status.String(), Message: res.Message}
			}
		}
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}
