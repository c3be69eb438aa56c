{{/* Chart name, overridable. */}}
{{- define "glvq.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource name prefix: release-chart, or the release name if it holds the chart name. */}}
{{- define "glvq.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels that select this release's pods (never change them on upgrade). */}}
{{- define "glvq.selectorLabels" -}}
app.kubernetes.io/name: {{ include "glvq.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "glvq.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "glvq.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "glvq.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The coordinator's state claim: an existing one or the chart's. */}}
{{- define "glvq.stateClaim" -}}
{{- default (printf "%s-state" (include "glvq.fullname" .)) .Values.coordinator.persistence.existingClaim }}
{{- end }}

{{/* The coordinator's in-cluster gRPC address, for the workers. */}}
{{- define "glvq.coordinatorAddress" -}}
{{- printf "%s-coordinator:%v" (include "glvq.fullname" .) .Values.coordinator.grpcPort }}
{{- end }}

{{/* Pod security: the image's unprivileged user; fsGroup makes the volumes writable. */}}
{{- define "glvq.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
{{- end }}

{{- define "glvq.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end }}
