{{/* Chart name. */}}
{{- define "fhir-app-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-qualified unless the release name already contains the chart name. */}}
{{- define "fhir-app-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "fhir-app-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "fhir-app-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fhir-app-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "fhir-app-operator.labels" -}}
helm.sh/chart: {{ include "fhir-app-operator.chart" . }}
{{ include "fhir-app-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fhir-app-operator
{{- end }}

{{- define "fhir-app-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fhir-app-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "fhir-app-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Leader election is on when asked for or when more than one replica runs. */}}
{{- define "fhir-app-operator.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ else }}false{{ end }}
{{- end }}

{{/*
The operator's permissions on the namespaced objects it manages: one list of rules, used by the
ClusterRole (cluster-wide mode) or by a Role per watched namespace. Exactly what the operator does:
- its custom resources: read and watch them; patch them to add/remove its finalizer;
- their status subresource: server-side-apply (patch) the status;
- their finalizers subresource: update, so it may set blockOwnerDeletion in owner references of the
  Secrets/ConfigMaps it owns (OwnerReferencesPermissionEnforcement);
- Secrets and ConfigMaps: read credentials Secrets named by a resource, watch (label-selected) the
  outputs it writes, create/patch them (server-side apply), delete an output that was renamed;
- Events (core and events.k8s.io): record what changed.
*/}}
{{- define "fhir-app-operator.managerRules" -}}
- apiGroups: ["fhirapps.io"]
  resources: ["fhirresourceapps", "fhirclientapps"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["fhirapps.io"]
  resources: ["fhirresourceapps/status", "fhirclientapps/status"]
  verbs: ["get", "patch"]
- apiGroups: ["fhirapps.io"]
  resources: ["fhirresourceapps/finalizers", "fhirclientapps/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["secrets", "configmaps"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
