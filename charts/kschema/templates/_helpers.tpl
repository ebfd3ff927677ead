{{/* Names ---------------------------------------------------------------------------------------------- */}}

{{- define "kschema.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kschema.fullname" -}}
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

{{- define "kschema.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The webhook's Service, Certificate and TLS Secret. */}}
{{- define "kschema.webhook.serviceName" -}}
{{- printf "%s-webhook" (include "kschema.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kschema.webhook.certificateName" -}}
{{- printf "%s-webhook" (include "kschema.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kschema.webhook.tlsSecretName" -}}
{{- if .Values.webhook.tls.existingSecret }}
{{- .Values.webhook.tls.existingSecret }}
{{- else }}
{{- printf "%s-webhook-tls" (include "kschema.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The ServiceAccount of a component: "registry" (sqlite topology), "operator", "webhook" or "api". */}}
{{- define "kschema.serviceAccountName" -}}
{{- $root := .root -}}
{{- $base := include "kschema.fullname" $root }}
{{- if $root.Values.serviceAccount.name }}
{{- $base = $root.Values.serviceAccount.name }}
{{- end }}
{{- if or (eq .component "registry") (not $root.Values.serviceAccount.create) }}
{{- if $root.Values.serviceAccount.create }}{{ $base }}{{ else }}{{ default "default" $root.Values.serviceAccount.name }}{{ end }}
{{- else }}
{{- printf "%s-%s" $base .component | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Labels ----------------------------------------------------------------------------------------------- */}}

{{- define "kschema.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kschema.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kschema.labels" -}}
{{ include "kschema.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kschema
helm.sh/chart: {{ include "kschema.chart" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of one component's resources: {root: $, component: "webhook"}. */}}
{{- define "kschema.componentLabels" -}}
{{ include "kschema.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "kschema.componentSelectorLabels" -}}
{{ include "kschema.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The component whose pods serve the webhook and the read API: the single registry pod in the sqlite
     topology, their own Deployments in the postgres topology. */}}
{{- define "kschema.servingComponent" -}}
{{- if eq .root.Values.topology "sqlite" }}registry{{ else }}{{ .component }}{{ end }}
{{- end }}

{{/* Image ------------------------------------------------------------------------------------------------ */}}

{{- define "kschema.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Validation: refuse combinations that would install a registry that cannot work. ---------------------- */}}

{{- define "kschema.validate" -}}
{{- if and (eq .Values.topology "postgres") (not .Values.store.postgres.existingSecret) }}
{{- fail "store.postgres.existingSecret: required when topology is postgres (the Secret that holds the PostgreSQL URL)" }}
{{- end }}
{{- if and .Values.webhook.tls.existingSecret (not .Values.webhook.tls.caBundle) }}
{{- fail "webhook.tls.caBundle: required when webhook.tls.existingSecret is set (the base64 PEM of the CA that signed the serving certificate)" }}
{{- end }}
{{- if and .Values.webhook.tls.caBundle (not .Values.webhook.tls.existingSecret) }}
{{- fail "webhook.tls.caBundle: only used with webhook.tls.existingSecret; cert-manager injects the CA otherwise" }}
{{- end }}
{{- if and .Values.networkPolicy.enabled (not .Values.networkPolicy.webhook.from) }}
{{- fail "networkPolicy.webhook.from: required when networkPolicy.enabled (where the API server's webhook calls come from is specific to each cluster; without it the webhook is unreachable and every Subject and Schema change is refused)" }}
{{- end }}
{{- if and (ne .Values.api.auth.mode "off") (not .Values.api.auth.allowedNamespaces) (not .Values.api.auth.allowedServiceAccounts) }}
{{- fail "api.auth.allowedNamespaces: name namespaces (or *) or api.auth.allowedServiceAccounts when api.auth.mode is on; otherwise nobody may call the read API" }}
{{- end }}
{{- end }}

{{/* Pod parts shared by every Deployment: {root: $, component: "api", settings: .Values.api}. --------- */}}

{{- define "kschema.podMetadata" -}}
{{- $root := .root -}}
labels:
  {{- include "kschema.componentSelectorLabels" . | nindent 2 }}
  {{- with (merge (dict) (.settings.podLabels | default dict) ($root.Values.podLabels | default dict)) }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with (merge (dict) (.settings.podAnnotations | default dict) ($root.Values.podAnnotations | default dict)) }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "kschema.podScheduling" -}}
{{- $root := .root -}}
{{- /* No Docker-link variables: a Service named `<release>-webhook` would otherwise inject
       KSCHEMA_WEBHOOK_PORT=tcp://... into every pod of the namespace, overriding kschema's own setting. */}}
enableServiceLinks: false
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with (.settings.nodeSelector | default $root.Values.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.settings.tolerations | default $root.Values.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.settings.affinity | default $root.Values.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .settings.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/* The container fields every component shares: image, environment, security context, /tmp. */}}
{{- define "kschema.containerCommon" -}}
{{- $root := .root -}}
image: {{ include "kschema.image" $root }}
imagePullPolicy: {{ $root.Values.image.pullPolicy }}
securityContext:
  {{- toYaml $root.Values.containerSecurityContext | nindent 2 }}
{{- with .settings.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "kschema.env" -}}
{{- $root := .root -}}
- name: KSCHEMA_LOG_LEVEL
  value: {{ $root.Values.logLevel | quote }}
# The level of Subjects without spec.compatibility; the webhook, the operator and the read API must agree.
- name: KSCHEMA_DEFAULT_COMPATIBILITY
  value: {{ $root.Values.defaultCompatibility | quote }}
{{- if eq .component "operator" "registry" }}
# The operator's liveness endpoint (/healthz), probed by the kubelet.
- name: KSCHEMA_HEALTH_PORT
  value: "8080"
# One peering per release: two registries in one cluster must not stand each other by.
- name: KSCHEMA_PEERING
  value: {{ include "kschema.fullname" $root }}
{{- with $root.Values.watchNamespaces }}
- name: KSCHEMA_NAMESPACES
  value: {{ join "," . | quote }}
{{- end }}
{{- end }}
{{- if and (eq .component "api" "registry") (ne $root.Values.api.auth.mode "off") }}
{{- $auth := $root.Values.api.auth }}
- name: KSCHEMA_API_AUTH
  value: {{ $auth.mode | quote }}
- name: KSCHEMA_API_AUTH_AUDIENCE
  value: {{ $auth.audience | default "kschema" | quote }}
- name: KSCHEMA_API_AUTH_NAMESPACES
  value: {{ join "," ($auth.allowedNamespaces | default list) | quote }}
- name: KSCHEMA_API_AUTH_SERVICE_ACCOUNTS
  value: {{ join "," ($auth.allowedServiceAccounts | default list) | quote }}
- name: KSCHEMA_API_AUTH_CACHE_SECONDS
  value: {{ $auth.cacheSeconds | quote }}
{{- end }}
{{- if eq .component "webhook" "registry" }}
- name: KSCHEMA_WEBHOOK_CERT_DIR
  value: /etc/kschema/webhook-tls
{{- end }}
{{- if eq $root.Values.topology "sqlite" }}
- name: KSCHEMA_STORE_URL
  value: {{ printf "sqlite:///%s" $root.Values.store.sqlite.path | quote }}
{{- else }}
- name: KSCHEMA_STORE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.store.postgres.existingSecret }}
      key: {{ $root.Values.store.postgres.secretKey }}
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "kschema.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}

{{- define "kschema.webhookTlsVolume" -}}
- name: webhook-tls
  secret:
    secretName: {{ include "kschema.webhook.tlsSecretName" . }}
    # Only the serving pair: a cert-manager Secret also carries ca.crt, which the process does not need.
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
