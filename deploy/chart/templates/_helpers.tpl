{{/* Names, labels and computed settings shared by the kpath chart's templates. */}}

{{/* The chart name, or nameOverride. */}}
{{- define "kpath.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object names: fullnameOverride, else the release name (with the chart name unless it already has it). */}}
{{- define "kpath.fullname" -}}
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

{{/* The labels every object carries. */}}
{{- define "kpath.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kpath.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/component: server
app.kubernetes.io/part-of: kpath
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels that select the pods (never change them on upgrade: selectors are immutable). */}}
{{- define "kpath.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kpath.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The image reference: repository:tag, with @digest when one is given. The tag defaults to appVersion. */}}
{{- define "kpath.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* "true" when an autoscaler owns the replica count: autoscaling on and jobs shared through PostgreSQL. */}}
{{- define "kpath.autoscaled" -}}
{{- if and .Values.autoscaling.enabled .Values.database.enabled }}true{{ end }}
{{- end }}

{{/* The PromQL query of the KEDA trigger. */}}
{{- define "kpath.kedaQuery" -}}
{{- .Values.autoscaling.keda.query | default (printf "max(kpath_queue_depth{namespace=%q})" .Release.Namespace) }}
{{- end }}

{{/* Refuses values that would deploy something broken, with the reason. */}}
{{- define "kpath.validate" -}}
{{- if gt (add (int .Values.shutdown.deadlineSeconds) 5) (int .Values.shutdown.terminationGracePeriodSeconds) }}
{{- fail "shutdown.deadlineSeconds must be at least 5 seconds below shutdown.terminationGracePeriodSeconds: kpath needs that time to hand unfinished jobs back before it is killed" }}
{{- end }}
{{- if lt (int .Values.shutdown.deadlineSeconds) 1 }}
{{- fail "shutdown.deadlineSeconds must be at least 1" }}
{{- end }}
{{- if not .Values.existingSecret }}
{{- fail "existingSecret must name the Secret with the keys private-key.pem and webhook-secret (see deploy/chart/examples/externalsecret.yaml)" }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.host) }}
{{- fail "ingress.host is required when ingress.enabled: the host name GitHub posts webhooks to" }}
{{- end }}
{{- if and (include "kpath.autoscaled" .) (lt (int .Values.autoscaling.minReplicas) 2) }}
{{- fail "autoscaling.minReplicas must be at least 2: one replica leaves webhooks unanswered during a restart or drain" }}
{{- end }}
{{- end }}
