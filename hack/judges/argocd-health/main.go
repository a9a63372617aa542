// argocd-health judges an Argo CD health script with Argo CD's own Lua runtime
// (github.com/argoproj/argo-cd/v3/util/lua, gopher-lua underneath), the code the application
// controller runs. It prints one JSON object per input on stdout.
//
//	argocd-health -script health.lua -tests health_test.yaml
//	    Argo CD's resource_customizations test format: each inputPath (relative to the test file)
//	    through VM.ExecuteHealthLua, as argo-cd's util/lua TestLuaHealthScript does. Prints
//	    {"inputPath", "want", "got"} per test.
//	argocd-health -script health.lua < object.json|yaml
//	    One object, judged two ways: "executeHealthLua" (the script alone, VM{}.ExecuteHealthLua)
//	    and "controller" (what the application controller shows: gitops-engine's
//	    health.GetResourceHealth with the script as the resource.customizations.health override
//	    for the object's group/kind, argocd-cm's default useOpenLibs=false).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/argoproj/argo-cd/gitops-engine/v3/pkg/health"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	appv1 "github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/lua"
)

type result struct {
	Status  health.HealthStatusCode `json:"status"`
	Message string                  `json:"message"`
}

func toResult(h *health.HealthStatus) *result {
	if h == nil {
		return nil
	}
	return &result{Status: h.Status, Message: h.Message}
}

// object reads a fixture the way argo-cd's util/lua/health_test.go does (numbers become float64).
func object(data []byte) (*unstructured.Unstructured, error) {
	obj := map[string]any{}
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: obj}, nil
}

// liveObject reads an object the way the controller's cluster cache holds it: decoded by
// apimachinery's unstructured JSON decoder (integers stay int64).
func liveObject(data []byte) (*unstructured.Unstructured, error) {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	obj := &unstructured.Unstructured{}
	return obj, obj.UnmarshalJSON(j)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "argocd-health: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	scriptPath := flag.String("script", "", "the health.lua to judge")
	tests := flag.String("tests", "", "a health_test.yaml (Argo CD's format); without it one object is read from stdin")
	flag.Parse()
	if *scriptPath == "" {
		fail("-script is required")
	}
	scriptBytes, err := os.ReadFile(*scriptPath)
	if err != nil {
		fail("%v", err)
	}
	script := string(scriptBytes)
	out := json.NewEncoder(os.Stdout)

	if *tests != "" {
		// The same structure argo-cd's util/lua/health_test.go reads.
		var suite struct {
			Tests []struct {
				InputPath    string              `json:"inputPath"`
				HealthStatus health.HealthStatus `json:"healthStatus"`
			} `json:"tests"`
		}
		data, err := os.ReadFile(*tests)
		if err != nil {
			fail("%v", err)
		}
		if err := yaml.Unmarshal(data, &suite); err != nil {
			fail("%s: %v", *tests, err)
		}
		for _, t := range suite.Tests {
			data, err := os.ReadFile(filepath.Join(filepath.Dir(*tests), t.InputPath))
			if err != nil {
				fail("%v", err)
			}
			obj, err := object(data)
			if err != nil {
				fail("%s: %v", t.InputPath, err)
			}
			got, err := lua.VM{}.ExecuteHealthLua(obj, script)
			if err != nil {
				fail("%s: ExecuteHealthLua: %v", t.InputPath, err)
			}
			_ = out.Encode(map[string]any{"inputPath": t.InputPath, "want": toResult(&t.HealthStatus), "got": toResult(got)})
		}
		return
	}

	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("%v", err)
	}
	obj, err := liveObject(data)
	if err != nil {
		fail("stdin: %v", err)
	}
	direct, err := lua.VM{}.ExecuteHealthLua(obj, script)
	if err != nil {
		fail("ExecuteHealthLua: %v", err)
	}
	gvk := obj.GroupVersionKind()
	overrides := map[string]appv1.ResourceOverride{
		lua.GetConfigMapKey(gvk.GroupKind().WithVersion("")): {HealthLua: script},
	}
	controller, err := health.GetResourceHealth(obj, lua.ResourceHealthOverrides(overrides))
	if err != nil {
		fail("GetResourceHealth: %v", err)
	}
	_ = out.Encode(map[string]any{"executeHealthLua": toResult(direct), "controller": toResult(controller)})
}
